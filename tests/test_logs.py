"""Logs as ops read them: one JSON object per line, the ids of a message on every line of its path, and no
personal data or secret in any of them."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from redis.asyncio import Redis

from bot.app import build_composer, create_app, load_brand
from bot.channels.generic import GenericChannel
from bot.channels.telegram import TelegramChannel
from bot.classify import Classifier
from bot.classify.encoder import TransformersEncoder
from bot.classify.risk import PiiRedactor
from bot.config import Settings
from bot.errors import ChannelError
from bot.keys import STORE
from bot.logs import AccessLogger, JsonFormatter, configure_logging, log_context, secret_values
from bot.metrics import create_metrics
from bot.pipeline import Pipeline
from bot.policy.load import load_policy
from bot.store import INBOUND_GROUP, OUTBOX_GROUP
from bot.worker import Sender, Worker
from tests.conftest import SECRET, TOKEN, payload, signed
from tests.fakes import Receiver
from tests.test_cli import run

Lines = Callable[[], list[dict[str, object]]]

EMAIL, PHONE, CARD, POSTCODE, ADDRESS = (
    "jo.bloggs@example.co.uk",
    "07700 900123",
    "4111 1111 1111 1111",
    "SW1A 1AA",
    "221 Baker Street",
)
NOT_A_CARD = "4111 1111 1111 1112"  # fails the Luhn check: an order or tracking number, left as it is
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def parsed(text: str) -> list[dict[str, object]]:
    """Every line of `text` as the JSON object it must be."""
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def lines(settings: Settings) -> Iterator[Lines]:
    """What the `bot` loggers write from INFO up, through the formatter the service configures."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    redactor = PiiRedactor(load_policy(settings.policies_dir).risk)
    handler.setFormatter(JsonFormatter(redactor, secret_values(settings)))
    log = logging.getLogger("bot")
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield lambda: parsed(stream.getvalue())
    log.removeHandler(handler)
    log.setLevel(level)


@pytest.fixture
def configured() -> Callable[[Settings], io.StringIO]:
    """configure_logging as __main__ calls it, writing to a buffer (conftest puts pytest's logging back after)."""

    def configure(settings: Settings) -> io.StringIO:
        stream = io.StringIO()
        configure_logging(settings, stream)
        return stream

    return configure


def test_a_line_is_one_json_object_with_time_level_logger_message_and_fields(lines: Lines) -> None:
    log = logging.getLogger("bot.test")
    with log_context(channel="generic", message_id="m-1", conversation_id="c-1"):
        log.info("decided", extra={"action": "review", "reasons": ["risk:legal_threat"], "confidence": 0.91})
        try:
            raise ValueError("no such intent\nsecond line")
        except ValueError:
            log.exception("message failed")
    log.warning("outside")
    decided, failed, outside = lines()
    assert decided["level"] == "INFO" and decided["logger"] == "bot.test" and decided["message"] == "decided"
    time = str(decided["time"])
    assert time.endswith("Z") and datetime.fromisoformat(time).utcoffset() is not None
    assert decided | {"time": None} == {
        "time": None,
        "level": "INFO",
        "logger": "bot.test",
        "message": "decided",
        "channel": "generic",
        "message_id": "m-1",
        "conversation_id": "c-1",
        "action": "review",
        "reasons": ["risk:legal_threat"],
        "confidence": 0.91,
    }
    assert failed["level"] == "ERROR" and failed["message_id"] == "m-1"
    assert str(failed["exc"]).startswith("Traceback") and "ValueError: no such intent\nsecond line" in str(
        failed["exc"]
    )
    assert "message_id" not in outside  # the context ended with its block


def test_personal_data_is_redacted_from_messages_fields_and_exceptions(lines: Lines) -> None:
    log = logging.getLogger("bot.test")
    text = f"write to {EMAIL} or call {PHONE}; card {CARD}; I live at {ADDRESS}, London {POSTCODE}; ref {NOT_A_CARD}"
    log.info("customer wrote: %s", text, extra={"detail": text, "ids": [text]})
    try:
        raise ValueError(text)
    except ValueError:
        log.exception("failed")
    output = json.dumps(lines())
    for personal in (EMAIL, PHONE, CARD, ADDRESS, POSTCODE, "+44 7700 900123"):
        assert personal not in output
    [written, failed] = lines()
    assert written["message"] == (
        f"customer wrote: write to [pii] or call [pii]; card [card]; I live at [pii], London [pii]; ref {NOT_A_CARD}"
    )
    redacted = str(written["message"]).removeprefix("customer wrote: ")
    assert written["detail"] == redacted and written["ids"] == [redacted]  # fields too, inside lists as well
    assert "ValueError: write to [pii]" in str(failed["exc"]) and NOT_A_CARD in str(failed["exc"])


