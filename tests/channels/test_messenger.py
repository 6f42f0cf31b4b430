"""Messenger: X-Hub-Signature-256 on the raw bytes (the published vectors), the hub.challenge handshake, the
published page deliveries parsed (DMs, echoes, Page comments), and replies as the Graph API wants them
(against a fake Graph API): the Send API inside the 24-hour window, the HUMAN_AGENT tag, public comment replies,
throttling, errors and limits."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.channels import meta, off_channels
from bot.channels.messenger import MessengerChannel
from bot.config import Settings
from bot.errors import BadRequest, ChannelError, Unauthentic
from bot.models import InboundMessage, Reply
from tests.channels import authentic
from tests.channels.fake_graph import FakeGraph, GraphCall
from tests.conftest import free_port

DATA = Path(__file__).parent / "data"  # the platform's own examples (wire-format facts)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SECRET = "0123456789abcdef0123456789abcdef"  # the computed vector's app secret
VERIFY = "meatyhamhock"  # the published handshake's verify token
PAGE_TOKEN = "EAAB-page-token"
IG_TOKEN = "IGAA-instagram-token"


def example(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())  # type: ignore[no-any-return]


def delivery(name: str) -> bytes:
    return json.dumps(example(name)["payload"]).encode()


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {meta.SIGNATURE_HEADER: meta.signature(secret.encode(), body)}


def make(
    graph_url: str, session: aiohttp.ClientSession, token: str = PAGE_TOKEN, secret: str = SECRET
) -> MessengerChannel:
    return MessengerChannel(
        app_secrets=[secret],
        verify_token=VERIFY,
        token=token,
        graph_url=graph_url,
        session=session,
        clock=lambda: NOW,
    )


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraph]:
    fake = FakeGraph(PAGE_TOKEN, IG_TOKEN)
    yield fake
    await fake.close()


@pytest.fixture
async def channel(graph: FakeGraph) -> AsyncIterator[MessengerChannel]:
    url = await graph.start()
    async with aiohttp.ClientSession() as session:
        yield make(f"{url}/v23.0", session)


def dm(channel: MessengerChannel, age: timedelta = timedelta(hours=1)) -> InboundMessage:
    [message] = channel.parse(delivery("meta_messenger_text"), NOW)
    return message.model_copy(update={"created_at": NOW - age})


async def test_the_published_signature_vectors(channel: MessengerChannel) -> None:
    official = example("meta_x_hub_signature_vector")
    async with aiohttp.ClientSession() as session:
        sdk = make("http://127.0.0.1:9/v23.0", session, secret=official["app_secret"])
    body = official["body"].encode()
    assert authentic(sdk, official["expected_header"], body)
    assert not authentic(sdk, official["expected_header"], b"tesT")  # one byte changed
    assert not authentic(channel, official["expected_header"], body)  # another app's secret

    computed = example("meta_x_hub_signature_vector_computed")
    assert computed["app_secret"] == SECRET
    raw = computed["raw_body_utf8"].encode()
    assert authentic(channel, computed["expected_header"], raw)
    [message] = channel.parse(raw, NOW)
    assert message.text == "Grüße äöå" and message.conversation_id == "1234567890:1254459154682919"
    # The same JSON re-serialised with literal UTF-8 is other bytes: it must not verify.
    negative = computed["negative_case"]
    reserialised = negative["reserialised_body"].encode()
    assert meta.signature(SECRET.encode(), reserialised) == negative["its_hmac"]
    assert not authentic(channel, computed["expected_header"], reserialised)


def test_signature_negatives(channel: MessengerChannel) -> None:
    body = delivery("meta_messenger_text")
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    assert authentic(channel, signed(body), body)
    with pytest.raises(Unauthentic) as missing:
        channel.verify({}, body)
    assert missing.value.reason == "missing_signature"
    legacy = {"X-Hub-Signature": "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()}
    assert not authentic(channel, legacy, body)  # the legacy sha1 header alone is not enough
    with pytest.raises(Unauthentic) as wrong:
        channel.verify(signed(body, "another-secret"), body)
    assert wrong.value.reason == "bad_signature"
    for confused in (
        "sha256=" + base64.b64encode(digest).decode(),  # base64 instead of hex
        digest.hex(),  # no prefix
        "sha256=" + digest.hex().upper(),  # Meta sends lowercase hex
        "sha1=" + digest.hex(),
    ):
        assert not authentic(channel, {meta.SIGNATURE_HEADER: confused}, body)
    assert not authentic(channel, signed(body), body + b"\n")


def test_the_hub_challenge_handshake(channel: MessengerChannel) -> None:
    published = example("meta_verify_challenge")
    good = channel.handshake(published["request"]["query"])
    expected = published["expected_response_if_token_matches"]
    assert good is not None and (good.status, good.body, good.content_type) == (
        expected["status"],
        expected["body"],
        "text/plain",
    )
    for query in (
        published["request"]["query"] | {"hub.verify_token": "meatyhamhocks"},
        published["request"]["query"] | {"hub.mode": "unsubscribe"},
        {"hub.challenge": "1158201444"},
    ):
        bad = channel.handshake(query)
        assert bad is not None and bad.status == published["expected_response_if_token_mismatch"]["status"]


def test_the_published_direct_messages(channel: MessengerChannel) -> None:
    [text] = channel.parse(delivery("meta_messenger_text"), NOW)  # a quick reply: its text is the button title
    assert (text.channel, text.id, text.conversation_id, text.text, text.public) == (
        "messenger",
        "mid.1457764197618:41d102a3e1ae206a38",
        "<PAGE_ID>:<PSID>",
        "hello, world!",
        False,
    )
    assert (text.author.id, text.author.handle, text.author.followers) == ("<PSID>", "<PSID>", 0)
    assert text.created_at == datetime.fromtimestamp(1458692752.478, UTC) and text.received_at == NOW
    assert text.attachments == ()
    [reply] = channel.parse(delivery("meta_messenger_reply_to"), NOW)
    assert (reply.id, reply.conversation_id, reply.text) == (
        "m_1457764197618:41d102a3e1ae206a38",
        "<PAGE_ID>:<PSID>",
        "hello, world!",
    )
    assert channel.parse(delivery("meta_messenger_echo"), NOW) == []  # the Page's own message


def test_the_published_page_comment(channel: MessengerChannel) -> None:
    [comment] = channel.parse(delivery("meta_page_feed_comment"), NOW)
    assert (comment.channel, comment.id, comment.conversation_id, comment.text, comment.public) == (
        "facebook_comment",
        "<POST_ID>_<COMMENT_ID>",
        "<POST_ID>_<COMMENT_ID>",  # a top-level comment starts its own thread
        "Do you ship to Canada?",
        True,
    )
    assert (comment.author.id, comment.author.handle) == ("<USER_ID>", "Jane Doe")
    assert comment.created_at == datetime.fromtimestamp(1700000000, UTC)


def feed(**value: Any) -> bytes:
    body = example("meta_page_feed_comment")["payload"]
    body["entry"][0]["changes"][0]["value"] |= value
    return json.dumps(body).encode()


def test_page_comments_that_are_not_a_customers_new_comment(channel: MessengerChannel) -> None:
    assert channel.parse(feed(**{"from": {"id": "<PAGE_ID>", "name": "Northwind"}}), NOW) == []  # the Page's own
    assert channel.parse(feed(verb="edited"), NOW) == []
    assert channel.parse(feed(verb="remove"), NOW) == []
    assert channel.parse(feed(item="reaction", reaction_type="like"), NOW) == []
    assert channel.parse(feed(message=""), NOW) == []  # a photo or sticker alone
    [reply] = channel.parse(feed(comment_id="<POST_ID>_2", parent_id="<POST_ID>_<COMMENT_ID>"), NOW)
    assert (reply.id, reply.conversation_id) == ("<POST_ID>_2", "<POST_ID>_<COMMENT_ID>")  # the thread
    mention = example("meta_page_feed_comment")["payload"]
    mention["entry"][0]["changes"][0] = {"field": "mention", "value": {"item": "comment", "verb": "add"}}
    assert channel.parse(json.dumps(mention).encode(), NOW) == []


def test_batched_entries_echoes_receipts_attachments_and_standby(channel: MessengerChannel) -> None:
    text = example("meta_messenger_text")["payload"]["entry"][0]
    event = text["messaging"][0]
    echo = example("meta_messenger_echo")["payload"]["entry"][0]["messaging"][0]
    receipt = {"sender": event["sender"], "recipient": event["recipient"], "timestamp": 1, "delivery": {"mids": []}}
    read = {"sender": event["sender"], "recipient": event["recipient"], "timestamp": 1, "read": {"watermark": 1}}
    image = copy.deepcopy(event)
    image["message"] = {"mid": "m_image", "attachments": [{"type": "image", "payload": {"url": "https://x/1.jpg"}}]}
    sticker = copy.deepcopy(event)
    sticker["message"] = {"mid": "m_sticker", "sticker_id": 369239263222822, "attachments": [{"type": "image"}]}
    empty = copy.deepcopy(event)
    empty["message"] = {"mid": "m_empty"}
    second = {
        "id": 1234567890,  # ids come as numbers too
        "time": 1458692752478,
        "messaging": [
            {
                "sender": {"id": 42},
                "recipient": {"id": 1234567890},
                "timestamp": 1,
                "message": {"mid": "m2", "text": "hi"},
            }
        ],
    }
    standby = {"id": "<PAGE_ID>", "time": 1, "standby": [event]}  # another app owns that thread
    body = {
        "object": "page",
        "entry": [text | {"messaging": [event, echo, receipt, read, image, sticker, empty]}, second, standby],
    }
    messages = channel.parse(json.dumps(body).encode(), NOW)
    assert [(m.id, m.text, m.attachments) for m in messages] == [
        ("mid.1457764197618:41d102a3e1ae206a38", "hello, world!", ()),
        ("m_image", "", ("image",)),
        ("m_sticker", "", ("sticker",)),
        ("m2", "hi", ()),
    ]
    assert messages[3].conversation_id == "1234567890:42"


@pytest.mark.parametrize(
    ("body", "reason", "named"),
    [
        (b"{not json", "invalid_delivery", "body"),
        (b'{"object": "page"}', "invalid_delivery", "entry"),
        (b'{"object": "page", "entry": [{"messaging": []}]}', "invalid_delivery", "entry.0.id"),
        (
            b'{"object": "page", "entry": [{"id": "1", "messaging": [{"recipient": {"id": "1"}, "timestamp": 1}]}]}',
            "invalid_delivery",
            "entry.0.messaging.0.sender",
        ),
        (b'{"object": "instagram", "entry": []}', "wrong_object", "/webhooks/messenger takes 'page'"),
        (  # a page id no platform sends, past what the bot keeps as a conversation id (the fuzzer found it)
            b'{"object": "page", "entry": [{"id": 1%s, "messaging": [{"sender": {"id": "1"}, "recipient": '
            b'{"id": "1"}, "timestamp": 1, "message": {"mid": "m1", "text": "hi"}}]}]}' % (b"0" * 300),
            "invalid_delivery",
            "conversation_id: String should have at most 256 characters",
        ),
    ],
)
def test_malformed_deliveries_name_the_problem(channel: MessengerChannel, body: bytes, reason: str, named: str) -> None:
    with pytest.raises(BadRequest) as caught:
        channel.parse(body, NOW)
    assert caught.value.reason == reason and named in caught.value.detail


def test_a_page_comment_without_its_author_is_malformed(channel: MessengerChannel) -> None:
    body = example("meta_page_feed_comment")["payload"]
    del body["entry"][0]["changes"][0]["value"]["from"]
    with pytest.raises(BadRequest) as caught:
        channel.parse(json.dumps(body).encode(), NOW)
    assert caught.value.detail.startswith("entry.0.changes.0.value.from")


async def test_a_dm_reply_is_a_send_api_response(channel: MessengerChannel, graph: FakeGraph) -> None:
    sent = await channel.send(Reply(reply_id="r1", message=dm(channel), text="hello, world", origin="bot"))
    published = example("meta_messenger_send_api")
    assert sent == "m_sent1"
    assert graph.calls == [
        GraphCall(
            "/v23.0/me/messages",
            "page",
            {"recipient": {"id": "<PSID>"}, "messaging_type": "RESPONSE", "message": {"text": "hello, world"}},
        )
    ]
    assert graph.calls[0].body == published["request"]["body"] | {"recipient": {"id": "<PSID>"}}
    assert published["response"]["body"].keys() == {"recipient_id", "message_id"}  # what the fake answers


async def test_a_comment_reply_is_a_public_reply_under_the_comment(channel: MessengerChannel, graph: FakeGraph) -> None:
    [comment] = channel.parse(delivery("meta_page_feed_comment"), NOW)
    old = comment.model_copy(update={"created_at": NOW - timedelta(days=30)})  # no messaging window on comments
    sent = await channel.send(Reply(reply_id="r1", message=old, text="Thanks for asking!", origin="bot"))
    assert sent == "<POST_ID>_<COMMENT_ID>_reply1"
    published = example("meta_messenger_send_api")["public_reply_to_page_comment"]
    assert graph.calls == [GraphCall("/v23.0/<POST_ID>_<COMMENT_ID>/comments", "page", published["body"])]


async def test_the_messaging_window(channel: MessengerChannel, graph: FakeGraph) -> None:
    def reply(age: timedelta, origin: str) -> Reply:
        return Reply(reply_id="r", message=dm(channel, age), text="Sorry for the wait.", origin=origin)

    await channel.send(reply(timedelta(hours=24), "bot"))
    await channel.send(reply(timedelta(days=3), "reviewer"))
    assert graph.calls[0].body["messaging_type"] == "RESPONSE"
    assert graph.calls[1].body == {
        "recipient": {"id": "<PSID>"},
        "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT",
        "message": {"text": "Sorry for the wait."},
    }
    for age, origin in (
        (timedelta(hours=25), "bot"),
        (timedelta(hours=25), "holding"),
        (timedelta(days=8), "reviewer"),
    ):
        with pytest.raises(ChannelError) as closed:
            await channel.send(reply(age, origin))
        assert not closed.value.retryable and closed.value.reason == "outside_messaging_window"
    assert len(graph.calls) == 2


async def test_errors_say_whether_to_retry_and_when(channel: MessengerChannel, graph: FakeGraph) -> None:
    reply = Reply(reply_id="r1", message=dm(channel), text="Hello", origin="bot")
    graph.fail = [429]  # Graph's way: a 400 with a throttling code, and how long in X-Business-Use-Case-Usage
    with pytest.raises(ChannelError) as throttled:
        await channel.send(reply)
    assert throttled.value.retryable and throttled.value.retry_after == 120.0 and "80006" in str(throttled.value)
    for status in (500, 503):
        graph.fail = [status]
        with pytest.raises(ChannelError) as down:
            await channel.send(reply)
        assert down.value.retryable
    graph.fail = [
        {"code": 10, "error_subcode": 2018278, "message": "(#10) This message is sent outside of allowed window."}
    ]
    with pytest.raises(ChannelError) as late:
        await channel.send(reply)
    assert not late.value.retryable and late.value.reason == "outside_messaging_window"
    graph.fail = [{"code": 551, "message": "This person isn't available right now."}]
    with pytest.raises(ChannelError) as blocked:
        await channel.send(reply)
    assert not blocked.value.retryable and blocked.value.reason == "delivery_failed"
    assert graph.calls == []
    await channel.send(reply)
    assert len(graph.calls) == 1


async def test_a_bad_token_is_permanent_and_a_dead_graph_is_retried(graph: FakeGraph) -> None:
    url = await graph.start()
    async with aiohttp.ClientSession() as session:
        wrong = make(f"{url}/v23.0", session, token="EAAB-revoked")
        message = dm(wrong)
        with pytest.raises(ChannelError) as revoked:
            await wrong.send(Reply(reply_id="r1", message=message, text="Hello", origin="bot"))
        published = example("meta_graph_error")["response"]["body"]["error"]
        assert not revoked.value.retryable and f"code {published['code']}" in str(revoked.value)
        assert published["message"] in str(revoked.value)
        nobody = make(f"http://127.0.0.1:{free_port()}/v23.0", session)
        with pytest.raises(ChannelError) as refused:
            await nobody.send(Reply(reply_id="r1", message=message, text="Hello", origin="bot"))
        assert refused.value.retryable and "unreachable" in str(refused.value)
    assert graph.calls == []


async def test_texts_meta_would_refuse_are_not_sent(channel: MessengerChannel, graph: FakeGraph) -> None:
    message = dm(channel)
    await channel.send(Reply(reply_id="r1", message=message, text="x" * 2000, origin="bot"))
    for text in ("x" * 2001, "", "   "):
        with pytest.raises(ChannelError) as refused:
            await channel.send(Reply(reply_id="r2", message=message, text=text, origin="bot"))
        assert not refused.value.retryable
    [comment] = channel.parse(delivery("meta_page_feed_comment"), NOW)
    await channel.send(Reply(reply_id="r3", message=comment, text="y" * 8000, origin="bot"))
    with pytest.raises(ChannelError):
        await channel.send(Reply(reply_id="r4", message=comment, text="y" * 8001, origin="bot"))
    assert [call.path for call in graph.calls] == ["/v23.0/me/messages", "/v23.0/<POST_ID>_<COMMENT_ID>/comments"]


async def test_configured_by_the_page_token(graph: FakeGraph) -> None:
    off = Settings(_env_file=None)  # type: ignore[call-arg]
    assert not MessengerChannel.configured(off) and "messenger" in off_channels(off)
    on = Settings(
        _env_file=None,  # type: ignore[call-arg]
        meta_page_token=PAGE_TOKEN,
        meta_app_secret=SECRET,
        meta_verify_token=VERIFY,
        meta_graph_url=await graph.start() + "/",
        meta_graph_version="v23.0",
    )
    assert MessengerChannel.configured(on) and "messenger" not in off_channels(on)
    async with aiohttp.ClientSession() as session:
        channel = MessengerChannel.from_settings(on, session)
        message = dm(channel).model_copy(update={"created_at": datetime.now(UTC)})
        await channel.send(Reply(reply_id="r1", message=message, text="Hello", origin="bot"))
    assert [(call.path, call.owner) for call in graph.calls] == [("/v23.0/me/messages", "page")]
    with pytest.raises(ValueError, match="BOT_META_APP_SECRET"):
        Settings(_env_file=None, meta_page_token=PAGE_TOKEN)  # type: ignore[call-arg]
