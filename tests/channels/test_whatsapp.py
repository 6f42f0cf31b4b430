"""WhatsApp Cloud API: Meta's official signature vector, the hub.challenge handshake, the published deliveries
parsed (receipts and errors giving nothing), business-scoped user ids, and the send call as the Cloud API
wants it (against a fake), with its limits, the 24-hour window and what to retry."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.channels.whatsapp import WhatsAppChannel
from bot.config import Settings
from bot.errors import BadRequest, ChannelError
from bot.models import InboundMessage, Reply
from tests.channels import authentic
from tests.channels.fake_whatsapp import FakeWhatsApp
from tests.conftest import free_port

DATA = Path(__file__).parent / "data"  # the platform's own examples (wire-format facts)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TOKEN = "EAAG-test-whatsapp-token"
SECRET = "TEST_APP_SECRET"  # the official vector's app secret
VERIFY = "meatyhamhock"  # the published handshake's verify token
NUMBER = "106540352242922"  # the published examples' phone number id
BSUID = "US.13491208655302741918"


def example(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())  # type: ignore[no-any-return]


def raw(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def text_delivery(**message: Any) -> dict[str, Any]:
    """The published text message, with fields of its message replaced."""
    payload = copy.deepcopy(example("whatsapp_text")["payload"])
    payload["entry"][0]["changes"][0]["value"]["messages"][0] |= message
    return payload


def fresh(channel: WhatsAppChannel, age: timedelta = timedelta(minutes=1), **message: Any) -> InboundMessage:
    """The published text message as written `age` ago (the window counts from it)."""
    written = int((datetime.now(UTC) - age).timestamp())
    [parsed] = channel.parse(raw(text_delivery(timestamp=str(written), **message)), NOW)
    return parsed


@pytest.fixture
async def whatsapp() -> AsyncIterator[FakeWhatsApp]:
    fake = FakeWhatsApp(TOKEN, NUMBER)
    yield fake
    await fake.close()


@pytest.fixture
async def channel(whatsapp: FakeWhatsApp) -> AsyncIterator[WhatsAppChannel]:
    url = await whatsapp.start()
    async with aiohttp.ClientSession() as session:
        yield WhatsAppChannel(TOKEN, SECRET, VERIFY, url + "/v26.0", session)


def test_the_official_signature_vector_and_its_near_misses(channel: WhatsAppChannel) -> None:
    vector = example("meta_x_hub_signature_vector")
    assert vector["app_secret"] == SECRET
    body = vector["body"].encode()
    good = vector["expected_header"]["X-Hub-Signature-256"]
    assert good == "sha256=" + vector["expected_hex"]
    assert authentic(channel, {"X-Hub-Signature-256": good}, body)
    assert not authentic(channel, {"X-Hub-Signature-256": good}, b"tesT")  # one byte changed
    assert not authentic(channel, {"X-Hub-Signature-256": good}, body + b" ")
    wrong_secret = "sha256=" + hmac.new(b"TEST_APP_SECRET2", body, hashlib.sha256).hexdigest()
    assert not authentic(channel, {"X-Hub-Signature-256": wrong_secret}, body)
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).digest()
    assert not authentic(channel, {"X-Hub-Signature-256": "sha256=" + base64.b64encode(digest).decode()}, body)
    assert not authentic(channel, {"X-Hub-Signature-256": vector["expected_hex"]}, body)  # no "sha256=" prefix
    assert not authentic(channel, {"X-Hub-Signature-256": good.upper()}, body)
    assert not authentic(channel, {}, body)
    legacy = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    assert not authentic(channel, {"X-Hub-Signature": legacy}, body)  # the sha1 header alone is not enough


def test_the_hub_challenge_is_echoed_only_for_our_verify_token(channel: WhatsAppChannel) -> None:
    published = example("meta_verify_challenge")
    query: dict[str, str] = published["request"]["query"]

    def answer(query: dict[str, str]) -> tuple[int, str, str]:
        given = channel.handshake(query)
        assert given is not None
        return given.status, given.body, given.content_type

    expected = published["expected_response_if_token_matches"]
    assert answer(query) == (expected["status"], expected["body"], "text/plain") == (200, "1158201444", "text/plain")
    assert answer(query | {"hub.verify_token": "meatyhamhocK"})[0] == 403
    assert answer(query | {"hub.mode": "unsubscribe"})[0] == 403
    assert answer({k: v for k, v in query.items() if k != "hub.verify_token"})[0] == 403
    assert answer({k: v for k, v in query.items() if k != "hub.challenge"})[0] == 400


def test_the_published_text_message(channel: WhatsAppChannel) -> None:
    [message] = channel.parse(raw(example("whatsapp_text")["payload"]), NOW)
    assert message.channel == "whatsapp"
    assert message.id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    assert message.conversation_id == f"{NUMBER}:16505551234"
    assert (message.text, message.attachments, message.public) == ("Does it come in another color?", (), False)
    assert (message.author.id, message.author.handle, message.author.followers) == ("16505551234", "Sheena Nelson", 0)
    assert message.created_at == datetime.fromtimestamp(1749416383, UTC) and message.received_at == NOW


def test_receipts_errors_and_other_fields_give_no_message(
    channel: WhatsAppChannel, caplog: pytest.LogCaptureFixture
) -> None:
    status = example("whatsapp_status_sent")["payload"]
    assert channel.parse(raw(status), NOW) == []
    failed = copy.deepcopy(status)
    failed["entry"][0]["changes"][0]["value"]["statuses"][0] |= {
        "status": "failed",
        "errors": [{"code": 131047, "title": "Re-engagement message"}],
    }
    errors = copy.deepcopy(status)
    value = errors["entry"][0]["changes"][0]["value"]
    del value["statuses"]
    value["errors"] = [{"code": 131000, "title": "Something went wrong", "message": "Something went wrong"}]
    template = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "x", "value": {}}]}]}
    with caplog.at_level(logging.WARNING, logger="bot.channels.whatsapp"):
        assert channel.parse(raw(failed), NOW) == []
        assert channel.parse(raw(errors), NOW) == []
        assert channel.parse(raw(template), NOW) == []
    logged = [record.getMessage() for record in caplog.records]
    assert len(logged) == 2
    assert "code=131047 title=Re-engagement message" in logged[0] and "wamid.HBgLMTY1MDUwNzY1MjAV" in logged[0]
    assert f"phone_number_id={NUMBER}" in logged[1] and "code=131000" in logged[1]


def test_several_entries_changes_and_messages_in_one_delivery(channel: WhatsAppChannel) -> None:
    payload = text_delivery()
    value = payload["entry"][0]["changes"][0]["value"]
    second = value["messages"][0] | {"id": "wamid.second/+=", "text": {"body": "And in green?"}}
    value["messages"].append(second)
    payload["entry"][0]["changes"].insert(0, {"field": "smb_message_echoes", "value": {"message_echoes": []}})
    other = copy.deepcopy(example("whatsapp_text")["payload"]["entry"][0])
    other_value = other["changes"][0]["value"]
    other_value["metadata"]["phone_number_id"] = "999"
    other_value["contacts"] = [{"profile": {"name": "Ana"}, "wa_id": "447700900123"}]
    other_value["messages"][0] |= {"from": "447700900123", "id": "wamid.third", "timestamp": "1749416400"}
    payload["entry"].append(other)
    parsed = channel.parse(raw(payload), NOW)
    assert [(m.id, m.conversation_id, m.text, m.author.handle) for m in parsed] == [
        ("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=", f"{NUMBER}:16505551234",
         "Does it come in another color?", "Sheena Nelson"),
        ("wamid.second/+=", f"{NUMBER}:16505551234", "And in green?", "Sheena Nelson"),
        ("wamid.third", "999:447700900123", "Does it come in another color?", "Ana"),
    ]  # fmt: skip


def test_media_become_attachments_with_their_caption(channel: WhatsAppChannel) -> None:
    cases: dict[str, tuple[Any, str]] = {
        "image": (
            {"id": "1", "mime_type": "image/jpeg", "caption": "is this one waterproof?"},
            "is this one waterproof?",
        ),
        "video": ({"id": "2", "mime_type": "video/mp4"}, ""),
        "document": ({"id": "3", "filename": "invoice.pdf", "caption": "wrong total"}, "wrong total"),
        "audio": ({"id": "4", "mime_type": "audio/ogg; codecs=opus", "voice": True}, ""),
        "sticker": ({"id": "5", "mime_type": "image/webp", "animated": False}, ""),
        "location": ({"latitude": 51.5, "longitude": -0.12, "name": "Shop"}, ""),
        "contacts": ([{"name": {"formatted_name": "Jo"}, "phones": [{"phone": "+44 7700 900123"}]}], ""),
    }
    for kind, (content, text) in cases.items():
        [message] = channel.parse(raw(text_delivery(type=kind, text=None, **{kind: content})), NOW)
        assert (message.text, message.attachments) == (text, (kind,)), kind
    [button] = channel.parse(raw(text_delivery(type="button", button={"payload": "p", "text": "Track order"})), NOW)
    assert (button.text, button.attachments) == ("Track order", ())


def test_reactions_system_notices_unsupported_types_and_groups_are_skipped(channel: WhatsAppChannel) -> None:
    skipped: list[dict[str, Any]] = [
        {"type": "reaction", "reaction": {"message_id": "wamid.x", "emoji": "👍"}},
        {"type": "system", "system": {"body": "User changed number", "type": "user_changed_number"}},
        {"type": "unsupported", "errors": [{"code": 131051, "title": "Message type unknown"}]},
        {"type": "text", "text": None},
        {"type": "text", "text": {"body": ""}},
        {"group_id": "120363025246125486"},
    ]
    for message in skipped:
        assert channel.parse(raw(text_delivery(**message)), NOW) == [], message


def test_authors_are_keyed_on_their_business_scoped_id_when_meta_sends_one(channel: WhatsAppChannel) -> None:
    with_both = text_delivery(from_user_id=BSUID)
    with_both["entry"][0]["changes"][0]["value"]["contacts"][0]["user_id"] = BSUID
    [message] = channel.parse(raw(with_both), NOW)
    assert (message.author.id, message.author.handle) == (BSUID, "Sheena Nelson")
    assert message.conversation_id == f"{NUMBER}:16505551234"  # replies still go to the phone number
    username_only = text_delivery(from_user_id=BSUID)
    del username_only["entry"][0]["changes"][0]["value"]["messages"][0]["from"]
    username_only["entry"][0]["changes"][0]["value"]["contacts"] = [
        {"profile": {"name": "Sheena Nelson", "username": "@sheena"}, "user_id": BSUID}
    ]
    [message] = channel.parse(raw(username_only), NOW)
    assert (message.author.id, message.author.handle, message.conversation_id) == (
        BSUID,
        "@sheena",
        f"{NUMBER}:{BSUID}",
    )


def test_malformed_deliveries_name_the_bad_field(channel: WhatsAppChannel) -> None:
    def reason(body: bytes) -> str:
        with pytest.raises(BadRequest) as bad:
            channel.parse(body, NOW)
        assert bad.value.reason == "invalid_delivery"
        return bad.value.detail

    assert reason(b"not json").startswith("body: Invalid JSON")
    assert reason(raw({"object": "page", "entry": []})).startswith("object: 'page'")
    assert reason(raw({"object": "whatsapp_business_account"})).startswith("entry: Field required")
    assert reason(raw(text_delivery(timestamp="yesterday"))).startswith(
        "entry.0.changes.0.value.messages.0.timestamp: "
    )
    no_number = text_delivery()
    del no_number["entry"][0]["changes"][0]["value"]["metadata"]
    assert reason(raw(no_number)) == "entry.0.changes.0.value.metadata: Field required"
    nobody = text_delivery()
    del nobody["entry"][0]["changes"][0]["value"]["messages"][0]["from"]
    assert "neither from nor from_user_id" in reason(raw(nobody))


async def test_a_reply_is_the_published_send_call(channel: WhatsAppChannel, whatsapp: FakeWhatsApp) -> None:
    published = example("whatsapp_send_text")
    whatsapp.answer_ids = [published["response"]["body"]["messages"][0]["id"]]
    message = fresh(channel)
    text = published["request"]["body"]["text"]["body"]
    sent = await channel.send(Reply(reply_id="r1", message=message, text=text, origin="bot"))
    assert sent == "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
    [(path, body)] = whatsapp.calls
    assert f"http://127.0.0.1{path}".endswith(published["request"]["url"].removeprefix("https://graph.facebook.com"))
    # The published request writes the number "+16505551234"; we send it as the webhook gave it (wa_id).
    assert body == published["request"]["body"] | {"to": "16505551234"}
    assert list(body) == ["messaging_product", "recipient_type", "to", "type", "text", "context"]


async def test_a_username_only_customer_is_answered_by_business_scoped_id(
    channel: WhatsAppChannel, whatsapp: FakeWhatsApp
) -> None:
    written = str(int(datetime.now(UTC).timestamp()))
    delivery = text_delivery(from_user_id=BSUID, timestamp=written)
    del delivery["entry"][0]["changes"][0]["value"]["messages"][0]["from"]
    [message] = channel.parse(raw(delivery), NOW)
    sent = await channel.send(Reply(reply_id="r1", message=message, text="Yes, in blue.", origin="bot"))
    [(_, body)] = whatsapp.calls
    assert body["recipient"] == BSUID and "to" not in body and sent == whatsapp.made_up_id(1)


async def test_the_24_hour_window_and_the_text_limit_are_kept_before_calling(
    channel: WhatsAppChannel, whatsapp: FakeWhatsApp
) -> None:
    late = fresh(channel, timedelta(hours=25))
    for origin in ("bot", "reviewer", "holding"):  # no HUMAN_AGENT tag on WhatsApp: a template is needed
        with pytest.raises(ChannelError) as closed:
            await channel.send(Reply(reply_id="r1", message=late, text="Sorry for the wait.", origin=origin))
        assert not closed.value.retryable and closed.value.reason == "outside_messaging_window"
    message = fresh(channel)
    for text in ("x" * 4097, ""):
        with pytest.raises(ChannelError) as refused:
            await channel.send(Reply(reply_id="r1", message=message, text=text, origin="bot"))
        assert not refused.value.retryable and "4096" in str(refused.value)
    assert whatsapp.calls == []
    await channel.send(Reply(reply_id="r1", message=fresh(channel, timedelta(hours=23)), text="x" * 4096, origin="bot"))
    assert len(whatsapp.calls[0][1]["text"]["body"]) == 4096


async def test_errors_say_whether_to_retry_and_when(channel: WhatsAppChannel, whatsapp: FakeWhatsApp) -> None:
    reply = Reply(reply_id="r1", message=fresh(channel), text="Hello", origin="bot")

    async def error(answer: int) -> ChannelError:
        whatsapp.fail = [answer]
        with pytest.raises(ChannelError) as failed:
            await channel.send(reply)
        return failed.value

    limited = await error(429)
    assert limited.retryable and limited.retry_after == 120.0  # X-Business-Use-Case-Usage: 2 minutes
    throughput = await error(130429)
    assert throughput.retryable and throughput.retry_after == 60.0 and "130429" in str(throughput)
    for status in (500, 503):
        down = await error(status)
        assert down.retryable and down.retry_after is None
    window = await error(131047)
    assert not window.retryable and window.reason == "outside_messaging_window"
    other = await error(131026)  # message undeliverable
    assert not other.retryable and other.reason == "delivery_failed"
    assert whatsapp.calls == []
    assert await channel.send(reply) == whatsapp.made_up_id(1)


async def test_a_wrong_token_or_number_is_permanent_and_a_refused_connection_is_retried(
    channel: WhatsAppChannel, whatsapp: FakeWhatsApp
) -> None:
    url = str(whatsapp.server.make_url("")).rstrip("/") if whatsapp.server else ""
    message = fresh(channel)
    async with aiohttp.ClientSession() as session:
        wrong_token = WhatsAppChannel("EAAG-other", SECRET, VERIFY, url + "/v26.0", session)
        with pytest.raises(ChannelError) as unauthorized:
            await wrong_token.send(Reply(reply_id="r1", message=message, text="Hi", origin="bot"))
        assert not unauthorized.value.retryable and "code 190" in str(unauthorized.value)
        elsewhere = message.model_copy(update={"conversation_id": "123:16505551234"})
        with pytest.raises(ChannelError) as unknown:
            await channel.send(Reply(reply_id="r1", message=elsewhere, text="Hi", origin="bot"))
        assert not unknown.value.retryable and "code 100" in str(unknown.value)
        gone = WhatsAppChannel(TOKEN, SECRET, VERIFY, f"http://127.0.0.1:{free_port()}/v26.0", session)
        with pytest.raises(ChannelError) as refused:
            await gone.send(Reply(reply_id="r1", message=message, text="Hi", origin="bot"))
        assert refused.value.retryable and "unreachable" in str(refused.value)
    assert whatsapp.calls == []


async def test_settings_turn_it_on_with_the_graph_url_and_version(whatsapp: FakeWhatsApp) -> None:
    assert not WhatsAppChannel.configured(Settings(_env_file=None))  # type: ignore[call-arg]
    on = Settings(
        _env_file=None,  # type: ignore[call-arg]
        meta_whatsapp_token=TOKEN,
        meta_app_secret=SECRET,
        meta_verify_token=VERIFY,
        meta_graph_url=await whatsapp.start() + "/",
        meta_graph_version="v21.0",
    )
    assert WhatsAppChannel.configured(on)
    async with aiohttp.ClientSession() as session:
        channel = WhatsAppChannel.from_settings(on, session)
        assert authentic(channel, example("meta_x_hub_signature_vector")["expected_header"], b"test")
        await channel.send(Reply(reply_id="r1", message=fresh(channel), text="Hi", origin="bot"))
    assert [path for path, _ in whatsapp.calls] == [f"/v21.0/{NUMBER}/messages"]
