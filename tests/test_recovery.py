"""Nothing accepted is lost: a worker process killed with SIGKILL mid-message leaves its messages pending,
and another worker reclaims and finishes them without a second reply to any customer."""

from __future__ import annotations

import asyncio
import collections
import signal
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from bot.config import Settings
from bot.store import INBOUND_GROUP, RedisStore
from tests.conftest import SECRET, free_port, message, signed
from tests.fakes import FakeLLM, Receiver
from tests.service import FAQS, Service, shared_redis_env, start

pytestmark = pytest.mark.slow


async def test_killed_worker_is_replaced_without_double_replies(
    settings: Settings,
    redis: Redis,
    fake_llm: FakeLLM,
    receiver: Receiver,
    tmp_path: Path,
    brand_models: Path,
    policies_dir: Path,
) -> None:
    fake_llm.delay = 3  # long enough to be sure the worker is in the middle of its batch when it dies
    env = await shared_redis_env(settings, tmp_path / "data", brand_models, policies_dir, fake_llm)
    env |= {
        "BOT_GENERIC_SECRET": SECRET,
        "BOT_GENERIC_REPLY_URL": await receiver.start(),
        "BOT_CLAIM_IDLE_MS": "1500",
    }
    store = RedisStore(redis, settings.redis_prefix, ttl_s=600)
    messages = [message(text, id=f"m{i}") for i, text in enumerate(FAQS)]
    web = await start("web", free_port(), env, tmp_path / "web.log")  # intake runs alone, as in production
    await web.wait_ready()
    body = [
        {
            "id": m.id,
            "conversation_id": m.conversation_id,
            "text": m.text,
            "public": m.public,
            "author": m.author.model_dump(),
            "created_at": m.created_at.isoformat(),
        }
        for m in messages
    ]
    raw, headers = signed(body)
    async with (
        aiohttp.ClientSession() as session,
        session.post(web.url + "/webhooks/generic", data=raw, headers=headers) as response,
    ):
        assert response.status == 202 and await response.json() == {"accepted": len(messages), "duplicates": 0}
    assert await web.stop() == 0

    doomed = await start("worker", free_port(), env, tmp_path / "doomed.log")
    await asyncio.wait_for(fake_llm.started.wait(), 120)  # it has read the batch and is drafting
    assert await store.pending_count(store.keys.inbound, INBOUND_GROUP) == len(messages)
    assert await doomed.stop(signal.SIGKILL) == -signal.SIGKILL
    assert receiver.replies == []
    assert await store.pending_count(store.keys.inbound, INBOUND_GROUP) == len(messages)  # left pending, not lost

    # Two workers at once take over: the killed one's messages are finished once between them.
    heirs: list[Service] = [await start("worker", free_port(), env, tmp_path / f"heir{i}.log") for i in range(2)]
    try:
        states = {}
        for _ in range(1200):
            states = {m.id: await store.message_state("generic", m.id) for m in messages}
            if all(s is not None and s.status in {"sent", "in_review"} for s in states.values()):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(3)  # room for any duplicate to show up
        # Every message ends with exactly one reply, or with one review case and no reply.
        counts = collections.Counter(reply["in_reply_to"] for reply in receiver.replies)
        sent = {mid for mid, s in states.items() if s is not None and s.status == "sent"}
        assert counts == {mid: 1 for mid in sent}
        cases = {case.message.id for case in await store.pending_cases()}
        assert cases == set(states) - sent
        assert len(sent) >= len(messages) - 1, states
        assert await store.pending_count(store.keys.inbound, INBOUND_GROUP) == 0
        reclaimed = 0.0
        async with aiohttp.ClientSession() as session:
            for heir in heirs:
                await heir.wait_ready()
                text = await (await session.get(heir.url + "/metrics")).text()
                reclaimed += sum(
                    sample.value
                    for family in text_string_to_metric_families(text)
                    for sample in family.samples
                    if sample.name == "autoresponder_messages_reclaimed_total"
                )
        assert reclaimed == len(messages)
    finally:
        for heir in heirs:
            assert await heir.stop() == 0, heir.log.read_text()
    for heir in heirs:
        assert "Traceback" not in heir.log.read_text()
