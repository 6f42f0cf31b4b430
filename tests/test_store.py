"""The Redis layer on a real Redis: dedup, exactly-once effects, reclaim, and review-case races."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.app import redis_ctx
from bot.cases import ReviewConflict
from bot.config import Settings
from bot.keys import REDIS, SETTINGS
from bot.models import (
    Action,
    CaseState,
    Classification,
    Decision,
    Draft,
    InboundMessage,
    Outcome,
    Priority,
    Reply,
    ReviewCase,
    Status,
)
from bot.store import INBOUND_GROUP, OUTBOX_GROUP, Begun, RedisStore
from tests.conftest import message


@pytest.fixture
async def store(redis: Redis, settings: Settings) -> RedisStore:
    store = RedisStore(redis, settings.redis_prefix, ttl_s=60)
    await store.setup()
    await store.setup()  # a second start finds the groups and carries on
    return store


def outcome(text: str, action: Action, priority: Priority = Priority.NORMAL, **kw: object) -> Outcome:
    return Outcome(
        message=message(text, **kw),
        classification=Classification(intent="delivery_info", confidence=0.9),
        draft=Draft(text="Draft", answerable=True, drafter="offline"),
        decision=Decision(action=action, reasons=("r",), priority=priority),
    )


def case_for(out: Outcome, case_id: str, age_s: float = 0) -> ReviewCase:
    return ReviewCase(
        case_id=case_id,
        message=out.message,
        classification=out.classification,
        draft=out.draft,
        decision=out.decision,
        created_at=datetime.now(UTC) - timedelta(seconds=age_s),
    )


async def test_enqueue_dedups_by_channel_and_id(store: RedisStore, redis: Redis) -> None:
    a, b = message("one", id="m1"), message("two", id="m2")
    assert await store.enqueue([a, b]) == [True, True]
    assert await store.enqueue([a, message("again", id="m3"), a]) == [False, True, False]
    assert await redis.xlen(store.keys.inbound) == 3
    state = await store.message_state("generic", "m1")
    assert state is not None and state.status is Status.RECEIVED
    assert await store.enqueue([a.model_copy(update={"channel": "other"})]) == [True]  # ids are per channel


async def test_concurrent_requests_share_script_calls_and_still_dedup(
    store: RedisStore, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    run = store._intake._run

    async def counted(messages: list[InboundMessage]) -> list[bool]:
        calls.append(len(messages))
        return await run(messages)

    monkeypatch.setattr(store._intake, "_run", counted)
    requests = [[message(f"hello {i}", id=f"c{i}")] for i in range(200)]
    requests += [[message("a platform's retry, racing the first delivery", id="c7")], []]
    answers = await asyncio.gather(*(store.enqueue(request) for request in requests))
    assert answers[:200] == [[True]] * 200 and answers[200] == [False] and answers[201] == []
    assert sum(calls) == 201 and len(calls) < 10  # a few round trips, not one per request
    assert await redis.xlen(store.keys.inbound) == 200


async def test_a_failed_script_call_fails_every_request_in_it_and_the_next_goes_on(
    store: RedisStore, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = store._intake._run
    failing = True

    async def flaky(messages: list[InboundMessage]) -> list[bool]:
        if failing:
            raise RedisConnectionError("connection reset")
        return await run(messages)

    monkeypatch.setattr(store._intake, "_run", flaky)
    answers = await asyncio.gather(
        *(store.enqueue([message("hi", id=f"f{i}")]) for i in range(5)), return_exceptions=True
    )
    assert all(isinstance(answer, RedisConnectionError) for answer in answers)
    failing = False
    assert await store.enqueue([message("hi", id="f1")]) == [True]  # nothing of the failed call was stored
    assert await redis.xlen(store.keys.inbound) == 1


async def test_commit_writes_effects_once_and_acks(store: RedisStore, redis: Redis) -> None:
    out = outcome("where is my parcel", Action.AUTO_SEND, id="m1")
    await store.enqueue([out.message])
    [entry] = await store.read(store.keys.inbound, INBOUND_GROUP, "c1", 10, 100)
    reply = Reply(reply_id="r1", message=out.message, text="On its way", origin="bot")
    assert await store.commit(entry.entry_id, out, reply, None)
    # A reclaimed copy of the same message (another worker finished it meanwhile) changes nothing.
    assert not await store.commit(entry.entry_id, out, reply, None)
    assert await redis.xlen(store.keys.outbox) == 1
    assert await store.pending_count(store.keys.inbound, INBOUND_GROUP) == 0
    assert await redis.xlen(store.keys.inbound) == 0
    state = await store.message_state("generic", "m1")
    assert state is not None and (state.status, state.decision, state.reply) == (
        Status.PROCESSING,
        Action.AUTO_SEND,
        "On its way",
    )
    context = await store.conversation("generic", out.message.conversation_id)
    assert [t.role for t in context.turns] == ["customer"]


async def test_concurrent_commits_share_a_transaction_and_each_message_takes_effect_once(
    store: RedisStore, redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    outs = [outcome(f"parcel {i}", Action.AUTO_SEND, id=f"m{i}") for i in range(60)]
    await store.enqueue([out.message for out in outs])
    entries = await store.read(store.keys.inbound, INBOUND_GROUP, "c1", 100, 100)
    replies = [
        Reply(reply_id=f"r{i}", message=out.message, text="On its way", origin="bot") for i, out in enumerate(outs)
    ]
    calls: list[int] = []
    run = store._steps._run

    async def counted(steps: list[object]) -> list[bool]:
        calls.append(len(steps))
        return await run(steps)  # type: ignore[arg-type]

    monkeypatch.setattr(store._steps, "_run", counted)
    # Another process (its own store, its own transactions) races to finish the same messages.
    other = RedisStore(redis, settings.redis_prefix, ttl_s=60)
    commits = [
        (s, entry.entry_id, out, reply)
        for entry, out, reply in zip(entries, outs, replies, strict=True)
        for s in (store, other)
    ]
    commits.append((store, entries[0].entry_id, outs[0], replies[0]))  # the same message twice in one call
    firsts = await asyncio.gather(*(s.commit(entry_id, out, reply, None) for s, entry_id, out, reply in commits))
    by_message = [sum(first for (_, _, out, _), first in zip(commits, firsts, strict=True) if out is o) for o in outs]
    assert by_message == [1] * 60  # exactly one finisher per message
    assert len(calls) < 10  # a few transactions for 121 commits, not one each
    assert await redis.xlen(store.keys.outbox) == 60
    assert await store.pending_count(store.keys.inbound, INBOUND_GROUP) == 0
    turns = await store.conversations([("generic", f"conv-m{i}") for i in range(60)])
    assert [len(context.turns) for context in turns] == [1] * 60


async def test_the_services_redis_pool_makes_callers_wait_for_a_connection_rather_than_fail(
    settings: Settings,
) -> None:
    app = web.Application()
    app[SETTINGS] = settings
    context = redis_ctx(app)
    await anext(context)
    try:
        redis = app[REDIS]
        # More callers than connections, each holding one for a moment (a blocking read with nothing to read).
        callers = settings.redis_connections + 20
        blocked = [redis.blpop([f"{settings.redis_prefix}:nothing"], timeout=0.2) for _ in range(callers)]
        assert await asyncio.gather(*blocked) == [None] * callers
    finally:
        await anext(context, None)  # the rest of the context: closes the pool


async def test_a_dead_consumers_entries_are_reclaimed(store: RedisStore) -> None:
    await store.enqueue([message("hello", id="m1")])
    [entry] = await store.read(store.keys.inbound, INBOUND_GROUP, "dies", 10, 100)
    assert await store.reclaim(store.keys.inbound, INBOUND_GROUP, "alive", 60_000, 10) == []  # not idle yet
    await asyncio.sleep(0.05)
    [again] = await store.reclaim(store.keys.inbound, INBOUND_GROUP, "alive", 10, 10)
    assert (again.entry_id, again.payload, again.deliveries) == (entry.entry_id, entry.payload, 2)


async def test_review_queue_order_and_one_winner(store: RedisStore, redis: Redis) -> None:
    normal_old = outcome("a", Action.REVIEW, Priority.NORMAL, id="a")
    urgent = outcome("b", Action.REVIEW, Priority.URGENT, id="b")
    high = outcome("c", Action.REVIEW, Priority.HIGH, id="c")
    for out, case_id, age in ((normal_old, "ca", 60), (urgent, "cb", 0), (high, "cc", 10)):
        await store.enqueue([out.message])
        [entry] = await store.read(store.keys.inbound, INBOUND_GROUP, "c1", 1, 100)
        await store.commit(entry.entry_id, out, None, case_for(out, case_id, age))
    assert [c.case_id for c in await store.pending_cases()] == ["cb", "cc", "ca"]
    reply = Reply(reply_id="r-b", message=urgent.message, text="A person here", origin="reviewer")
    results = await asyncio.gather(
        store.resolve("cb", "alice", CaseState.APPROVED, reply),
        store.resolve("cb", "bob", CaseState.REJECTED, None),
        return_exceptions=True,
    )
    assert sum(isinstance(r, ReviewConflict) for r in results) == 1
    winner = next(r for r in results if isinstance(r, ReviewCase))
    assert winner.state in {CaseState.APPROVED, CaseState.REJECTED}
    assert await redis.xlen(store.keys.outbox) == (1 if winner.state is CaseState.APPROVED else 0)
    assert await redis.xlen(store.keys.audit) == 1
    with pytest.raises(KeyError):
        await store.resolve("nope", "alice", CaseState.REJECTED, None)
    assert [c.case_id for c in await store.pending_cases()] == ["cc", "ca"]


async def test_concurrent_sends_begin_together_each_told_where_it_stands(store: RedisStore, redis: Redis) -> None:
    assert await store.begin_send("r-doubt", "dead-sender") is Begun.CLEAR  # that sender died mid-send
    begun = await asyncio.gather(*(store.begin_send(reply_id, "s1") for reply_id in ["r-doubt", "r-a", "r-b", "r-c"]))
    assert begun == [Begun.IN_DOUBT, Begun.CLEAR, Begun.CLEAR, Begun.CLEAR]  # each told where it stands
    assert await redis.get(store.keys.sending("r-a")) == "s1"
    states = await asyncio.gather(*(store.message_state("generic", m) for m in ["none-1", "none-2"]))
    assert states == [None, None]


async def test_delivery_is_recorded_once(store: RedisStore, redis: Redis) -> None:
    out = outcome("q", Action.AUTO_SEND, id="m1")
    reply = Reply(reply_id="r1", message=out.message, text="Answer", origin="bot")
    await redis.xadd(store.keys.outbox, {"m": reply.model_dump_json()})
    [entry] = await store.read(store.keys.outbox, OUTBOX_GROUP, "s1", 10, 100)
    assert await store.begin_send("r1", "s1") is Begun.CLEAR
    assert await store.delivered(entry.entry_id, reply)
    assert await store.begin_send("r1", "s2") is Begun.DELIVERED  # its ack lost, it is not sent again
    assert not await store.delivered(entry.entry_id, reply)
    context = await store.conversation("generic", out.message.conversation_id)
    assert [(t.role, t.text) for t in context.turns] == [("brand", "Answer")]
