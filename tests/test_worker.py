"""Worker and sender in-process, on a real Redis and the real model: outages, failed deliveries, poison."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from bot.app import build_composer, load_brand, open_backend
from bot.channels.generic import GenericChannel
from bot.classify import Classifier
from bot.classify.encoder import TransformersEncoder
from bot.config import Settings
from bot.draft.llm import LLMDrafter
from bot.metrics import create_metrics
from bot.models import Action, CaseState, Context, Reply, Status
from bot.pipeline import Pipeline
from bot.policy.load import load_policy
from bot.policy.schema import BrandPolicy
from bot.store import INBOUND_GROUP, OUTBOX_GROUP, Entry, RedisStore
from bot.worker import Sender, Worker, stable_id
from tests.conftest import ROOT, SECRET, message
from tests.fakes import FakeLLM, Receiver


async def pipeline(settings: Settings, encoder: TransformersEncoder, models_dir: Path) -> Pipeline:
    """The service's pipeline, with the model `settings` configure (none: offline drafts only)."""
    brand = load_brand(settings)
    metrics = create_metrics()
    composer = build_composer(settings, brand, encoder, await open_backend(settings), metrics)
    classifier = Classifier.build(encoder, brand.policy, models_dir)
    return Pipeline(classifier, composer, brand.policy, brand.holding, metrics)


def with_decision(policy: BrandPolicy, **update: object) -> BrandPolicy:
    return policy.model_copy(update={"decision": policy.decision.model_copy(update=update)})


def off_duty(policy: BrandPolicy) -> BrandPolicy:
    """The policy with every day of the coming week a holiday: the reviewers are off whenever the test runs."""
    today = datetime.now(UTC).date()
    holidays = [today + timedelta(days=d) for d in range(-1, 8)]
    return with_decision(policy, review_hours=policy.decision.review_hours.model_copy(update={"holidays": holidays}))


@pytest.fixture
async def store(redis: Redis, settings: Settings) -> AsyncIterator[RedisStore]:
    store = RedisStore(redis, settings.redis_prefix, ttl_s=600)
    await store.setup()
    yield store


async def test_model_outage_falls_back_to_the_offline_drafter(
    settings: Settings, encoder: TransformersEncoder, models_dir: Path, fake_llm: FakeLLM
) -> None:
    fake_llm.mode = "503"
    settings = settings.model_copy(
        update={"llm_base_url": await fake_llm.start(), "llm_api_key": SecretStr(fake_llm.api_key), "llm_retries": 1}
    )
    service = await pipeline(settings, encoder, models_dir)
    [outcome] = await service.run([(message("How long does standard delivery take?"), Context())])
    assert isinstance(service.composer.drafter, LLMDrafter)
    await service.composer.drafter.backend.close()
    assert len(fake_llm.requests) == 2  # the model was asked first, and once more
    assert outcome.draft is not None and outcome.draft.drafter == "offline"
    assert outcome.draft.note.startswith("fallback:") and outcome.decision.action is Action.AUTO_SEND


async def test_a_hung_model_opens_the_circuit_and_no_message_waits_on_it(
    settings: Settings, encoder: TransformersEncoder, models_dir: Path, store: RedisStore, fake_llm: FakeLLM
) -> None:
    fake_llm.mode, fake_llm.slow_s = "slow", 30  # accepts the request, never answers in time
    settings = settings.model_copy(
        update={
            "llm_base_url": await fake_llm.start(),
            "llm_api_key": SecretStr(fake_llm.api_key),
            "llm_timeout": 0.5,
            "llm_breaker_failures": 2,
        }
    )
    questions = ["Do you take Amex?", "How long is delivery?", "My order never came and I'm furious", "Store hours?"]
    msgs = [message(text, id=f"m{i}") for i, text in enumerate(questions * 2)]
    await store.enqueue(msgs)
    service = await pipeline(settings, encoder, models_dir)
    service.policy = with_decision(service.policy, coalesce_seconds=0)  # two batches, as read
    worker = Worker(store, service, settings, create_metrics(), "w1")
    for _ in range(2):  # two batches of four: the first meets the hung model, the second an open circuit
        await worker.handle(await store.read(store.keys.inbound, INBOUND_GROUP, "w1", 4, 100))
    assert isinstance(service.composer.drafter, LLMDrafter)
    await service.composer.drafter.backend.close()
    assert len(fake_llm.requests) == 4  # the second batch did not ask (nor wait)
    states = [await store.message_state("generic", m.id) for m in msgs]
    # FAQs answered offline (in the outbox), the complaint with a person: as if there were no model at all.
    assert [s.status if s else None for s in states] == [
        Status.PROCESSING,
        Status.PROCESSING,
        Status.IN_REVIEW,
        Status.PROCESSING,
    ] * 2
    assert await store.pending_count(store.keys.inbound, INBOUND_GROUP) == 0  # every message finished


