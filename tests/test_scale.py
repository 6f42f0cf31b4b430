"""Scale-out: three worker processes against one Redis share the work; every message is handled exactly once,
and a conversation's messages one at a time, in the order they came, whichever worker holds them."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.coalesce import in_turn
from bot.config import Settings
from bot.store import INBOUND_GROUP, RedisStore
from tests.conftest import free_port, message
from tests.fakes import FakeLLM
from tests.service import Service, shared_redis_env, start

QUESTIONS = [
    "How long does standard delivery take?",
    "What time do your stores open on Sunday?",
    "Do you take Apple Pay?",
    "How do I return a jacket?",
    "How long is a gift card valid for?",
]
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def at(text: str, conversation: str, seconds: float, id: str) -> object:
    return message(text, id=id).model_copy(
        update={"conversation_id": conversation, "created_at": T0 + timedelta(seconds=seconds)}
    )


def test_a_conversation_takes_turns_one_burst_at_a_time() -> None:
    a1, a2, a3 = (at("a", "A", s, f"a{s}") for s in (0, 1, 30))  # a1 and a2: one burst; a3 later
    b1, b2 = at("b", "B", 0, "b1"), at("b", "B", 40, "b2")
    queued = {("generic", "A"): [a1.key, a2.key, a3.key], ("generic", "B"): ["generic:b0", b1.key, b2.key]}
    ready, blocked = in_turn([a3, a2, a1, b2, b1], queued, window_s=3)
    assert ready == [2, 1]  # a1 and a2 together; a3 waits for them; B waits for b0, held elsewhere
    assert blocked == [(("generic", "B"), "generic:b0")]
    ready, blocked = in_turn([a3], {("generic", "A"): [a3.key]}, window_s=3)
    assert (ready, blocked) == ([0], [])
    legacy = in_turn([a2, a1], {}, window_s=0)  # queued before the order existed: by time, one at a time
    assert legacy == ([1], [])


@pytest.mark.slow
async def test_three_workers_answer_each_message_once_in_order_per_conversation(
    settings: Settings, redis: Redis, fake_llm: FakeLLM, tmp_path: Path, brand_models: Path, policies_dir: Path
) -> None:
    fake_llm.delay = 0.2  # drafts overlap across workers
    env = await shared_redis_env(settings, tmp_path / "data", brand_models, policies_dir, fake_llm)
    env |= {
        "BOT_WORKER_BATCH": "2",  # small batches: each conversation's messages spread over the workers
    }
    store = RedisStore(redis, settings.redis_prefix, ttl_s=600)
    await store.setup()
    now = datetime.now(UTC)
    conversations = [f"conv-{c}" for c in range(6)]
    messages = [  # round robin: c0 #0, c1 #0, ... c5 #0, c0 #1, ...; 10 s apart within a conversation
        message(f"{QUESTIONS[k]} [{conversation} #{k}]", id=f"{conversation}-{k}").model_copy(
            update={"conversation_id": conversation, "created_at": now - timedelta(seconds=60 - 10 * k)}
        )
        for k in range(len(QUESTIONS))
        for conversation in conversations
    ]
    workers: list[Service] = [await start("worker", free_port(), env, tmp_path / f"w{i}.log") for i in range(3)]
    try:
        # All three ready before the work arrives: a worker that loaded its model first would otherwise take all.
        await asyncio.gather(*(worker.wait_ready() for worker in workers))
        assert all(await store.enqueue(messages))
        for _ in range(1800):
            states = [await store.message_state("generic", m.id) for m in messages]
            if all(state is not None and state.status != "received" for state in states):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the workers never finished")
        assert await store.pending_count(store.keys.inbound, INBOUND_GROUP) == 0
    finally:
        for worker in workers:
            assert await worker.stop() == 0, worker.log.read_text()
    logs = [worker.log.read_text() for worker in workers]
    assert all("Traceback" not in log for log in logs), logs
    committed = [
        json.loads(line)["message_id"]
        for log in logs
        for line in log.splitlines()
        if line.startswith("{") and json.loads(line).get("message") == "committed"
    ]
    assert sorted(committed) == sorted(m.id for m in messages)  # each handled once, by one of the workers
    assert sum(1 for log in logs if '"committed"' in log) >= 2  # the work was shared
    for conversation in conversations:
        context = await store.conversation("generic", conversation)
        asked = [turn.text for turn in context.turns if turn.role == "customer"]
        assert asked == [f"{QUESTIONS[k]} [{conversation} #{k}]" for k in range(len(QUESTIONS))]
    # Each draft was asked for with the conversation so far: the message before it had been handled already.
    for request in fake_llm.requests:
        prompt = json.dumps(request["messages"])
        for conversation in conversations:
            for k in range(1, len(QUESTIONS)):
                if f"[{conversation} #{k}]" in request["messages"][-1]["content"]:
                    assert f"[{conversation} #{k - 1}]" in prompt, (conversation, k)
