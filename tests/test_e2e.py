"""The real `python -m bot serve` in a child process, with its embedded Redis, talking to a fake platform."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import SECRET, TOKEN, payload, signed
from tests.fakes import FakeTelegram, Receiver
from tests.service import Service, answered, serving, wait_status_of

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TELEGRAM_TOKEN = "123456:e2e-bot-token"
TELEGRAM_SECRET = "e2e_secret-token"


@pytest.fixture(scope="module")
async def telegram() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram(TELEGRAM_TOKEN)
    yield fake
    await fake.close()


@pytest.fixture(scope="module")
async def service(
    peer: Receiver,
    telegram: FakeTelegram,
    tmp_path_factory: pytest.TempPathFactory,
    brand_models: Path,
    policies_dir: Path,
) -> AsyncIterator[Service]:
    env = {
        "BOT_GENERIC_SECRET": SECRET,
        "BOT_GENERIC_REPLY_URL": await peer.start(),
        "BOT_TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
        "BOT_TELEGRAM_SECRET_TOKEN": TELEGRAM_SECRET,
        "BOT_TELEGRAM_API_URL": await telegram.start(),
    }  # no BOT_REDIS_URL: the embedded Redis
    async with serving(tmp_path_factory.mktemp("e2e"), brand_models, policies_dir, env) as service:
        yield service
    assert "embedded Redis" in service.log.read_text()


async def post(service: Service, body: object) -> tuple[int, dict[str, object]]:
    raw, headers = signed(body)
    async with (
        aiohttp.ClientSession() as session,
        session.post(service.url + "/webhooks/generic", data=raw, headers=headers) as response,
    ):
        return response.status, await response.json()


async def get(service: Service, path: str) -> dict[str, object]:
    async with aiohttp.ClientSession(headers=AUTH) as session, session.get(service.url + path) as response:
        assert response.status == 200, await response.text()
        return await response.json()  # type: ignore[no-any-return]


async def wait_status(service: Service, message_id: str, status: str, timeout: float = 60) -> dict[str, object]:
    return await wait_status_of(service, "generic", message_id, {status}, timeout)


def replies_to(peer: Receiver, message_id: str) -> list[dict[str, str]]:
    return [reply for reply in peer.replies if reply["in_reply_to"] == message_id]


async def test_faq_is_answered_at_once(service: Service, peer: Receiver) -> None:
    mid = uuid.uuid4().hex
    status, body = await post(service, payload("How long does standard delivery take in the UK?", id=mid))
    assert (status, body) == (202, {"accepted": 1, "duplicates": 0})
    state = await wait_status(service, mid, "sent")
    [reply] = replies_to(peer, mid)
    assert "3–5 working days" in reply["text"] and reply["text"].endswith("– Northwind Team")
    assert state["intent"] == "delivery_info" and state["decision"] == "auto_send" and state["reply"] == reply["text"]


async def test_risky_message_waits_for_a_reviewer(service: Service, peer: Receiver) -> None:
    mid = uuid.uuid4().hex
    text = "My jacket zip snapped and cut my hand. My solicitor will be in touch about this."
    assert (await post(service, payload(text, id=mid)))[0] == 202
    state = await wait_status(service, mid, "in_review")
    assert any(r.startswith("risk:") for r in state["reasons"])  # type: ignore[union-attr]
    await asyncio.sleep(1.5)
    assert replies_to(peer, mid) == []  # nothing goes out until a person says so
    cases = (await get(service, "/api/reviews"))["cases"]
    [case] = [c for c in cases if c["message"]["id"] == mid]  # type: ignore[index, union-attr]
    assert case["decision"]["priority"] in {"high", "urgent"}
    edited = "We're so sorry about your hand. A member of our team will message you today. – Sam at Northwind"
    async with aiohttp.ClientSession(headers=AUTH) as session:
        async with session.post(f"{service.url}/api/reviews/{case['case_id']}/approve", json={"text": edited}) as r:
            assert r.status == 200 and (await r.json())["state"] == "approved"
        async with session.post(f"{service.url}/api/reviews/{case['case_id']}/reject") as r:
            assert r.status == 409  # already approved: the second action loses and is told
    await wait_status(service, mid, "sent")
    assert [r["text"] for r in replies_to(peer, mid)] == [edited]


async def test_duplicate_is_processed_once(service: Service, peer: Receiver) -> None:
    mid = uuid.uuid4().hex
    body = payload("What are your store opening hours on Sunday?", id=mid)
    assert await post(service, body) == (202, {"accepted": 1, "duplicates": 0})
    assert await post(service, body) == (202, {"accepted": 0, "duplicates": 1})
    await wait_status(service, mid, "sent")
    await asyncio.sleep(1)
    assert len(replies_to(peer, mid)) == 1


async def test_bad_signature_is_refused_and_never_processed(service: Service, peer: Receiver) -> None:
    mid = uuid.uuid4().hex
    raw = json.dumps(payload("How long does delivery take?", id=mid)).encode()
    async with aiohttp.ClientSession() as session:
        async with session.post(
            service.url + "/webhooks/generic", data=raw, headers={"X-Bot-Signature": "sha256=" + "ab" * 32}
        ) as response:
            assert response.status == 401
        async with session.get(f"{service.url}/api/messages/generic/{mid}", headers=AUTH) as response:
            assert response.status == 404
        async with session.get(f"{service.url}/api/reviews") as response:
            assert response.status == 401  # the API wants a token too
        metrics = await (await session.get(service.url + "/metrics")).text()
    assert 'autoresponder_webhook_rejections_total{channel="generic",reason="bad_signature"} 1.0' in metrics
    assert replies_to(peer, mid) == []


async def test_metrics_show_the_path(service: Service) -> None:
    async with aiohttp.ClientSession() as session:
        text = await (await session.get(service.url + "/metrics")).text()
    for name in (
        "autoresponder_messages_received_total",
        "autoresponder_decisions_total",
        "autoresponder_replies_sent_total",
        "autoresponder_stage_duration_seconds_bucket",
        "autoresponder_first_response_seconds_bucket",
        "autoresponder_model_load_seconds",
        "autoresponder_classifications_total",
        "autoresponder_risk_flags_total",
    ):
        assert name in text


def telegram_update(update_id: int, chat: dict[str, object], message_id: int, text: str) -> bytes:
    """An update shaped like the Bot API's published examples."""
    sender = {"id": 2222222, "is_bot": False, "first_name": "Ana", "username": "ana_buyer"}
    message = {"message_id": message_id, "date": int(time.time()), "from": sender, "chat": chat, "text": text}
    return json.dumps({"update_id": update_id, "message": message}).encode()


async def test_telegram_in_and_out_for_a_private_chat_and_a_group_mention(
    service: Service, telegram: FakeTelegram
) -> None:
    url = service.url + "/webhooks/telegram"
    private = telegram_update(
        1, {"id": 2222222, "type": "private"}, 11, "How long does standard delivery take in the UK?"
    )
    group = {"id": -1001234567890, "type": "supergroup", "title": "Shop customers"}
    mention = telegram_update(2, group, 42, "@NorthwindBot how long does standard delivery take in the UK?")
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=private, headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"}) as response:
            assert response.status == 401
        for body in (private, mention):
            headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET, "Content-Type": "application/json"}
            async with session.post(url, data=body, headers=headers) as response:
                assert response.status == 202 and (await response.json())["accepted"] == 1
    await answered(service, "telegram", "-1001234567890:42")
    calls = await telegram.wait_for(2)
    sent = {(body["chat_id"], body["reply_parameters"]["message_id"]): body["text"] for _, body in calls}
    assert set(sent) == {(2222222, 11), (-1001234567890, 42)}
    assert "3–5 working days" in sent[(2222222, 11)]
    assert all(method == "sendMessage" for method, _ in calls)
