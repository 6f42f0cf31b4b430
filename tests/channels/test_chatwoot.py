"""Chatwoot: the timestamped signature (the computed vector and its negatives, replays, unsigned Chatwoot), the
published message_created parsed (and everything the bot must not answer), replies and hand-over as the
Application API wants them (against a fake Chatwoot), and its errors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

from bot.channels import build_channels, off_channels
from bot.channels.chatwoot import SIGNATURE_HEADER, TIMESTAMP_HEADER, ChatwootChannel, signature
from bot.config import Settings
from bot.errors import BadRequest, ChannelError, Unauthentic
from bot.models import InboundMessage, Reply
from tests.channels import authentic
from tests.channels.fake_chatwoot import Call, FakeChatwoot
from tests.conftest import free_port

DATA = Path(__file__).parent / "data"  # the platform's own examples (wire-format facts)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TOKEN = "cw-agent-bot-token"


def example(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())  # type: ignore[no-any-return]


VECTOR = example("chatwoot_signature_vector")
SECRET = VECTOR["secret"]
SIGNED_AT = int(VECTOR["x_chatwoot_timestamp"])


def created(**changes: Any) -> dict[str, Any]:
    """The published message_created, in a conversation the bot owns (pending), with `changes` on top."""
    body = example("chatwoot_message_created")["payload"]
    body["conversation"]["status"] = "pending"
    return body | changes


def raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


@pytest.fixture
async def chatwoot() -> AsyncIterator[FakeChatwoot]:
    fake = FakeChatwoot(TOKEN, conversations={(1, 10): "pending"})
    yield fake
    await fake.close()


@pytest.fixture
async def channel(chatwoot: FakeChatwoot) -> AsyncIterator[ChatwootChannel]:
    url = await chatwoot.start()
    async with aiohttp.ClientSession() as session:
        yield ChatwootChannel(url, TOKEN, SECRET.encode(), session, clock=lambda: SIGNED_AT + 10)


@pytest.fixture
async def message(channel: ChatwootChannel) -> InboundMessage:
    [parsed] = channel.parse(raw(created()), NOW)
    return parsed


def test_the_signature_covers_the_timestamp_and_the_raw_body(channel: ChatwootChannel) -> None:
    body, stamp = VECTOR["raw_body"].encode(), VECTOR["x_chatwoot_timestamp"]
    expected = VECTOR["expected_header"][SIGNATURE_HEADER]
    assert signature(SECRET.encode(), stamp, body) == expected
    assert authentic(channel, {SIGNATURE_HEADER: expected, TIMESTAMP_HEADER: stamp}, body)
    digest = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).digest()
    for headers, changed in (
        ({SIGNATURE_HEADER: signature(b"another_secret", stamp, body), TIMESTAMP_HEADER: stamp}, body),
        ({SIGNATURE_HEADER: expected, TIMESTAMP_HEADER: stamp}, body.replace(b'"hi"', b'"ho"')),  # one byte
        ({SIGNATURE_HEADER: expected, TIMESTAMP_HEADER: str(SIGNED_AT + 1)}, body),  # another timestamp
        ({SIGNATURE_HEADER: VECTOR["wrong_variant_body_only"], TIMESTAMP_HEADER: stamp}, body),
        ({SIGNATURE_HEADER: "sha256=" + base64.b64encode(digest).decode(), TIMESTAMP_HEADER: stamp}, body),
        ({SIGNATURE_HEADER: expected.removeprefix("sha256="), TIMESTAMP_HEADER: stamp}, body),
    ):
        with pytest.raises(Unauthentic) as wrong:
            channel.verify(headers, changed)
        assert wrong.value.reason == "bad_signature"
    for headers, reason in (
        ({TIMESTAMP_HEADER: stamp}, "missing_signature"),
        ({SIGNATURE_HEADER: "", TIMESTAMP_HEADER: stamp}, "missing_signature"),
        ({SIGNATURE_HEADER: expected}, "missing_timestamp"),
        ({SIGNATURE_HEADER: expected, TIMESTAMP_HEADER: "1700000000.0"}, "missing_timestamp"),
    ):
        with pytest.raises(Unauthentic) as missing:
            channel.verify(headers, body)
        assert missing.value.reason == reason


async def test_a_signed_delivery_from_outside_the_replay_window_is_refused() -> None:
    body, stamp = VECTOR["raw_body"].encode(), VECTOR["x_chatwoot_timestamp"]
    headers = {SIGNATURE_HEADER: VECTOR["expected_header"][SIGNATURE_HEADER], TIMESTAMP_HEADER: stamp}
    async with aiohttp.ClientSession() as session:

        def at(moment: float) -> ChatwootChannel:
            return ChatwootChannel("http://chatwoot.invalid", TOKEN, SECRET.encode(), session, clock=lambda: moment)

        assert authentic(at(SIGNED_AT + 300), headers, body) and authentic(at(SIGNED_AT - 300), headers, body)
        for moment in (SIGNED_AT + 301, SIGNED_AT - 301):  # a replay, or a clock far off
            with pytest.raises(Unauthentic) as stale:
                at(moment).verify(headers, body)
            assert stale.value.reason == "stale_timestamp"


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def test_unsigned_deliveries_only_when_allowed_and_no_secret_is_set() -> None:
    body = VECTOR["raw_body"].encode()
    base = {"chatwoot_url": "https://chatwoot.example.com", "chatwoot_bot_token": TOKEN}
    async with aiohttp.ClientSession() as session:
        unsigned = ChatwootChannel.from_settings(settings(**base, chatwoot_allow_unsigned=True), session)
        assert authentic(unsigned, {}, body)
        both = settings(**base, chatwoot_allow_unsigned=True, chatwoot_secret=SECRET)
        assert not authentic(ChatwootChannel.from_settings(both, session), {}, body)
        assert "chatwoot" in build_channels(both, session)
    assert "BOT_CHATWOOT_BOT_TOKEN" in off_channels(settings())["chatwoot"]
    with pytest.raises(ValidationError, match="BOT_CHATWOOT_SECRET"):
        settings(**base)
    with pytest.raises(ValidationError, match="BOT_CHATWOOT_URL"):
        settings(chatwoot_bot_token=TOKEN, chatwoot_secret=SECRET)


def test_chatwoot_has_no_handshake(channel: ChatwootChannel) -> None:
    assert channel.handshake({"hub.challenge": "x"}) is None


def test_the_published_message_is_answered_only_while_the_bot_owns_the_conversation(
    channel: ChatwootChannel,
) -> None:
    published = example("chatwoot_message_created")["payload"]
    assert published["conversation"]["status"] == "open"  # people own it: the bot stays silent
    assert channel.parse(raw(published), NOW) == []
    [message] = channel.parse(raw(created()), NOW)
    assert (message.channel, message.id, message.conversation_id, message.text, message.public) == (
        "chatwoot",
        "118",
        "1:10",
        "hi",
        False,
    )
    assert (message.author.id, message.author.handle, message.attachments) == ("14", "little-haze-776", ())
    assert message.created_at == datetime(2021, 7, 23, 18, 2, 48, tzinfo=UTC) and message.received_at == NOW


def test_echoes_notes_agents_and_other_events_give_nothing(channel: ChatwootChannel) -> None:
    bot = {"id": 3, "name": "Northwind bot", "type": "agent_bot"}
    agent = {"id": 1, "name": "John", "type": "user"}
    for body in (
        created(id=119, content="Standard delivery takes 3–5 working days.", message_type="outgoing", sender=bot),
        created(id=120, content="Customer sounds annoyed", message_type="outgoing", private=True, sender=agent),
        created(id=121, content="I will take this one", message_type="outgoing", sender=agent),
        created(id=122, content="hi", private=True),
        created(id=123, content="Conversation was marked open by John", message_type="activity", sender=None),
        created(id=124, content="Get notified by email", message_type="template", sender=None),
        created(event="message_updated"),
        {"event": "conversation_opened", "id": 10, "status": "open", "account": {"id": 1}},
        {"event": "conversation_resolved", "id": 10, "status": "resolved"},
        {"event": "webwidget_triggered", "id": 12, "contact": {"id": 14}, "event_info": {}},
        created(content=None),  # neither words nor attachments
    ):
        assert channel.parse(raw(body), NOW) == [], body


def test_attachments_without_words_and_the_platform_username(channel: ChatwootChannel) -> None:
    files = [{"id": 1, "message_id": 118, "file_type": "image"}, {"id": 2, "message_id": 118, "file_type": "image"}]
    [photo] = channel.parse(raw(created(content=None, attachments=[*files, {"id": 3, "file_type": "audio"}])), NOW)
    assert (photo.text, photo.attachments) == ("", ("image", "audio"))
    [captioned] = channel.parse(raw(created(content="is this one waterproof?", attachments=files)), NOW)
    assert (captioned.text, captioned.attachments) == ("is this one waterproof?", ())
    telegram = created()
    telegram["conversation"]["meta"]["sender"]["additional_attributes"] = {"username": "ana_buyer"}
    assert channel.parse(raw(telegram), NOW)[0].author.handle == "ana_buyer"
    nameless = created(sender={"id": 14, "type": "contact"})
    assert channel.parse(raw(nameless), NOW)[0].author.handle == "14"


def test_malformed_deliveries_name_what_is_wrong(channel: ChatwootChannel) -> None:
    broken_conversation = created()
    broken_conversation["conversation"]["id"] = "ten"
    for body, where in (
        (b"not json", "body"),
        (b'{"id": 118}', "event"),
        (raw(broken_conversation), "conversation.id"),
        (raw({k: v for k, v in created().items() if k != "account"}), "account"),
        (raw(created(created_at="yesterday")), "created_at"),
        (raw(created(sender=None)), "sender"),
        (raw(created(content="x" * 20_001)), "text"),  # longer than the bot reads: Chatwoot's agents take it
    ):
        with pytest.raises(BadRequest) as bad:
            channel.parse(body, NOW)
        assert bad.value.reason == "invalid_event" and bad.value.detail.startswith(where), bad.value.detail


async def test_a_reply_is_an_outgoing_public_message_in_the_conversation(
    channel: ChatwootChannel, chatwoot: FakeChatwoot, message: InboundMessage
) -> None:
    sent = await channel.send(Reply(reply_id="r1", message=message, text="Hello Ana!", origin="bot"))
    published = example("chatwoot_agent_bot_api")["reply"]
    expected = {key: published["body"][key] for key in ("message_type", "private")} | {"content": "Hello Ana!"}
    assert chatwoot.calls == [Call(1, 10, "messages", TOKEN, expected)]
    assert sent == "5001"
    longest = "x" * 150_000
    assert await channel.send(Reply(reply_id="r2", message=message, text=longest, origin="bot")) == "5002"
    with pytest.raises(ChannelError) as too_long:
        await channel.send(Reply(reply_id="r3", message=message, text=longest + "x", origin="bot"))
    assert not too_long.value.retryable and chatwoot.requests == 2  # refused before asking Chatwoot


async def test_hand_over_opens_the_conversation_to_chatwoots_agents(
    channel: ChatwootChannel, chatwoot: FakeChatwoot, message: InboundMessage
) -> None:
    await channel.hand_over(message)
    handoff = example("chatwoot_agent_bot_api")["handoff"]
    assert chatwoot.calls == [Call(1, 10, "toggle_status", TOKEN, handoff["body"])]
    assert chatwoot.conversations[1, 10] == "open"
    chatwoot.fail = [503]
    with pytest.raises(ChannelError) as down:
        await channel.hand_over(message)
    assert down.value.retryable
    gone = message.model_copy(update={"conversation_id": "1:11"})
    with pytest.raises(ChannelError) as missing:
        await channel.hand_over(gone)
    assert not missing.value.retryable and "404" in str(missing.value)


async def test_errors_say_whether_to_retry_and_when(
    channel: ChatwootChannel, chatwoot: FakeChatwoot, message: InboundMessage
) -> None:
    reply = Reply(reply_id="r1", message=message, text="Hello", origin="bot")
    chatwoot.fail = [429]
    with pytest.raises(ChannelError) as limited:
        await channel.send(reply)
    assert limited.value.retryable and limited.value.retry_after == 30.0
    chatwoot.fail, chatwoot.retry_after = [429], None  # rack-attack's default: no Retry-After
    with pytest.raises(ChannelError) as unsaid:
        await channel.send(reply)
    assert unsaid.value.retryable and unsaid.value.retry_after == 60.0
    chatwoot.fail = [500]
    with pytest.raises(ChannelError) as down:
        await channel.send(reply)
    assert down.value.retryable and down.value.retry_after is None
    elsewhere = reply.model_copy(update={"message": message.model_copy(update={"conversation_id": "2:10"})})
    with pytest.raises(ChannelError) as missing:
        await channel.send(elsewhere)
    assert not missing.value.retryable and "404" in str(missing.value)
    assert chatwoot.calls == []
    async with aiohttp.ClientSession() as session:
        wrong_token = ChatwootChannel(chatwoot.url, "another-token", None, session)
        with pytest.raises(ChannelError) as refused:
            await wrong_token.send(reply)
        assert not refused.value.retryable and "401" in str(refused.value)
        nobody = ChatwootChannel(f"http://127.0.0.1:{free_port()}", TOKEN, None, session)
        with pytest.raises(ChannelError) as unreachable:
            await nobody.send(reply)
        assert unreachable.value.retryable


async def test_the_fake_refuses_what_chatwoot_refuses(chatwoot: FakeChatwoot) -> None:
    url = await chatwoot.start() + "/api/v1/accounts/1/conversations/10"
    auth = {"api_access_token": TOKEN}
    reply = {"content": "Hi", "message_type": "outgoing", "private": False}
    async with aiohttp.ClientSession() as session:
        for path, body, headers, status in (
            ("/messages", reply, {"Authorization": f"Bearer {TOKEN}"}, 401),
            ("/messages", reply | {"message_type": "incoming"}, auth, 422),
            ("/messages", reply | {"private": "false"}, auth, 422),
            ("/messages", reply | {"content": ""}, auth, 422),
            ("/messages", reply | {"text": "Hi"}, auth, 422),
            ("/toggle_status", {"status": "closed"}, auth, 422),
            ("/toggle_status", {"status": "open"}, {"api_access_token": "other"}, 401),
        ):
            async with session.post(url + path, json=body, headers=headers) as response:
                assert response.status == status, (path, body)
        async with session.post(url + "/toggle_status", json={"status": "open"}, headers=auth) as response:
            assert await response.json() == example("chatwoot_agent_bot_api")["handoff"]["response"]
    assert chatwoot.conversations == {(1, 10): "open"}
