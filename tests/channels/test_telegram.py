"""Telegram: the secret-token check, the published updates parsed, sendMessage as the Bot API wants it
(against a fake Bot API server), 429's retry_after, and `channels register telegram`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.__main__ import main
from bot.channels.telegram import SECRET_HEADER, TelegramChannel
from bot.errors import BadRequest, ChannelError
from bot.models import Reply
from tests.channels import authentic
from tests.fakes import FakeTelegram

DATA = Path(__file__).parent / "data"  # the platform's own examples (wire-format facts)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TOKEN = "123456:test-bot-token"
SECRET = "s3cr3t_Token-123"


def example(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram(TOKEN)
    yield fake
    await fake.close()


@pytest.fixture
async def channel(telegram: FakeTelegram) -> AsyncIterator[TelegramChannel]:
    url = await telegram.start()
    async with aiohttp.ClientSession() as session:
        yield TelegramChannel(TOKEN, SECRET, url, session)


def test_the_secret_token_must_be_exactly_the_one_given_to_set_webhook(channel: TelegramChannel) -> None:
    body = json.dumps(example("telegram_update_private_text")).encode()
    check = example("telegram_secret_token_check")
    assert check["setWebhook_request"]["body"]["secret_token"] == SECRET
    for case in check["cases"]:  # the published cases: exact match, case differs, missing
        headers = {} if case["header"] is None else {SECRET_HEADER: case["header"]}
        assert authentic(channel, headers, body) is case["expected"].startswith("accept"), case
    assert not authentic(channel, {SECRET_HEADER: ""}, body)


def test_the_published_updates_become_messages_keyed_by_chat(channel: TelegramChannel) -> None:
    [private] = channel.parse(json.dumps(example("telegram_update_private_text")).encode(), NOW)
    assert (private.id, private.conversation_id, private.text, private.public) == (
        "1111111:1365",
        "1111111",
        "/start",
        False,
    )
    assert (private.author.id, private.author.handle) == ("1111111", "Testusername")
    assert private.created_at == datetime.fromtimestamp(1441645532, UTC) and private.received_at == NOW
    [reply] = channel.parse(json.dumps(example("telegram_update_reply")).encode(), NOW)
    assert reply.id == "1111111:1365" and reply.text == "/start"
    [mention] = channel.parse(json.dumps(example("telegram_update_group_mention")).encode(), NOW)
    assert (mention.id, mention.conversation_id, mention.public) == ("-1001234567890:42", "-1001234567890", True)
    assert mention.text == "@ExampleShopBot is the blue one in stock?" and mention.author.handle == "ana_buyer"


def test_bots_other_updates_photos_and_topics(channel: TelegramChannel) -> None:
    update = example("telegram_update_group_mention")
    bot = json.loads(json.dumps(update))
    bot["message"]["from"]["is_bot"] = True
    assert channel.parse(json.dumps(bot).encode(), NOW) == []  # another bot: never answered
    callback = {"update_id": 5, "callback_query": {"id": "1", "from": {"id": 1, "first_name": "A"}}}
    assert channel.parse(json.dumps(callback).encode(), NOW) == []
    photo = json.loads(json.dumps(update))
    del photo["message"]["text"]
    photo["message"] |= {"caption": "is this one waterproof?", "photo": [{"file_id": "x"}]}
    assert channel.parse(json.dumps(photo).encode(), NOW)[0].text == "is this one waterproof?"
    topic = json.loads(json.dumps(update))
    topic["message"] |= {"message_thread_id": 7, "is_topic_message": True}
    assert channel.parse(json.dumps(topic).encode(), NOW)[0].conversation_id == "-1001234567890:7"
    with pytest.raises(BadRequest) as bad:
        channel.parse(b'{"update_id": "x"}', NOW)
    assert bad.value.reason == "invalid_update" and "update_id" in bad.value.detail
    broken = json.loads(json.dumps(update))
    broken["message"]["chat"]["id"] = "not a number"
    broken["message"]["date"] = "not a time"
    with pytest.raises(BadRequest) as bad:
        channel.parse(json.dumps(broken).encode(), NOW)
    assert "message.date: " in bad.value.detail and "; message.chat.id: " in bad.value.detail  # each field named
    huge = json.loads(json.dumps(update))
    huge["message"]["chat"]["id"] = 10**300  # JSON numbers are unbounded; the bot's ids are not
    with pytest.raises(BadRequest) as bad:
        channel.parse(json.dumps(huge).encode(), NOW)
    assert bad.value.reason == "invalid_update" and "conversation_id: String should have at most" in bad.value.detail


async def test_a_reply_is_sent_as_a_reply_to_the_customers_message(
    channel: TelegramChannel, telegram: FakeTelegram
) -> None:
    for name, thread in (("telegram_update_group_mention", None), ("telegram_update_group_mention", 7)):
        update = example(name)
        if thread:
            update["message"] |= {"message_thread_id": thread, "is_topic_message": True}
        [message] = channel.parse(json.dumps(update).encode(), NOW)
        sent = await channel.send(
            Reply(reply_id="r1", message=message, text="Yes, the blue one is in stock.", origin="bot")
        )
        assert sent is not None and sent.startswith("-1001234567890:")  # the platform's id of the reply
    first, second = telegram.calls
    assert first == ("sendMessage", example("telegram_send_message_reply")["request"]["body"])
    assert second[1]["message_thread_id"] == 7


async def test_errors_say_whether_to_retry_and_when(channel: TelegramChannel, telegram: FakeTelegram) -> None:
    [message] = channel.parse(json.dumps(example("telegram_update_private_text")).encode(), NOW)
    reply = Reply(reply_id="r1", message=message, text="Hello", origin="bot")
    telegram.fail = [429]
    with pytest.raises(ChannelError) as limited:
        await channel.send(reply)
    assert limited.value.retryable and limited.value.retry_after == 1.0
    telegram.fail = [502]
    with pytest.raises(ChannelError) as down:
        await channel.send(reply)
    assert down.value.retryable
    with pytest.raises(ChannelError) as empty:
        await channel.send(reply.model_copy(update={"text": ""}))
    assert not empty.value.retryable and "400" in str(empty.value)
    assert telegram.calls == []
    published = example("telegram_error_429")["body"]  # the documented shape the fake answers with
    assert published["parameters"]["retry_after"] == 35 and published["error_code"] == 429


async def test_channels_register_sets_the_webhook_with_the_secret(
    telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = await telegram.start()
    for key, value in {
        "BOT_TELEGRAM_BOT_TOKEN": TOKEN,
        "BOT_TELEGRAM_SECRET_TOKEN": SECRET,
        "BOT_TELEGRAM_API_URL": url,
    }.items():
        monkeypatch.setenv(key, value)
    code = await asyncio.to_thread(
        main, ["channels", "register", "telegram", "--url", "https://bot.example.com/webhooks/telegram"]
    )
    assert code == 0 and "https://bot.example.com/webhooks/telegram" in capsys.readouterr().out
    assert telegram.calls == [
        (
            "setWebhook",
            {
                "url": "https://bot.example.com/webhooks/telegram",
                "secret_token": SECRET,
                "allowed_updates": ["message", "business_message"],
            },
        )
    ]
    assert await asyncio.to_thread(main, ["channels", "register", "telegram", "--url", "http://plain"]) == 2