async def test_ignored_and_reviewed_messages_get_no_reply(
    settings: Settings, encoder: TransformersEncoder, models_dir: Path, store: RedisStore, redis: Redis
) -> None:
    msgs = [
        message("New autumn range is in stores now!", handle="@NorthwindOutfit", id="own"),
        message("I want to speak to a lawyer about your boots", id="legal"),
        message("Do you accept PayPal?", id="faq"),
    ]
    await store.enqueue(msgs)
    worker = Worker(store, await pipeline(settings, encoder, models_dir), settings, create_metrics(), "w1")
    await worker.handle(await store.read(store.keys.inbound, INBOUND_GROUP, "w1", 10, 100))
    states = {m.id: await store.message_state("generic", m.id) for m in msgs}
    assert {k: s.status for k, s in states.items() if s} == {
        "own": Status.IGNORED,
        "legal": Status.IN_REVIEW,
        "faq": Status.PROCESSING,
    }
    assert await redis.xlen(store.keys.outbox) == 1
    [case] = await store.pending_cases()
    assert case.message.id == "legal" and "risk:legal_threat" in case.decision.reasons


async def test_undeliverable_reply_becomes_a_review_case(
    make_settings: object, store: RedisStore, receiver: Receiver, redis: Redis
) -> None:
    settings: Settings = make_settings(send_attempts=3)  # type: ignore[operator]
    receiver.fail_times = 3
    url = await receiver.start()
    msg = message("Do you take Amex?", id="m1")
    await store.enqueue([msg])
    await redis.xadd(
        store.keys.outbox,
        {"m": Reply(reply_id=stable_id("r_", msg.key), message=msg, text="Yes.", origin="bot").model_dump_json()},
    )
    metrics = create_metrics()
    async with aiohttp.ClientSession() as session:
        sender = Sender(store, {"generic": GenericChannel(SECRET.encode(), url, session)}, settings, metrics, "s1")
        stopping = asyncio.Event()
        task = asyncio.create_task(sender.run(stopping))
        for _ in range(100):
            if await store.pending_cases():
                break
            await asyncio.sleep(0.05)
        [case] = await store.pending_cases()
        assert case.decision.reasons == ("delivery_failed",) and case.draft is not None and case.draft.text == "Yes."
        assert await redis.xlen(store.keys.dead) == 1 and receiver.replies == []
        state = await store.message_state("generic", "m1")
        assert state is not None and state.status is Status.IN_REVIEW
        assert (state.reply, state.reasons, state.case_id) == ("Yes.", ("delivery_failed",), case.case_id)
        # The platform is back; a reviewer sends it after all.
        reply = Reply(reply_id=stable_id("r_", msg.key), message=msg, text="Yes, we take Amex.", origin="reviewer")
        await store.resolve(case.case_id, "alice", CaseState.APPROVED, reply)
        await receiver.wait_for(1, timeout=10)
        stopping.set()
        await asyncio.wait_for(task, 5)
    assert [r["text"] for r in receiver.replies] == ["Yes, we take Amex."]
    assert metrics.replies_failed.labels("generic", "retryable")._value.get() == 3


async def test_poison_message_is_dead_lettered_to_a_human(
    make_settings: object, store: RedisStore, encoder: TransformersEncoder, models_dir: Path, redis: Redis
) -> None:
    settings: Settings = make_settings(max_deliveries=2)  # type: ignore[operator]
    msg = message("Do you take Amex?", id="m1")
    await store.enqueue([msg])
    [entry] = await store.read(store.keys.inbound, INBOUND_GROUP, "w1", 10, 100)
    worker = Worker(store, await pipeline(settings, encoder, models_dir), settings, create_metrics(), "w1")
    await worker.handle([Entry(entry.entry_id, entry.payload, deliveries=3)])  # failed twice before
    [case] = await store.pending_cases()
    assert case.decision.reasons == ("processing_failed",)
    assert await redis.xlen(store.keys.dead) == 1 and await redis.xlen(store.keys.outbox) == 0
    assert await store.pending_count(store.keys.inbound, INBOUND_GROUP) == 0


