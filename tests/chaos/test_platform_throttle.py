"""The platform answers 429 with Retry-After for a stretch: replies wait as long as it asks, then go out, each
once, and none ends in review."""

from __future__ import annotations

import asyncio
import collections
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from redis.asyncio import Redis

from bot.config import Settings
from bot.store import RedisStore
from tests.chaos.outcomes import assert_exactly_once, wait_finished
from tests.conftest import SECRET, free_port, message
from tests.fakes import Receiver
from tests.service import FAQS, start

pytestmark = [pytest.mark.chaos, pytest.mark.slow]


@dataclass
class ThrottlingReceiver(Receiver):
    """A Receiver that, for `stretch_s` from the first reply it sees, answers 429 with Retry-After."""

    stretch_s: float = 3.0
    retry_after_s: int = 1
    until: float | None = None
    attempts: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    throttled: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        now = asyncio.get_running_loop().time()
        self.until = self.until or now + self.stretch_s
        self.attempts[json.loads(await request.read())["reply_id"]].append(now)
        if now < self.until:
            self.throttled += 1
            return web.Response(status=429, headers={"Retry-After": str(self.retry_after_s)})
        return await super().handle(request)  # checks the signature, records the reply


@pytest.mark.timeout(120, func_only=True)  # the session's model training is not ours
async def test_replies_wait_out_a_platforms_429s_and_go_out_once(
    settings: Settings, redis: Redis, tmp_path: Path, brand_models: Path, policies_dir: Path
) -> None:
    platform = ThrottlingReceiver(SECRET.encode())
    env = {  # the offline drafter: the model is not what is under test
        "BOT_REDIS_URL": settings.redis_url or "",
        "BOT_REDIS_PREFIX": settings.redis_prefix,
        "BOT_DATA_DIR": str(tmp_path / "data"),
        "BOT_MODELS_DIR": str(brand_models),
        "BOT_POLICIES_DIR": str(policies_dir),
        "BOT_GENERIC_SECRET": SECRET,
        "BOT_GENERIC_REPLY_URL": await platform.start(),
        "BOT_SEND_BACKOFF_S": "0.1",  # shorter than Retry-After: the wait must come from the header
        "BOT_SEND_ATTEMPTS": "6",
        "BOT_CLAIM_IDLE_MS": "1500",  # shorter than a reply's wait: a waiting reply must stay claimed
        "OMP_NUM_THREADS": "1",
    }
    store = RedisStore(redis, settings.redis_prefix, ttl_s=600)
    await store.setup()
    messages = [message(f"{FAQS[i % len(FAQS)]} (#{i})", id=f"t{i}") for i in range(40)]
    worker = await start("worker", free_port(), env, tmp_path / "worker.log")
    try:
        await worker.wait_ready()
        assert all(await store.enqueue(messages))
        await wait_finished(store, [m.id for m in messages], timeout=60)
        replied, in_review = await assert_exactly_once(store, platform, [m.id for m in messages])
        assert platform.throttled > 0 and in_review == 0 and replied == len(messages)
        assert platform.until is not None
        waited = sum(1 for times in platform.attempts.values() if len(times) > 1)
        assert waited > 1, "the replies read after a throttled one were held back behind its wait"
        for reply_id, times in platform.attempts.items():
            gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
            assert all(gap >= platform.retry_after_s * 0.95 for gap in gaps), (reply_id, gaps)  # it waited
            assert times[-1] >= platform.until, reply_id  # and got through after the stretch
        print(f"429s answered {platform.throttled} to {waited} replies; replies {replied}; most attempts ", end="")
        print(max(len(t) for t in platform.attempts.values()))
    finally:
        assert await worker.stop() == 0, worker.log.read_text()[-3000:]
        await platform.close()
    assert "Traceback" not in worker.log.read_text(), worker.log.read_text()[-5000:]