def test_ids_are_searchable_as_they_are(lines: Lines) -> None:
    """An X post id is a Luhn-valid digit run now and then: ids are not redacted (nor are they personal data)."""
    post = "4111111111111111111"  # 19 digits, Luhn-valid
    logging.getLogger("bot.test").info("decided", extra={"message_id": post, "messages": [f"x_mention:{post}"]})
    [line] = lines()
    assert line["message_id"] == post and line["messages"] == [f"x_mention:{post}"]


def test_the_products_codes_are_not_redacted_and_free_text_still_is(lines: Lines) -> None:
    """Intent names, actions and reasons are the brand's and the product's own words (redacting them is most of
    the cost of the worker's line), so they stay whole; the same words in a free-text field do not."""
    code = "flat 4 complaints"  # reads like an address to the `pii` patterns
    fields = {"intent": code, "action": "review", "reasons": [f"incident:{code}"], "origin": "bot", "error": code}
    logging.getLogger("bot.test").info("committed", extra=fields)
    [line] = lines()
    assert line["intent"] == code and line["reasons"] == [f"incident:{code}"] and line["action"] == "review"
    assert line["error"] == "[pii] complaints"


async def test_a_secret_inside_an_aiohttp_error_and_its_url_is_scrubbed(
    make_settings: Callable[..., Settings], configured: Callable[[Settings], io.StringIO]
) -> None:
    token, telegram_secret = "123456789:AAH-bot-token-value", "telegram-webhook-secret"
    settings = make_settings(
        telegram_bot_token=token,
        telegram_secret_token=telegram_secret,
        llm_api_key="sk-test-api-key-value",
        redis_url="redis://:redis-password-value@127.0.0.1:6399/0",
    )
    stream = configured(settings)

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500)

    app = web.Application()
    app.router.add_post("/{path:.*}", broken)
    async with TestServer(app, host="127.0.0.1") as server, aiohttp.ClientSession(raise_for_status=True) as session:
        api = str(server.make_url("")).rstrip("/")
        channel = TelegramChannel(token, telegram_secret, api, session)
        with pytest.raises(ChannelError) as raised:
            await channel.call("sendMessage", {"chat_id": 1, "text": "hi"})
    assert token in str(raised.value.__cause__)  # aiohttp names the URL, and the URL holds the token
    log = logging.getLogger("bot.worker")
    try:
        raise raised.value
    except ChannelError as error:
        log.exception("delivery failed: %s", error.__cause__, extra={"url": f"{api}/bot{token}/getMe"})
    log.error("secrets %s", [s.get_secret_value() for s in [*settings.review_tokens, settings.llm_api_key]])
    log.error("connecting to %s", settings.redis_url)
    sys.excepthook(RuntimeError, RuntimeError(f"crashed calling {api}/bot{token}/getMe"), None)  # a crash too
    output = stream.getvalue()
    for secret in (token, telegram_secret, "sk-test-api-key-value", "redis-password-value", TOKEN, SECRET):
        assert secret not in output
    first = next(line for line in parsed(output) if line["logger"] == "bot.worker")
    assert "[secret]" in str(first["message"]) and "[secret]" in str(first["url"]) and "[secret]" in str(first["exc"])
    assert "ClientResponseError" in str(first["exc"]) and "500" in str(first["message"])
    crash = parsed(output)[-1]
    assert crash["level"] == "CRITICAL" and "RuntimeError: crashed calling" in str(crash["exc"])


