"""X: the CRC and signature vectors, every published delivery of both families (Account Activity and X Activity)
parsed, what is ignored, and replies as X API v2 wants them (against a fake X API) with its rate-limit signal."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

from bot.channels.x import SIGNATURE_HEADER, XChannel, rate_limit_wait
from bot.config import Settings
from bot.errors import BadRequest, ChannelError, Unauthentic
from bot.models import Reply
from tests.channels import authentic
from tests.channels.fake_x import NOT_MENTIONED, Call, FakeX
from tests.conftest import free_port

DATA = Path(__file__).parent / "data"  # the platform's own examples (wire-format facts)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TOKEN = "user-access-token-123"
SECRET = "consumer-secret-abc"
AAA_DM_BRAND = "4337869213"  # for_user_id of x_aaa_direct_message_events.json
AAA_MENTION_BRAND = "1615654896"  # for_user_id of x_aaa_tweet_create_mention.json
XAA_BRAND = "1111111111111111111"  # filter.user_id of the X Activity examples
BRANDS = {
    "x_aaa_direct_message_events": AAA_DM_BRAND,
    "x_aaa_tweet_create_mention": AAA_MENTION_BRAND,
    "x_xaa_post_mention_create": XAA_BRAND,
    "x_xaa_dm_received": XAA_BRAND,
}


def example(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())  # type: ignore[no-any-return]


def payload(name: str) -> dict[str, Any]:
    return example(name)["payload"]  # type: ignore[no-any-return]


def raw(body: object) -> bytes:
    return json.dumps(body).encode()


@pytest.fixture
async def fake() -> AsyncIterator[FakeX]:
    server = FakeX(TOKEN, AAA_DM_BRAND)
    yield server
    await server.close()


@pytest.fixture
async def api(fake: FakeX) -> AsyncIterator[tuple[XChannel, FakeX]]:
    url = await fake.start()
    async with aiohttp.ClientSession() as session:
        yield XChannel(SECRET, TOKEN, AAA_DM_BRAND, url, session), fake


def parse_with(user_id: str, body: object) -> list[Any]:
    return XChannel(SECRET, TOKEN, user_id, "http://127.0.0.1:9", None).parse(raw(body), NOW)  # type: ignore[arg-type]


def test_the_crc_answers_with_the_hmac_of_the_token_under_the_consumer_secret() -> None:
    vector = example("x_crc_vector")
    channel = XChannel(vector["consumer_secret"], TOKEN, "1", "http://x", None)  # type: ignore[arg-type]
    answer = channel.handshake({"crc_token": vector["crc_token"]})
    assert answer is not None and answer.status == vector["expected_response"]["status"] == 200
    assert answer.content_type == vector["expected_response"]["content_type"] == "application/json"
    assert json.loads(answer.body) == vector["expected_response"]["body"]
    assert json.loads(answer.body)["response_token"] == "sha256=Cytd4Sq+NvEcV3MMrXxWJGJx5A+y/lXzzU2Maartkx8="
    for extra in vector["extra_vectors"]:
        other = XChannel(extra["consumer_secret"], TOKEN, "1", "http://x", None)  # type: ignore[arg-type]
        answer = other.handshake({"crc_token": extra["crc_token"]})
        assert answer is not None and json.loads(answer.body) == {"response_token": extra["response_token"]}
    for query in ({}, {"crc_token": ""}, {"hub.challenge": "1"}):
        refused = channel.handshake(query)
        assert refused is not None and refused.status == 400 and "crc_token" in refused.body


def test_the_autohook_signature_vectors_and_their_negatives() -> None:
    vectors = example("x_signature_vectors_autohook")["vectors"]
    assert len(vectors) == 2
    for vector in vectors:
        channel = XChannel(vector["consumer_secret"], TOKEN, "1", "http://x", None)  # type: ignore[arg-type]
        body, header = vector["body"].encode(), vector["header"][SIGNATURE_HEADER]
        assert authentic(channel, {SIGNATURE_HEADER: header}, body)
        assert authentic(channel, {"X-Twitter-Webhooks-Signature": header}, body)  # header names ignore case
        hexed = "sha256=" + hmac.new(b"test", body, hashlib.sha256).hexdigest()  # the Meta habit: hex, not base64
        assert not authentic(channel, {SIGNATURE_HEADER: hexed}, body)
        assert not authentic(channel, {SIGNATURE_HEADER: header}, body[:-1] + b"x")  # one byte changed
        assert not authentic(channel, {SIGNATURE_HEADER: header.removeprefix("sha256=")}, body)
        assert not authentic(channel, {}, body)
        wrong = XChannel("tset", TOKEN, "1", "http://x", None)  # type: ignore[arg-type]
        assert not authentic(wrong, {SIGNATURE_HEADER: header}, body)
    channel = XChannel("test", TOKEN, "1", "http://x", None)  # type: ignore[arg-type]
    with pytest.raises(Unauthentic) as missing:
        channel.verify({}, b"{}")
    with pytest.raises(Unauthentic) as bad:
        channel.verify({SIGNATURE_HEADER: "sha256=AAAA"}, b"{}")
    assert (missing.value.reason, bad.value.reason) == ("missing_signature", "bad_signature")
    mac = hmac.new(b"test", b"{}", hashlib.sha256).digest()
    assert authentic(channel, {SIGNATURE_HEADER: "sha256=" + base64.b64encode(mac).decode()}, b"{}")


def test_an_account_activity_dm_is_a_private_message_from_its_sender() -> None:
    [dm] = parse_with(AAA_DM_BRAND, payload("x_aaa_direct_message_events"))
    assert (dm.channel, dm.id, dm.conversation_id, dm.text, dm.public) == (
        "x_dm",
        "954491830116155396",
        "3001969357",  # the other participant: the DM send's participant_id
        "Hello World!",
        False,
    )
    assert (dm.author.id, dm.author.handle, dm.author.followers) == ("3001969357", "furiouscamper", 22)
    assert dm.created_at == datetime(2018, 1, 19, 23, 12, 40, 557000, tzinfo=UTC) and dm.received_at == NOW
    assert dm.attachments == ()


def test_dms_the_brand_sent_other_accounts_and_other_activity_give_nothing() -> None:
    delivery = payload("x_aaa_direct_message_events")
    echo = copy.deepcopy(delivery)
    create = echo["direct_message_events"][0]["message_create"]
    create["sender_id"], create["target"]["recipient_id"] = AAA_DM_BRAND, "3001969357"
    assert parse_with(AAA_DM_BRAND, echo) == []  # the brand's own DM (sent from the app or by this bot)
    assert parse_with("999", delivery) == []  # the copy for another subscribed account
    for other in (
        {"favorite_events": [{"id": "a", "favorited_status": {}}]},
        {"follow_events": [{"type": "follow"}]},
        {"direct_message_indicate_typing_events": [{"sender_id": "3001969357"}]},
        {"direct_message_mark_read_events": [{"sender_id": "3001969357"}]},
        {"tweet_delete_events": [{"status": {"id": "1"}}]},
    ):
        assert parse_with(AAA_DM_BRAND, {"for_user_id": AAA_DM_BRAND, **other}) == []
    photo = copy.deepcopy(delivery)
    data = photo["direct_message_events"][0]["message_create"]["message_data"]
    data["text"] = "https://t.co/abc"
    data["attachment"] = {"type": "media", "media": {"type": "photo", "url": "https://t.co/abc"}}
    [message] = parse_with(AAA_DM_BRAND, photo)
    assert (message.text, message.attachments) == ("", ("image",))
    data["attachment"] = None
    data["text"] = " "
    assert parse_with(AAA_DM_BRAND, photo) == []  # neither words nor anything attached


def test_an_account_activity_mention_is_a_public_post_keyed_by_id_str() -> None:
    [post] = parse_with(AAA_MENTION_BRAND, payload("x_aaa_tweet_create_mention"))
    assert (post.channel, post.id, post.conversation_id, post.public) == (
        "x_mention",
        "1296887316556980230",  # id_str: the numeric id (…200) lost its last digits to a float
        "1296887091901718529",  # the post it replies to
        True,
    )
    assert post.text == (
        "See how @PennMedCDH are using X data to understand the COVID-19 health crisis 📊\n\nhttps://t.co/1tdA8uDWes"
    )
    assert (post.author.id, post.author.handle, post.author.followers) == ("2244994945", "XDevelopers", 512292)
    assert post.created_at == datetime(2020, 8, 21, 19, 10, 5, tzinfo=UTC)


def test_own_posts_retweets_long_posts_and_photos() -> None:
    delivery = payload("x_aaa_tweet_create_mention")
    own = copy.deepcopy(delivery)
    own["tweet_create_events"][0]["user"]["id_str"] = AAA_MENTION_BRAND
    assert parse_with(AAA_MENTION_BRAND, own) == []
    retweet = copy.deepcopy(delivery)
    retweet["tweet_create_events"][0]["retweeted_status"] = {"id_str": "1"}
    assert parse_with(AAA_MENTION_BRAND, retweet) == []
    root = copy.deepcopy(delivery)
    root["tweet_create_events"][0]["in_reply_to_status_id_str"] = None
    assert parse_with(AAA_MENTION_BRAND, root)[0].conversation_id == "1296887316556980230"
    long = copy.deepcopy(delivery)
    long["tweet_create_events"][0] |= {"truncated": True, "extended_tweet": {"full_text": "@PennMedCDH " + "a" * 200}}
    assert parse_with(AAA_MENTION_BRAND, long)[0].text == "@PennMedCDH " + "a" * 200
    long["tweet_create_events"][0]["extended_tweet"] |= {
        "full_text": "@PennMedCDH " + "a" * 200 + " https://t.co/vid",
        "extended_entities": {"media": [{"type": "video", "url": "https://t.co/vid"}]},
    }
    [video] = parse_with(AAA_MENTION_BRAND, long)
    assert (video.text, video.attachments) == ("@PennMedCDH " + "a" * 200, ("video",))
    photo = copy.deepcopy(delivery)
    media = [{"type": "photo", "url": "https://t.co/pic"}, {"type": "animated_gif", "url": "https://t.co/pic"}]
    photo["tweet_create_events"][0] |= {
        "text": "@PennMedCDH https://t.co/pic",
        "entities": {"media": media[:1]},
        "extended_entities": {"media": media},
    }
    [message] = parse_with(AAA_MENTION_BRAND, photo)
    assert (message.text, message.attachments) == ("@PennMedCDH", ("image", "video"))


def test_an_x_activity_mention_takes_its_author_from_includes() -> None:
    [post] = parse_with(XAA_BRAND, payload("x_xaa_post_mention_create"))
    assert (post.channel, post.id, post.conversation_id, post.text, post.public) == (
        "x_mention",
        "2080765813578191303",
        "2080765813578191303",
        "hey @ExampleUser",
        True,
    )
    assert (post.author.id, post.author.handle, post.author.followers) == ("2222222222222222222", "OtherUser", 97)
    assert post.created_at == datetime(2026, 7, 24, 21, 23, 23, tzinfo=UTC) and post.attachments == ()


def test_x_activity_events_that_are_not_a_customer_writing() -> None:
    mention = payload("x_xaa_post_mention_create")
    own = copy.deepcopy(mention)
    own["data"]["payload"]["author_id"] = XAA_BRAND
    assert parse_with(XAA_BRAND, own) == []
    assert parse_with("42", mention) == []  # another subscribed account's filter
    repost = copy.deepcopy(mention)
    repost["data"]["payload"]["referenced_tweets"] = [{"type": "retweeted", "id": "1"}]
    assert parse_with(XAA_BRAND, repost) == []
    for kind in ("dm.sent", "post.create", "like.create", "follow.create"):
        other = copy.deepcopy(payload("x_xaa_dm_received"))
        other["data"]["event_type"] = kind
        assert parse_with(XAA_BRAND, other) == [], kind
    batch = {"data": [mention["data"], payload("x_xaa_dm_received")["data"]]}
    assert [m.channel for m in parse_with(XAA_BRAND, batch)] == ["x_mention", "x_dm"]
    photo = copy.deepcopy(mention)
    photo["data"]["payload"] |= {
        "text": "https://t.co/img",
        "attachments": {"media_keys": ["3_1"]},
        "entities": {"urls": [{"url": "https://t.co/img", "media_key": "3_1"}]},
    }
    photo["data"]["includes"]["media"] = [{"media_key": "3_1", "type": "photo"}]
    [message] = parse_with(XAA_BRAND, photo)
    assert (message.text, message.attachments) == ("", ("image",))


def test_an_x_activity_dm_wraps_the_account_activity_shape_with_v2_users() -> None:
    [dm] = parse_with(XAA_BRAND, payload("x_xaa_dm_received"))
    assert (dm.channel, dm.id, dm.conversation_id, dm.text, dm.public) == (
        "x_dm",
        "2080765901528535096",
        "2222222222222222222",
        "hello!",
        False,
    )
    assert (dm.author.id, dm.author.handle, dm.author.followers) == ("2222222222222222222", "OtherUser", 97)
    assert dm.created_at == datetime.fromtimestamp(1784928224.372, UTC)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b"not json", "JSON"),
        (b"[1, 2]", "for_user_id"),
        (b'{"hello": 1}', "for_user_id"),
        (raw({"for_user_id": 4337869213}), "for_user_id"),  # a number: X sends ids as strings
        (raw({"for_user_id": "1", "tweet_create_events": [{"id": 1}]}), "tweet_create_events.0.id_str"),
        (raw({"for_user_id": "1", "direct_message_events": [{"type": "message_create"}]}), "direct_message_events.0"),
        (raw({"data": {"event_type": "post.mention.create"}}), "data"),
    ],
)
def test_malformed_deliveries_name_what_is_wrong(body: bytes, where: str) -> None:
    with pytest.raises(BadRequest) as bad:
        XChannel(SECRET, TOKEN, "1", "http://x", None).parse(body, NOW)  # type: ignore[arg-type]
    assert where in bad.value.detail


def test_malformed_fields_inside_an_x_activity_payload_and_a_timestamp() -> None:
    mention = payload("x_xaa_post_mention_create")
    del mention["data"]["payload"]["author_id"]
    with pytest.raises(BadRequest) as bad:
        parse_with(XAA_BRAND, mention)
    assert bad.value.reason == "invalid_event" and bad.value.detail.startswith("data.payload.author_id")
    aaa = payload("x_aaa_tweet_create_mention")
    aaa["tweet_create_events"][0]["created_at"] = "2020-08-21"
    with pytest.raises(BadRequest) as when:
        parse_with(AAA_MENTION_BRAND, aaa)
    assert "created_at" in when.value.detail


def reply_to(name: str, text: str) -> Reply:
    [message] = parse_with(BRANDS[name], payload(name))
    return Reply(reply_id="r1", message=message, text=text, origin="bot")


async def test_a_mention_is_answered_with_a_reply_post(api: tuple[XChannel, FakeX]) -> None:
    channel, fake = api
    published = example("x_create_post_reply")
    sent = await channel.send(reply_to("x_aaa_tweet_create_mention", "This is a reply!"))
    [call] = fake.calls
    assert call == Call(
        "/2/tweets",
        f"Bearer {TOKEN}",
        {"text": "This is a reply!", "reply": {"in_reply_to_tweet_id": "1296887316556980230"}},
    )
    assert call.body.keys() == published["request"]["body"].keys() and call.path == "/2/tweets"
    assert sent == "1582103724607971333"  # the fake's data.id, shaped as the published 201
    assert published["response"]["status"] == 201 and set(published["response"]["body"]["data"]) == {"id", "text"}


async def test_a_dm_is_answered_with_a_dm_to_its_sender(api: tuple[XChannel, FakeX]) -> None:
    channel, fake = api
    published = example("x_send_dm")
    sent = await channel.send(reply_to("x_aaa_direct_message_events", "Hello! It ships today."))
    assert fake.calls == [
        Call("/2/dm_conversations/with/3001969357/messages", f"Bearer {TOKEN}", {"text": "Hello! It ships today."})
    ]
    assert published["request"]["url"].endswith("/2/dm_conversations/with/9876543210/messages")
    assert fake.calls[0].body.keys() == published["request"]["body"].keys()
    assert sent == "1582103724607971333"  # data.dm_event_id
    assert set(published["response"]["body"]["data"]) == {"dm_conversation_id", "dm_event_id"}


async def test_texts_x_would_refuse_are_not_sent(api: tuple[XChannel, FakeX]) -> None:
    channel, fake = api
    for text in ("a" * 281, "品" * 141, "see https://example.com/" + "x" * 20 + " " + "a" * 253, "", "  "):
        with pytest.raises(ChannelError) as refused:
            await channel.send(reply_to("x_aaa_tweet_create_mention", text))
        assert not refused.value.retryable
    with pytest.raises(ChannelError):
        await channel.send(reply_to("x_aaa_direct_message_events", "a" * 10_001))
    assert fake.calls == []
    fits = ("a" * 280, "品" * 140, "see https://example.com/" + "x" * 200 + " " + "a" * 252)
    for text in fits:
        await channel.send(reply_to("x_aaa_tweet_create_mention", text))
    await channel.send(reply_to("x_aaa_direct_message_events", "a" * 10_000))
    assert [call.body["text"] for call in fake.calls] == [*fits, "a" * 10_000]


def test_the_wait_is_until_x_rate_limit_reset() -> None:
    published = example("x_rate_limit_429")["response"]
    headers = published["headers"]
    assert published["status"] == 429 and published["body"]["errors"][0]["code"] == 88
    assert rate_limit_wait(headers, 1705420800 - 42) == 42.0
    assert rate_limit_wait(headers, 1705420800 + 5) == 0.0  # already reset: at once
    assert rate_limit_wait({"Retry-After": "12"}, 0) == 12.0
    assert rate_limit_wait({}, 0) == 60.0


async def test_errors_say_whether_to_retry_and_when(api: tuple[XChannel, FakeX]) -> None:
    channel, fake = api
    mention = reply_to("x_aaa_tweet_create_mention", "Thanks!")
    dm = reply_to("x_aaa_direct_message_events", "Thanks!")
    for problem_json in (False, True):
        fake.fail, fake.problem_json = [429], problem_json
        with pytest.raises(ChannelError) as limited:
            await channel.send(mention)
        assert limited.value.retryable and limited.value.retry_after is not None
        assert abs(limited.value.retry_after - (fake.reset - time.time())) < 5
        assert ("code 88: Rate limit exceeded" if not problem_json else "Too Many Requests") in str(limited.value)
    fake.fail = [503]
    with pytest.raises(ChannelError) as down:
        await channel.send(dm)
    assert down.value.retryable and "503" in str(down.value)
    fake.replyable = {"1"}  # a self-serve app: only posts that mentioned the brand may be replied to
    with pytest.raises(ChannelError) as forbidden:
        await channel.send(mention)
    assert not forbidden.value.retryable and "403" in str(forbidden.value) and "self-serve" in str(forbidden.value)
    assert NOT_MENTIONED[:40] in str(forbidden.value)
    assert fake.calls == []
    async with aiohttp.ClientSession() as session:
        assert fake.server is not None
        stranger = XChannel(SECRET, "not-the-token", AAA_DM_BRAND, str(fake.server.make_url("")), session)
        with pytest.raises(ChannelError) as unauthorized:
            await stranger.send(dm)
        assert not unauthorized.value.retryable and "401" in str(unauthorized.value)
        gone = XChannel(SECRET, TOKEN, AAA_DM_BRAND, f"http://127.0.0.1:{free_port()}", session)
        with pytest.raises(ChannelError) as refused:
            await gone.send(dm)
        assert refused.value.retryable and "unreachable" in str(refused.value)


async def test_the_fake_answers_429_by_itself_once_the_window_is_spent(api: tuple[XChannel, FakeX]) -> None:
    channel, fake = api
    dm = reply_to("x_aaa_direct_message_events", "Thanks!")
    for _ in range(15):  # DM sends: 15 per 15 minutes per user
        await channel.send(dm)
    with pytest.raises(ChannelError) as limited:
        await channel.send(dm)
    assert limited.value.retryable and 800 < (limited.value.retry_after or 0) <= 900


def test_x_is_on_with_its_token_and_needs_the_secret_and_user_id() -> None:
    on = Settings(_env_file=None, x_user_token="t", x_consumer_secret="s", x_user_id="12")  # type: ignore[call-arg]
    assert XChannel.configured(on) and not XChannel.configured(Settings(_env_file=None))  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="BOT_X_CONSUMER_SECRET"):
        Settings(_env_file=None, x_user_token="t", x_user_id="12")  # type: ignore[call-arg]
    assert XChannel.surfaces == ("x_mention", "x_dm") and XChannel.name == "x"
