"""The sender's delivery rules, on a real Redis against fake platforms: once only, paced, and to a person when
the platform can't take a reply."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from bot.channels.base import Channel
from bot.channels.chatwoot import ChatwootChannel
from bot.channels.generic import GenericChannel
from bot.channels.telegram import TelegramChannel
from bot.config import Settings
from bot.metrics import create_metrics
from bot.models import (
    Action,
    CaseState,
    Classification,
    Decision,
    InboundMessage,
    Outcome,
    Reply,
    ReviewCase,
    Status,
)
from bot.store import INBOUND_GROUP, Begun, RedisStore
from bot.worker import Sender, stable_id
from tests.channels.fake_chatwoot import FakeChatwoot
from tests.conftest import SECRET, message
from tests.fakes import FakeTelegram, Receiver

TOKEN = "42:sender-test"


@pytest.fixture
async def store(redis: Redis, settings: Settings) -> AsyncIterator[RedisStore]:
    store = RedisStore(redis, settings.redis_prefix, ttl_s=600)
    await store.setup()
    yield store


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram(TOKEN)
    yield fake
    await fake.close()


def telegram_message(text: str, number: int, *, age: timedelta = timedelta(0)) -> InboundMessage:
    at = datetime.now(UTC) - age
    return message(text, id=f"777:{number}", channel="telegram").model_copy(
        update={"conversation_id": "777", "created_at": at, "received_at": at}
    )


def reply_to(msg: InboundMessage, text: str = "Yes, we do.", origin: str = "bot") -> Reply:
    return Reply(reply_id=stable_id("r_", msg.key), message=msg, text=text, origin=origin)


async def run_sender(
    store: RedisStore, channel: Channel, settings: Settings, until: Callable[[], object], timeout: float = 10
) -> None:
    """Run a sender until `until()` (awaited if it is a coroutine) is true, then stop it."""
    sender = Sender(store, {channel.name: channel}, settings, create_metrics(), "s1")
    stopping = asyncio.Event()
    task = asyncio.create_task(sender.run(stopping))
    try:
        for _ in range(int(timeout * 20)):
            done = until()
            if asyncio.iscoroutine(done):
                done = await done
            if done:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the sender never got there")
    finally:
        stopping.set()
        await asyncio.wait_for(task, 5)


async def outbox_empty(store: RedisStore) -> bool:
    return await store.redis.xlen(store.keys.outbox) == 0


async def one_case(store: RedisStore) -> ReviewCase | None:
    cases = await store.pending_cases()
    return cases[0] if cases else None


async def test_a_reply_whose_sender_died_mid_send_goes_to_a_person_not_out_twice(
    store: RedisStore, telegram: FakeTelegram, settings: Settings, redis: Redis
) -> None:
    msg = telegram_message("Do you ship to Ireland?", 1)
    reply = reply_to(msg)
    assert await store.begin_send(reply.reply_id, "dead-sender") is Begun.CLEAR  # the sender then died in the send
    await redis.xadd(store.keys.outbox, {"m": reply.model_dump_json()})
    async with aiohttp.ClientSession() as session:
        channel = TelegramChannel(TOKEN, "secret", await telegram.start(), session)
        await run_sender(store, channel, settings, lambda: one_case(store))
    case = await one_case(store)
    assert case is not None and case.decision.reasons == ("delivery_in_doubt",)
    assert case.draft is not None and case.draft.text == "Yes, we do."
    assert telegram.calls == []  # Telegram can't tell a resend from a new message: a person checks first


async def test_a_receiver_that_dedups_gets_the_in_doubt_reply_again(
    store: RedisStore, receiver: Receiver, settings: Settings, redis: Redis
) -> None:
    msg = message("Do you ship to Ireland?", id="g1")
    reply = reply_to(msg)
    assert await store.begin_send(reply.reply_id, "dead-sender") is Begun.CLEAR
    await redis.xadd(store.keys.outbox, {"m": reply.model_dump_json()})
    async with aiohttp.ClientSession() as session:
        channel = GenericChannel(SECRET.encode(), await receiver.start(), session)
        await run_sender(store, channel, settings, lambda: receiver.replies)
    assert [r["reply_id"] for r in receiver.replies] == [reply.reply_id]  # it knows this id if it saw it before
    assert await store.pending_cases() == []


async def test_an_acknowledged_reply_is_never_sent_again_and_a_refused_attempt_is_retried(
    store: RedisStore, telegram: FakeTelegram, make_settings: Callable[..., Settings], redis: Redis
) -> None:
    settings = make_settings(send_backoff_s=0.01)
    telegram.fail = [500]
    msg = telegram_message("Do you ship to Ireland?", 2)
    reply = reply_to(msg)
    async with aiohttp.ClientSession() as session:
        channel = TelegramChannel(TOKEN, "secret", await telegram.start(), session)
        await redis.xadd(store.keys.outbox, {"m": reply.model_dump_json()})
        await run_sender(store, channel, settings, lambda: telegram.calls)
        await redis.xadd(store.keys.outbox, {"m": reply.model_dump_json()})  # the same reply, queued again
        await run_sender(store, channel, settings, lambda: outbox_empty(store))
    assert len(telegram.calls) == 1 and telegram.fail == []  # the 500 was retried; the resend was not made
    assert not await redis.exists(store.keys.sending(reply.reply_id))  # nothing left in doubt
    assert await store.pending_cases() == []


async def test_sends_of_a_surface_are_paced_across_processes(store: RedisStore, redis: Redis) -> None:
    waits = [await store.pace("x_dm", 2.0) for _ in range(4)]  # 2 a second: a burst of 2, then every 0.5 s
    assert waits[:2] == [0.0, 0.0]
    assert 0.4 <= waits[2] <= 0.5 and 0.9 <= waits[3] <= 1.0
    other = RedisStore(redis, store.keys.pace("x").split(":")[0], ttl_s=600)  # another process, same Redis
    assert await other.pace("x_dm", 2.0) >= 1.4
    assert await store.pace("telegram", 2.0) == 0.0  # each surface has its own pace


async def test_the_sender_waits_its_turn_before_sending(
    store: RedisStore, telegram: FakeTelegram, make_settings: Callable[..., Settings], redis: Redis
) -> None:
    settings = make_settings(send_rate="telegram=1")
    async with aiohttp.ClientSession() as session:
        channel = TelegramChannel(TOKEN, "secret", await telegram.start(), session)
        for number in (3, 4):
            await redis.xadd(store.keys.outbox, {"m": reply_to(telegram_message("Hi?", number)).model_dump_json()})
        started = asyncio.get_running_loop().time()
        await run_sender(store, channel, settings, lambda: len(telegram.calls) == 2)
    assert asyncio.get_running_loop().time() - started >= 0.9  # one a second: the second waited for its slot


async def test_a_hand_over_on_the_desk_opens_the_chatwoot_conversation_for_its_agents(
    store: RedisStore, settings: Settings, redis: Redis
) -> None:
    chatwoot = FakeChatwoot("cw-token", conversations={(3, 42): "pending"})
    msg = message("I want to speak to a person", id="cw1", channel="chatwoot").model_copy(
        update={"conversation_id": "3:42"}
    )
    outcome = Outcome(
        message=msg,
        classification=Classification(intent="other", confidence=0.4),
        draft=None,
        decision=Decision(action=Action.REVIEW, reasons=("low_confidence",)),
    )
    case = ReviewCase(
        case_id="c-cw1",
        message=msg,
        classification=None,
        draft=None,
        decision=outcome.decision,
        created_at=datetime.now(UTC),
    )
    await store.enqueue([msg])
    [entry] = await store.read(store.keys.inbound, INBOUND_GROUP, "w", 1, 100)
    await store.commit(entry.entry_id, outcome, None, case)
    await store.resolve("c-cw1", "alice", CaseState.HANDED_OVER, None, "wants a person", 3600)
    try:
        async with aiohttp.ClientSession() as session:
            channel = ChatwootChannel(await chatwoot.start(), "cw-token", b"cw-secret", session)
            await run_sender(store, channel, settings, lambda: outbox_empty(store))
    finally:
        await chatwoot.close()
    assert chatwoot.conversations[(3, 42)] == "open"
    assert [(c.action, c.body) for c in chatwoot.calls] == [("toggle_status", {"status": "open"})]
    state = await store.message_state("chatwoot", "cw1")
    assert state is not None and state.status is Status.HANDED_OVER  # not "sent": nothing was said


async def test_a_sender_has_at_most_send_in_flight_replies_at_the_platform(
    store: RedisStore, make_settings: Callable[..., Settings], redis: Redis
) -> None:
    settings = make_settings(send_in_flight=3)
    at_once, most, release = 0, 0, asyncio.Event()

    async def slow_platform(request: web.Request) -> web.Response:
        nonlocal at_once, most
        at_once += 1
        most = max(most, at_once)
        await release.wait()
        at_once -= 1
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/replies", slow_platform)
    async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession() as session:
        for number in range(8):
            reply = reply_to(message("Do you ship to Ireland?", id=f"slow{number}"))
            await redis.xadd(store.keys.outbox, {"m": reply.model_dump_json()})
        channel = GenericChannel(SECRET.encode(), str(server.make_url("/replies")), session)
        waiting = asyncio.create_task(run_sender(store, channel, settings, lambda: outbox_empty(store)))
        await asyncio.sleep(1)  # the sender has read all eight and holds what it may
        assert most == 3 and at_once == 3
        release.set()
        await waiting
    assert most == 3  # the later five went out only as earlier ones finished