def test_secret_values_come_from_settings_not_defaults(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(llm_base_url="https://user:model-key-in-url@llm.example/v1")
    values = secret_values(settings)
    assert SECRET in values and TOKEN in values and "model-key-in-url" in values
    assert "unused" not in values  # the LLM key's default is no secret (and would blank a common word)
    assert SecretStr("unused") not in values


def test_the_level_setting_is_honoured(
    make_settings: Callable[..., Settings], configured: Callable[[Settings], io.StringIO]
) -> None:
    stream = configured(make_settings(log_level="WARNING"))
    log = logging.getLogger("bot.test")
    log.info("hidden")
    log.warning("shown %s", EMAIL)  # configure_logging redacts with the brand's own pii patterns
    assert [(line["level"], line["message"]) for line in parsed(stream.getvalue())] == [("WARNING", "shown [pii]")]
    access = AccessLogger(logging.getLogger("aiohttp.access"), "")
    assert not access.enabled  # the access log is a DEBUG detail
    configured(make_settings(log_level="DEBUG"))
    assert access.enabled


def test_a_server_command_writes_json_lines_at_the_configured_level() -> None:
    password = "redis-password-in-url"
    result = run(
        "web",
        "--port",
        "1",
        env={"BOT_REDIS_URL": f"redis://:{password}@127.0.0.1:1/0", "BOT_LOG_LEVEL": "WARNING"},
    )
    assert result.returncode == 1
    written = parsed(result.stderr)
    assert [line["level"] for line in written] == ["ERROR"]  # no INFO "starting" line at WARNING
    assert str(written[0]["message"]).startswith("cannot use Redis (BOT_REDIS_URL)")
    assert password not in result.stderr


async def test_the_ids_of_a_message_are_on_every_line_of_its_path(
    settings: Settings, encoder: TransformersEncoder, models_dir: Path, redis: Redis, receiver: Receiver, lines: Lines
) -> None:
    brand = load_brand(settings)
    metrics = create_metrics()
    composer = build_composer(settings, brand, encoder, None, metrics)
    classifier = Classifier.build(encoder, brand.policy, models_dir)
    policy = brand.policy.model_copy(
        update={"decision": brand.policy.decision.model_copy(update={"coalesce_seconds": 0})}
    )
    pipeline = Pipeline(classifier, composer, policy, brand.holding, metrics)
    faq, legal = payload("Do you accept PayPal?"), payload("I want to speak to a lawyer about your boots")
    async with (
        TestClient(TestServer(create_app(settings, workers=False))) as client,
        aiohttp.ClientSession() as session,
    ):
        raw, headers = signed([faq, legal])
        assert (await client.post("/webhooks/generic", data=raw, headers=headers)).status == 202
        raw, headers = signed([faq])  # the platform delivers it again
        assert (await client.post("/webhooks/generic", data=raw, headers=headers)).status == 202
        store = client.app[STORE]
        worker = Worker(store, pipeline, settings, metrics, "w1")
        await worker.handle(await store.read(store.keys.inbound, INBOUND_GROUP, "w1", 10, 100))
        [case] = await store.pending_cases()
        approved = await client.post(
            f"/api/reviews/{case.case_id}/approve", json={"text": "A person will DM you."}, headers=AUTH
        )
        assert approved.status == 200
        sender = Sender(
            store,
            {"generic": GenericChannel(SECRET.encode(), await receiver.start(), session)},
            settings,
            metrics,
            "s1",
        )
        await sender.handle(await store.read(store.keys.outbox, OUTBOX_GROUP, "s1", 10, 100))
    assert len(receiver.replies) == 2
    written = lines()
    for sent, path in (
        (
            faq,
            [
                "message duplicate",
                "committed",
                "platform accepted reply",
                "reply delivered",
            ],
        ),
        (
            legal,
            ["committed", "case approved", "platform accepted reply", "reply delivered"],
        ),
    ):
        own = [line for line in written if line.get("message_id") == sent["id"]]
        assert [line["message"] for line in own] == path
        assert all(line["conversation_id"] == sent["conversation_id"] and line["channel"] == "generic" for line in own)
    [committed] = [line for line in written if line["message"] == "committed" and line["message_id"] == legal["id"]]
    assert committed["case_id"] == case.case_id and committed["action"] == "review" and committed["reply_id"] is None
    assert committed["intent"] and "risk:legal_threat" in committed["reasons"]  # how it was read, and why
    [resolved] = [line for line in written if line["message"] == "case approved"]
    assert resolved["reviewer"] and resolved["case_id"] == case.case_id
    output = json.dumps(written)
    for text in (faq["text"], legal["text"], *(reply["text"] for reply in receiver.replies)):
        assert text not in output  # neither what customers wrote nor what they were answered
