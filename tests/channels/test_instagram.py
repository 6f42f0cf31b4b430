"""Instagram: X-Hub-Signature-256 under the Meta or the Instagram app secret, the hub.challenge handshake, the
published deliveries parsed (DMs, echoes, comments in both published shapes, live comments, mentions), and
replies as the Graph API wants them (against a fake Graph API): DMs inside the window, public comment replies,
private replies to live comments, throttling, errors and the 1000-byte limit."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.channels import meta, off_channels
from bot.channels.instagram import InstagramChannel
from bot.config import Settings
from bot.errors import BadRequest, ChannelError, Unauthentic
from bot.models import InboundMessage, Reply
from tests.channels import authentic
from tests.channels.fake_graph import FakeGraph, GraphCall
from tests.conftest import free_port

DATA = Path(__file__).parent / "data"  # the platform's own examples (wire-format facts)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
META_SECRET = "meta-app-secret"
IG_SECRET = "TEST_APP_SECRET"  # the official vector's secret, standing in for an Instagram app secret
VERIFY = "meatyhamhock"
PAGE_TOKEN = "EAAB-page-token"
IG_TOKEN = "IGAA-instagram-token"
ACCOUNT = "<YOUR_APP_USERS_INSTAGRAM_ACCOUNT_ID>"


def example(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())  # type: ignore[no-any-return]


def delivery(name: str) -> bytes:
    return json.dumps(example(name)["payload"]).encode()


def make(graph_url: str, session: aiohttp.ClientSession, secrets: list[str] | None = None) -> InstagramChannel:
    return InstagramChannel(
        app_secrets=[META_SECRET, IG_SECRET] if secrets is None else secrets,
        verify_token=VERIFY,
        token=IG_TOKEN,
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
async def channel(graph: FakeGraph) -> AsyncIterator[InstagramChannel]:
    url = await graph.start()
    async with aiohttp.ClientSession() as session:
        yield make(f"{url}/v23.0", session)


def dm(channel: InstagramChannel, age: timedelta = timedelta(hours=1)) -> InboundMessage:
    [message] = channel.parse(delivery("instagram_dm_text"), NOW)
    return message.model_copy(update={"created_at": NOW - age})


async def test_a_signature_by_either_app_secret_is_accepted(channel: InstagramChannel) -> None:
    official = example("meta_x_hub_signature_vector")  # Meta's vector holds for Instagram deliveries too
    body = official["body"].encode()
    assert authentic(channel, official["expected_header"], body)  # the Instagram app secret
    assert not authentic(channel, official["expected_header"], b"tesT")
    dm_body = delivery("instagram_dm_text")
    for secret in (META_SECRET, IG_SECRET):
        assert authentic(channel, {meta.SIGNATURE_HEADER: meta.signature(secret.encode(), dm_body)}, dm_body)
    assert not authentic(channel, {meta.SIGNATURE_HEADER: meta.signature(b"a third secret", dm_body)}, dm_body)
    async with aiohttp.ClientSession() as session:
        meta_only = make("http://127.0.0.1:9/v23.0", session, [META_SECRET])
    assert not authentic(meta_only, official["expected_header"], body)  # no Instagram app secret configured
    with pytest.raises(Unauthentic) as missing:
        channel.verify({"X-Hub-Signature": "sha1=00"}, dm_body)
    assert missing.value.reason == "missing_signature"


def test_the_hub_challenge_handshake(channel: InstagramChannel) -> None:
    published = example("meta_verify_challenge")
    good = channel.handshake(published["request"]["query"])
    assert good is not None and (good.status, good.body) == (200, "1158201444")
    bad = channel.handshake(published["request"]["query"] | {"hub.verify_token": "nope"})
    assert bad is not None and bad.status == 403


def test_the_published_direct_message_and_its_echo(channel: InstagramChannel) -> None:
    [message] = channel.parse(delivery("instagram_dm_text"), NOW)
    assert (message.channel, message.id, message.conversation_id, message.text, message.public) == (
        "instagram_dm",
        "<MESSAGE_ID>",
        f"{ACCOUNT}:<IGSID>",
        "Is this still available?",
        False,
    )
    assert (message.author.id, message.author.handle) == ("<IGSID>", "<IGSID>")
    assert message.created_at == datetime.fromtimestamp(1700000000, UTC) and message.received_at == NOW
    assert channel.parse(delivery("instagram_dm_echo"), NOW) == []
    unflagged = example("instagram_dm_echo")["payload"]
    del unflagged["entry"][0]["messaging"][0]["message"]["is_echo"]  # sent by the account itself all the same
    assert channel.parse(json.dumps(unflagged).encode(), NOW) == []
    scoped = example("instagram_dm_echo")["payload"]
    scoped["entry"][0]["messaging"][0]["sender"]["id"] = "<BUSINESS_IGSID>"  # flagged, from another id of ours
    assert channel.parse(json.dumps(scoped).encode(), NOW) == []
    unsent = example("instagram_dm_text")["payload"]
    unsent["entry"][0]["messaging"][0]["message"] |= {"is_deleted": True}
    assert channel.parse(json.dumps(unsent).encode(), NOW) == []
    share = example("instagram_dm_text")["payload"]
    share["entry"][0]["messaging"][0]["message"] = {"mid": "m2", "attachments": [{"type": "ig_reel"}]}
    [reel] = channel.parse(json.dumps(share).encode(), NOW)
    assert (reel.text, reel.attachments) == ("", ("ig_reel",))


def test_the_published_comment_in_both_shapes(channel: InstagramChannel) -> None:
    [comment] = channel.parse(delivery("instagram_comment"), NOW)
    assert (comment.channel, comment.id, comment.conversation_id, comment.text, comment.public) == (
        "instagram_comment",
        "<COMMENT_ID>",
        "<COMMENT_ID>",
        "<COMMENT_TEXT>",
        True,
    )
    assert (comment.author.id, comment.author.handle) == ("<INSTAGRAM_SCOPED_USER_ID>", "<USERNAME>")
    assert comment.created_at == datetime.fromtimestamp(1700000000, UTC)  # entry.time: the value has none
    flat = example("instagram_comment")["payload"]
    entry = flat["entry"][0]
    entry |= entry.pop("changes")[0]  # the examples page's shape: field and value directly under the entry
    assert channel.parse(json.dumps(flat).encode(), NOW) == [comment]


def comment_delivery(field: str = "comments", /, **value: Any) -> bytes:
    body = example("instagram_comment")["payload"]
    change = body["entry"][0]["changes"][0]
    change["field"] = field
    change["value"] |= value
    return json.dumps(body).encode()


def test_own_comments_replies_and_live_comments(channel: InstagramChannel) -> None:
    assert channel.parse(comment_delivery(**{"from": {"id": ACCOUNT, "username": "northwind"}}), NOW) == []
    [reply] = channel.parse(comment_delivery(id="c2", parent_id="<COMMENT_ID>"), NOW)
    assert (reply.id, reply.conversation_id) == ("c2", "<COMMENT_ID>")
    [live] = channel.parse(comment_delivery("live_comments", id="c3"), NOW)
    assert (live.channel, live.id, live.conversation_id, live.public) == (
        "instagram_comment",
        "c3",
        "live:<MEDIA_ID>",
        True,
    )
    assert channel.parse(comment_delivery("story_insights"), NOW) == []


def test_a_mention_is_logged_and_skipped(channel: InstagramChannel, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="bot.channels.instagram"):
        assert channel.parse(delivery("instagram_mention"), NOW) == []
    [record] = [r for r in caplog.records if r.name == "bot.channels.instagram"]
    assert "mention skipped" in record.getMessage()
    assert "media=<MEDIA_ID>" in record.getMessage() and "comment=<COMMENT_ID>" in record.getMessage()


def test_batched_dms_and_comments(channel: InstagramChannel) -> None:
    dms = example("instagram_dm_text")["payload"]["entry"][0]
    echo = example("instagram_dm_echo")["payload"]["entry"][0]["messaging"][0]
    second = copy.deepcopy(dms["messaging"][0])
    second["message"] = {"mid": "m2", "text": "And in blue?"}
    comments = example("instagram_comment")["payload"]["entry"][0]
    body = {"object": "instagram", "entry": [dms | {"messaging": [dms["messaging"][0], echo, second]}, comments]}
    messages = channel.parse(json.dumps(body).encode(), NOW)
    assert [(m.channel, m.id) for m in messages] == [
        ("instagram_dm", "<MESSAGE_ID>"),
        ("instagram_dm", "m2"),
        ("instagram_comment", "<COMMENT_ID>"),
    ]


@pytest.mark.parametrize(
    ("body", "reason", "named"),
    [
        (b"", "invalid_delivery", "body"),
        (b'{"object": "instagram", "entry": {}}', "invalid_delivery", "entry"),
        (b'{"object": "page", "entry": []}', "wrong_object", "/webhooks/instagram takes 'instagram'"),
        (
            b'{"object": "instagram", "entry": [{"id": "1", "time": 1, "changes": [{"field": "comments", '
            b'"value": {"from": {"id": "2"}, "text": "hi"}}]}]}',
            "invalid_delivery",
            "entry.0.changes.0.value.id",
        ),
        (
            b'{"object": "instagram", "entry": [{"id": "1", "changes": [{"field": "comments"}]}]}',
            "invalid_delivery",
            "entry.0.changes.0.value",
        ),
    ],
)
def test_malformed_deliveries_name_the_problem(channel: InstagramChannel, body: bytes, reason: str, named: str) -> None:
    with pytest.raises(BadRequest) as caught:
        channel.parse(body, NOW)
    assert caught.value.reason == reason and named in caught.value.detail


async def test_a_dm_reply_and_the_window(channel: InstagramChannel, graph: FakeGraph) -> None:
    sent = await channel.send(Reply(reply_id="r1", message=dm(channel), text="Yes! Want the link?", origin="bot"))
    published = example("instagram_outbound")["dm_reply"]
    assert sent == "m_sent1"
    assert graph.calls == [
        GraphCall("/v23.0/me/messages", "instagram", published["body"] | {"recipient": {"id": "<IGSID>"}})
    ]
    assert published["response"].keys() == {"recipient_id", "message_id"}  # what the fake answers
    late = Reply(reply_id="r2", message=dm(channel, timedelta(days=2)), text="Sorry for the wait.", origin="reviewer")
    await channel.send(late)
    assert graph.calls[1].body == {
        "recipient": {"id": "<IGSID>"},
        "message": {"text": "Sorry for the wait."},
        "messaging_type": "MESSAGE_TAG",
        "tag": "HUMAN_AGENT",
    }
    for age, origin in ((timedelta(hours=25), "bot"), (timedelta(days=7, seconds=1), "reviewer")):
        with pytest.raises(ChannelError) as closed:
            await channel.send(Reply(reply_id="r3", message=dm(channel, age), text="Hi", origin=origin))
        assert closed.value.reason == "outside_messaging_window" and not closed.value.retryable
    assert len(graph.calls) == 2


async def test_comment_replies(channel: InstagramChannel, graph: FakeGraph) -> None:
    outbound = example("instagram_outbound")
    [comment] = channel.parse(delivery("instagram_comment"), NOW)
    sent = await channel.send(Reply(reply_id="r1", message=comment, text="Thanks for asking!", origin="bot"))
    assert sent == "<COMMENT_ID>_reply1"
    [live] = channel.parse(comment_delivery("live_comments"), NOW)
    text = "Thanks! Sent you the details."
    assert await channel.send(Reply(reply_id="r2", message=live, text=text, origin="bot")) == "m_sent2"
    assert graph.calls == [
        GraphCall("/v23.0/<COMMENT_ID>/replies", "instagram", outbound["public_reply_to_comment"]["body_or_query"]),
        GraphCall(
            "/v23.0/me/messages",
            "instagram",
            outbound["private_reply_to_comment"]["body"] | {"recipient": {"comment_id": "<COMMENT_ID>"}},
        ),
    ]


async def test_limits(channel: InstagramChannel, graph: FakeGraph) -> None:
    message = dm(channel)
    await channel.send(Reply(reply_id="r1", message=message, text="é" * 500, origin="bot"))  # 1000 bytes
    for text in ("é" * 501, "x" * 1001, ""):
        with pytest.raises(ChannelError) as refused:
            await channel.send(Reply(reply_id="r2", message=message, text=text, origin="bot"))
        assert not refused.value.retryable
    [comment] = channel.parse(delivery("instagram_comment"), NOW)
    await channel.send(Reply(reply_id="r3", message=comment, text="y" * 2200, origin="bot"))
    with pytest.raises(ChannelError):
        await channel.send(Reply(reply_id="r4", message=comment, text="y" * 2201, origin="bot"))
    [live] = channel.parse(comment_delivery("live_comments"), NOW)
    with pytest.raises(ChannelError) as private:  # a private reply is a DM: 1000 bytes, refused before sending
        await channel.send(Reply(reply_id="r5", message=live, text="y" * 1001, origin="bot"))
    assert "instagram_dm reply must be 1 to 1000 long, not 1001" in str(private.value)
    assert [call.path for call in graph.calls] == ["/v23.0/me/messages", "/v23.0/<COMMENT_ID>/replies"]


async def test_errors_say_whether_to_retry_and_when(channel: InstagramChannel, graph: FakeGraph) -> None:
    reply = Reply(reply_id="r1", message=dm(channel), text="Hello", origin="bot")
    graph.fail = [429]
    with pytest.raises(ChannelError) as throttled:
        await channel.send(reply)
    assert throttled.value.retryable and throttled.value.retry_after == 120.0
    graph.fail = [502]
    with pytest.raises(ChannelError) as down:
        await channel.send(reply)
    assert down.value.retryable
    graph.fail = [{"code": 10, "error_subcode": 2534022, "message": "This message is sent outside of allowed window."}]
    with pytest.raises(ChannelError) as late:
        await channel.send(reply)
    assert not late.value.retryable and late.value.reason == "outside_messaging_window"
    graph.fail = [{"code": 100, "message": "(#100) No matching user found"}]
    with pytest.raises(ChannelError) as unknown:
        await channel.send(reply)
    assert not unknown.value.retryable
    async with aiohttp.ClientSession() as session:
        nobody = make(f"http://127.0.0.1:{free_port()}/v23.0", session)
        with pytest.raises(ChannelError) as refused:
            await nobody.send(reply)
    assert refused.value.retryable
    assert graph.calls == []


async def test_configured_by_the_instagram_token(graph: FakeGraph) -> None:
    off = Settings(
        _env_file=None,  # type: ignore[call-arg]
        meta_page_token=PAGE_TOKEN,
        meta_app_secret=META_SECRET,
        meta_verify_token=VERIFY,
    )
    assert not InstagramChannel.configured(off) and "instagram" in off_channels(off)
    on = Settings(
        _env_file=None,  # type: ignore[call-arg]
        meta_instagram_token=IG_TOKEN,
        meta_app_secret=META_SECRET,
        meta_instagram_app_secret=IG_SECRET,
        meta_verify_token=VERIFY,
        meta_instagram_graph_url=await graph.start(),
    )
    assert InstagramChannel.configured(on)
    async with aiohttp.ClientSession() as session:
        channel = InstagramChannel.from_settings(on, session)
        official = example("meta_x_hub_signature_vector")
        assert authentic(channel, official["expected_header"], official["body"].encode())
        message = dm(channel).model_copy(update={"created_at": datetime.now(UTC)})
        await channel.send(Reply(reply_id="r1", message=message, text="Hello", origin="bot"))
    assert [(call.path, call.owner) for call in graph.calls] == [("/v23.0/me/messages", "instagram")]
