"""Redis killed with SIGKILL while webhooks pour in, then restarted on the same port and files, under both
durability settings: with `appendfsync always` every accepted write was on disk before its 202; with the
default `everysec` it was at least in the append-only file (the OS's cache survives a crash of Redis alone).
Either way every message that was answered 202 is still there and gets processed; a request refused while
Redis was down is retried (as platforms do) until it is taken."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from bot.config import Settings
from bot.embedded import EmbeddedRedis
from bot.store import INBOUND_GROUP, RedisStore
from tests.chaos.outcomes import assert_exactly_once, wait_finished
from tests.conftest import SECRET, free_port, payload, signed
from tests.fakes import Receiver
from tests.service import FAQS, start

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

REQUESTS = 60
PER_REQUEST = 10
POSTERS = 4


@pytest.mark.timeout(180, func_only=True)  # the session's model training is not ours
@pytest.mark.parametrize("appendfsync", ["always", "everysec"])
async def test_messages_accepted_before_a_redis_crash_are_all_processed(
    appendfsync: str,
    make_settings: Callable[..., Settings],
    receiver: Receiver,
    tmp_path: Path,
    brand_models: Path,
    policies_dir: Path,
) -> None:
    port = free_port()
    server = EmbeddedRedis(tmp_path / "redis", port=port, appendfsync=appendfsync)
    url = await server.start()
    settings = make_settings(redis_url=url)
    env = {
        "BOT_REDIS_URL": url,
        "BOT_REDIS_PREFIX": settings.redis_prefix,
        "BOT_DATA_DIR": str(tmp_path / "data"),
        "BOT_MODELS_DIR": str(brand_models),
        "BOT_POLICIES_DIR": str(policies_dir),
        "BOT_GENERIC_SECRET": SECRET,
        "BOT_GENERIC_REPLY_URL": await receiver.start(),
        "BOT_CLAIM_IDLE_MS": "1500",
        "BOT_SEND_BACKOFF_S": "0.2",
        "OMP_NUM_THREADS": "1",
    }
    web = await start("web", free_port(), env, tmp_path / "web.log")
    worker = await start("worker", free_port(), env, tmp_path / "worker.log")
    await asyncio.gather(web.wait_ready(), worker.wait_ready())
    bodies = [
        [payload(f"{FAQS[(r + i) % len(FAQS)]} (#{r}.{i})", id=f"r{r}-{i}") for i in range(PER_REQUEST)]
        for r in range(REQUESTS)
    ]
    accepted: list[str] = []
    refused = 0
    queue: asyncio.Queue[list[dict[str, object]]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def post(session: aiohttp.ClientSession) -> None:
        nonlocal refused
        while not queue.empty():
            body = queue.get_nowait()
            raw, headers = signed(body)
            for _ in range(200):  # a platform retries a delivery that wasn't acknowledged
                try:
                    async with session.post(web.url + "/webhooks/generic", data=raw, headers=headers) as response:
                        if response.status == 202:
                            accepted.extend(str(m["id"]) for m in body)
                            break
                        assert response.status == 503, await response.text()
                except aiohttp.ClientError:  # the web process itself must stay up; count it as refused anyway
                    pass
                refused += 1
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("a delivery was never accepted")
            await asyncio.sleep(0.05)

    try:
        async with aiohttp.ClientSession() as session:
            posters = [asyncio.create_task(post(session)) for _ in range(POSTERS)]
            while len(accepted) < REQUESTS * PER_REQUEST // 3:
                await asyncio.sleep(0.02)
            assert server.process is not None
            server.process.kill()  # no chance to flush anything: only what reached the file survives
            await server.process.wait()
            before_crash = list(accepted)
            await asyncio.sleep(2)
            server = EmbeddedRedis(tmp_path / "redis", port=port, appendfsync=appendfsync)
            await server.start()
            await asyncio.gather(*posters)
        redis = Redis.from_url(url, decode_responses=True)
        try:
            store = RedisStore(redis, settings.redis_prefix, ttl_s=600)
            ids = sorted(set(accepted))
            assert len(ids) == REQUESTS * PER_REQUEST and set(before_crash) <= set(ids)
            await wait_finished(store, ids, timeout=120)
            replied, in_review = await assert_exactly_once(store, receiver, ids)
            assert await store.pending_count(store.keys.inbound, INBOUND_GROUP) == 0
        finally:
            await redis.aclose()
        print(f"{appendfsync}: accepted before the crash {len(before_crash)}, refused while down {refused}; ", end="")
        print(f"replied {replied}, in review {in_review}")
        assert refused > 0, "Redis came back before any request noticed: the crash tested nothing"
    finally:
        codes = [await web.stop(), await worker.stop()]
        await server.stop()
    assert codes == [0, 0], (web.log.read_text()[-3000:], worker.log.read_text()[-3000:])
    assert "Traceback" not in worker.log.read_text(), worker.log.read_text()[-5000:]