async def test_off_hours_a_reviewed_message_gets_a_holding_reply_and_keeps_its_case(
    settings: Settings, encoder: TransformersEncoder, models_dir: Path, store: RedisStore, receiver: Receiver
) -> None:
    service = await pipeline(settings, encoder, models_dir)
    service.policy = off_duty(service.policy)
    msg = message("my order NW-2231 never turned up and it's been two weeks", id="late", handle="jo")
    await store.enqueue([msg])
    metrics = create_metrics()
    await Worker(store, service, settings, metrics, "w1").handle(
        await store.read(store.keys.inbound, INBOUND_GROUP, "w1", 10, 100)
    )
    [case] = await store.pending_cases()
    assert case.message.id == "late" and case.decision.holding and case.decision.deadline is not None
    async with aiohttp.ClientSession() as session:
        sender = Sender(
            store,
            {"generic": GenericChannel(SECRET.encode(), await receiver.start(), session)},
            settings,
            metrics,
            "s1",
        )
        await sender.handle(await store.read(store.keys.outbox, OUTBOX_GROUP, "s1", 10, 100))
    [holding] = receiver.replies
    assert holding["text"].startswith("Hi @jo, thanks for your message. Our team is offline right now")
    state = await store.message_state("generic", "late")
    assert state is not None and state.status is Status.IN_REVIEW  # still the reviewer's
    assert metrics.holding_replies.labels("generic")._value.get() == 1
    assert [t.origin for t in (await store.conversation("generic", msg.conversation_id)).turns] == [None, "holding"]


async def test_a_burst_of_messages_is_answered_once(
    settings: Settings, encoder: TransformersEncoder, models_dir: Path, store: RedisStore, redis: Redis
) -> None:
    service = await pipeline(settings, encoder, models_dir)
    burst = [
        message(text, id=f"b{i}").model_copy(update={"conversation_id": "c-burst"})
        for i, text in enumerate(["hi there", "quick question", "how much is express delivery?"])
    ]
    metrics = create_metrics()
    worker = Worker(store, service, settings, metrics, "w1")
    await store.enqueue(burst[:1])
    handling = asyncio.create_task(worker.handle(await store.read(store.keys.inbound, INBOUND_GROUP, "w1", 10, 100)))
    await asyncio.sleep(0.5)  # the rest of the burst arrives while the worker waits out the window
    await store.enqueue(burst[1:])
    await asyncio.wait_for(handling, 60)
    states = [await store.message_state("generic", m.id) for m in burst]
    assert [s.status if s else None for s in states] == [Status.COALESCED, Status.COALESCED, Status.PROCESSING]
    assert states[0] is not None and states[0].reasons == ("coalesced_into:b2",)
    [entry] = await redis.xrange(store.keys.outbox)
    reply = Reply.model_validate_json(entry[1]["m"])
    assert "£9.95" in reply.text and reply.message.text == "hi there\nquick question\nhow much is express delivery?"
    assert metrics.coalesced._value.get() == 2
    assert await store.pending_count(store.keys.inbound, INBOUND_GROUP) == 0


async def test_a_long_review_queue_pushes_back_what_the_holding_reply_promises(
    settings: Settings, encoder: TransformersEncoder, models_dir: Path
) -> None:
    service = await pipeline(settings, encoder, models_dir)
    demo_hours = load_policy(ROOT / "policies").decision.review_hours  # the test settings work around the clock
    service.policy = with_decision(service.policy, review_hours=demo_hours)
    saturday_night = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)
    msg = [(message("my order NW-2231 never turned up", handle="jo"), Context())]
    [empty] = await service.run(msg, saturday_night, backlog=0)
    [busy] = await service.run(msg, saturday_night, backlog=180)  # 180 cases × 5 minutes: 15 working hours
    assert empty.holding_reply is not None and "by 12:00 on Monday" in empty.holding_reply
    assert busy.holding_reply is not None and "by 11:00 on Tuesday" in busy.holding_reply
