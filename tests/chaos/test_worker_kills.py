"""Workers killed with SIGKILL at random moments under a load of 2,000 messages: each kill leaves its messages
pending, the others reclaim them, and every message ends with exactly one reply or one review case.

The load goes straight into Redis through RedisStore.enqueue (the web path is the Redis-restart test's): what
is under test here is the workers' reclaim and exactly-once commit. A part of the load is enqueued before each
kill, straight into Redis (faster than the workers drain it), and the kill comes while they hold some of it."""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.config import Settings
from bot.models import Status
from bot.store import INBOUND_GROUP, RedisStore
from tests.chaos.outcomes import assert_exactly_once, wait_finished
from tests.conftest import SECRET, free_port, message
from tests.fakes import Receiver
from tests.service import FAQS, Service, shared_redis_env, start

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

MESSAGES = int(os.environ.get("CHAOS_MESSAGES", "2000"))
KILLS = 4
RECLAIMED = re.compile(r"\"reclaimed stream=inbound count=(\d+)\"")


@pytest.mark.timeout(300, func_only=True)  # the session's model training is not ours
async def test_workers_killed_at_random_answer_each_message_once(
    settings: Settings, redis: Redis, receiver: Receiver, tmp_path: Path, brand_models: Path, policies_dir: Path
) -> None:
    seed = int(os.environ.get("CHAOS_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"CHAOS_SEED={seed}")  # shown on failure: rerun the same kills with it
    # No model: the offline drafter, so the load is classification and Redis.
    env = await shared_redis_env(settings, tmp_path / "data", brand_models, policies_dir)
    env |= {
        "BOT_GENERIC_SECRET": SECRET,
        "BOT_GENERIC_REPLY_URL": await receiver.start(),
        "BOT_CLAIM_IDLE_MS": "1500",
        "BOT_SEND_BACKOFF_S": "0.05",
        "BOT_WORKER_BATCH": "32",
        "OMP_NUM_THREADS": "1",  # two workers on two cores: one thread each, not two fighting for each core
    }
    store = RedisStore(redis, settings.redis_prefix, ttl_s=900)
    await store.setup()
    messages = [message(f"{FAQS[i % len(FAQS)]} (#{i})", id=f"k{i}") for i in range(MESSAGES)]
    ids = [m.id for m in messages]
    logs: list[Path] = []

    async def new_worker() -> Service:
        log = tmp_path / f"w{len(logs)}.log"
        logs.append(log)
        worker = await start("worker", free_port(), env, log)
        await worker.wait_ready()
        return worker

    async def in_hand_a_while() -> int:
        """Messages the workers hold, a random 10-200 ms after they first hold some of a new part. A kill at a
        random time after the part missed the load on a fast CPU (two workers drained a part of 400 in well
        under the second a kill could wait); timed from the moment they hold messages, it lands in a batch."""
        polls = rng.randrange(1, 20)
        for _ in range(500):  # 5 s at most: a part the workers never take fails below, with the counts
            pending = await store.pending_count(store.keys.inbound, INBOUND_GROUP)
            polls -= pending > 0
            if polls == 0:
                return pending
            await asyncio.sleep(0.01)
        return 0

    workers = list(await asyncio.gather(new_worker(), new_worker()))
    # A fifth at once, then a fifth before each kill, which comes while the workers hold some of it.
    step = -(-MESSAGES // (KILLS + 1))
    parts = [messages[i : i + step] for i in range(0, MESSAGES, step)]
    try:
        assert all(await store.enqueue(parts[0]))
        await asyncio.sleep(1)
        held = []
        for part in parts[1:]:
            assert all(await store.enqueue(part))
            held.append(await in_hand_a_while())
            victim = rng.randrange(len(workers))
            assert await workers[victim].stop(signal.SIGKILL) == -signal.SIGKILL
            workers[victim] = await new_worker()  # the survivor carries on meanwhile
        states = await wait_finished(store, ids, timeout=150)
        replied, in_review = await assert_exactly_once(store, receiver, ids)
        assert await store.pending_count(store.keys.inbound, INBOUND_GROUP) == 0
        reclaimed = sum(int(n) for log in logs for n in RECLAIMED.findall(log.read_text()))
        print(f"pending at each kill: {held}; replied {replied}, in review {in_review}; reclaimed {reclaimed}")
        assert {s.status for s in states.values()} <= {Status.SENT, Status.IN_REVIEW}
        assert sum(1 for n in held if n) >= KILLS - 1, f"the kills missed the load: pending {held}"
        assert reclaimed > 0  # the dead workers' messages were taken over, not just finished by luck
    finally:
        codes = [await w.stop() for w in workers]
    assert codes == [0] * len(workers), [log.read_text()[-3000:] for log in logs[-2:]]
    for log in logs:
        assert "Traceback" not in log.read_text(), log.read_text()[-5000:]
