"""The model answers 429, then 500, then not at all (timeouts) for a stretch, then recovers: the circuit opens,
messages are drafted offline or go to review meanwhile (none stuck), and once the model is back a probe closes
the circuit and new messages are drafted by the model again."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.config import Settings
from bot.store import RedisStore
from tests.chaos.outcomes import assert_exactly_once, metric, scrape, wait_finished
from tests.conftest import SECRET, free_port, message
from tests.fakes import FakeLLM, Receiver
from tests.service import FAQS, shared_redis_env, start

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

COOLDOWN_S = 2.0


@pytest.mark.timeout(150, func_only=True)  # the session's model training is not ours
async def test_model_outage_opens_the_circuit_and_recovery_closes_it(
    settings: Settings,
    redis: Redis,
    fake_llm: FakeLLM,
    receiver: Receiver,
    tmp_path: Path,
    brand_models: Path,
    policies_dir: Path,
) -> None:
    fake_llm.script = ["429", "429", "500", "500", "slow", "slow"]  # each kind of failure, then...
    fake_llm.mode = "503"  # ...down until the test says otherwise
    fake_llm.slow_s = 5
    env = await shared_redis_env(settings, tmp_path / "data", brand_models, policies_dir, fake_llm)
    env |= {
        "BOT_GENERIC_SECRET": SECRET,
        "BOT_GENERIC_REPLY_URL": await receiver.start(),
        "BOT_CLAIM_IDLE_MS": "1500",
        "BOT_LLM_TIMEOUT": "1",
        "BOT_LLM_RETRIES": "1",
        "BOT_LLM_BACKOFF_S": "0.05",
        "BOT_LLM_BREAKER_FAILURES": "3",
        "BOT_LLM_BREAKER_COOLDOWN_S": str(COOLDOWN_S),
        "BOT_LLM_MAX_CONCURRENCY": "2",  # the failures come one after another, as the script has them
        "BOT_WORKER_BATCH": "8",
        "OMP_NUM_THREADS": "1",
    }
    store = RedisStore(redis, settings.redis_prefix, ttl_s=600)
    await store.setup()
    worker = await start("worker", free_port(), env, tmp_path / "worker.log")
    try:
        await worker.wait_ready()
        outage = [message(f"{FAQS[i % len(FAQS)]} (#{i})", id=f"down{i}") for i in range(48)]
        assert all(await store.enqueue(outage))
        await wait_finished(store, [m.id for m in outage], timeout=60)
        page = await scrape(worker)
        asked = len(fake_llm.requests)
        assert asked >= len(["429", "429", "500", "500", "slow", "slow"]) and not fake_llm.script
        assert metric(page, "autoresponder_llm_requests_total", outcome="circuit_open") > 0  # it opened
        assert asked < len(outage) * 2  # and while open, the model was left alone
        assert metric(page, "autoresponder_drafts_total", drafter="offline") > 0
        for kind in ("rate_limited", "server_error", "timeout"):
            assert metric(page, "autoresponder_llm_requests_total", outcome=kind) > 0, kind
        assert metric(page, "autoresponder_drafts_total", drafter="llm") == 0

        fake_llm.mode = "ok"  # the model is back; after the cool-down, one message's call is the probe
        probe = message("Do you take Apple Pay? (probe)", id="probe")
        assert all(await store.enqueue([probe]))
        for again in range(3):  # the probe's message may come while the circuit is still cooling down
            await wait_finished(store, [probe.id], timeout=30)
            if metric(await scrape(worker), "autoresponder_llm_circuit_state", state="closed") == 1:
                break
            probe = message("Do you take Apple Pay? (probe again)", id=f"probe{again}")
            assert all(await store.enqueue([probe]))
        page = await scrape(worker)
        assert metric(page, "autoresponder_llm_circuit_state", state="closed") == 1
        offline_before = metric(page, "autoresponder_drafts_total", drafter="offline")
        llm_before = metric(page, "autoresponder_drafts_total", drafter="llm")

        after = [message(f"{FAQS[i % len(FAQS)]} (after #{i})", id=f"up{i}") for i in range(24)]
        assert all(await store.enqueue(after))
        await wait_finished(store, [m.id for m in after], timeout=60)
        page = await scrape(worker)
        assert metric(page, "autoresponder_drafts_total", drafter="llm") - llm_before == len(after)
        assert metric(page, "autoresponder_drafts_total", drafter="offline") == offline_before
        probes = [f"probe{i}" for i in range(3)] + ["probe"]
        everyone = [m.id for m in outage + after] + [p for p in probes if await store.message_state("generic", p)]
        replied, in_review = await assert_exactly_once(store, receiver, everyone)
        by_model = [r for r in receiver.replies if r["in_reply_to"].startswith("up") and r["reply_id"][:2] == "r_"]
        assert by_model and all(r["text"].endswith("– Northwind Team") for r in by_model)  # FakeLLM's words
        print(f"model calls during the outage {asked}; replied {replied}, in review {in_review}")
    finally:
        assert await worker.stop() == 0, worker.log.read_text()[-3000:]
    assert "Traceback" not in worker.log.read_text(), worker.log.read_text()[-5000:]
