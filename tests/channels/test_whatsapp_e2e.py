"""The real `python -m bot serve` with WhatsApp on and the Graph API at a fake: Meta's handshake, signed
deliveries in, a quoted reply out; receipts and forged deliveries change nothing. (WhatsApp has no public
mentions or comments: every message is a private chat.)"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.channels.fake_whatsapp import FakeWhatsApp
from tests.service import Service, answered, serving

pytestmark = pytest.mark.slow
TOKEN = "EAAG-e2e-whatsapp-token"
APP_SECRET = "e2e-meta-app-secret"
VERIFY_TOKEN = "e2e-verify-token"
NUMBER = "106540352242922"
CUSTOMER = "447700900123"
WAMID = "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhgg+/E2eTestMessage="  # base64-ish: "+", "/" and "=" in an id


@pytest.fixture(scope="module")
async def whatsapp() -> AsyncIterator[FakeWhatsApp]:
    fake = FakeWhatsApp(TOKEN, NUMBER)
    yield fake
    await fake.close()


@pytest.fixture(scope="module")
async def service(
    whatsapp: FakeWhatsApp, tmp_path_factory: pytest.TempPathFactory, brand_models: Path, policies_dir: Path
) -> AsyncIterator[Service]:
    env = {
        "BOT_META_APP_SECRET": APP_SECRET,
        "BOT_META_VERIFY_TOKEN": VERIFY_TOKEN,
        "BOT_META_WHATSAPP_TOKEN": TOKEN,
        "BOT_META_GRAPH_URL": await whatsapp.start(),
        "BOT_META_GRAPH_VERSION": "v26.0",
    }
    async with serving(tmp_path_factory.mktemp("whatsapp"), brand_models, policies_dir, env) as service:
        yield service


def delivery(value: dict[str, Any]) -> bytes:
    """A webhook body as Meta sends it: the `messages` field of one WhatsApp Business Account."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": NUMBER},
    } | value
    entry = {"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}
    return json.dumps({"object": "whatsapp_business_account", "entry": [entry]}).encode()


async def post(service: Service, body: bytes, secret: str = APP_SECRET) -> tuple[int, dict[str, Any]]:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Hub-Signature-256": signature, "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(service.url + "/webhooks/whatsapp", data=body, headers=headers) as response,
    ):
        return response.status, await response.json()


async def test_the_hub_challenge_through_the_service(service: Service) -> None:
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": VERIFY_TOKEN}
    async with aiohttp.ClientSession() as session:
        async with session.get(service.url + "/webhooks/whatsapp", params=query) as response:
            assert (response.status, response.content_type, await response.text()) == (200, "text/plain", "1158201444")
        wrong = query | {"hub.verify_token": "not-ours"}
        async with session.get(service.url + "/webhooks/whatsapp", params=wrong) as response:
            assert response.status == 403


async def test_a_text_is_answered_with_a_quoted_reply_and_receipts_send_nothing(
    service: Service, whatsapp: FakeWhatsApp
) -> None:
    receipt = delivery(
        {"statuses": [{"id": "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA", "status": "read",
                       "timestamp": str(int(time.time())), "recipient_id": CUSTOMER}]}
    )  # fmt: skip
    assert await post(service, receipt) == (202, {"accepted": 0, "duplicates": 0})
    text = delivery(
        {
            "contacts": [{"profile": {"name": "Ana"}, "wa_id": CUSTOMER}],
            "messages": [
                {
                    "from": CUSTOMER,
                    "id": WAMID,
                    "timestamp": str(int(time.time())),
                    "type": "text",
                    "text": {"body": "How long does standard delivery take in the UK?"},
                }
            ],
        }
    )
    assert await post(service, text, secret="not-the-app-secret") == (
        401,
        {"error": "bad_signature", "detail": "X-Hub-Signature-256 does not match the body"},
    )
    assert await post(service, text) == (202, {"accepted": 1, "duplicates": 0})
    assert await post(service, text) == (202, {"accepted": 0, "duplicates": 1})  # Meta redelivers
    await answered(service, "whatsapp", WAMID)
    [(path, body)] = await whatsapp.wait_for(1)
    assert path == f"/v26.0/{NUMBER}/messages"  # the fake checked the bearer token
    reply = body["text"].pop("body")
    assert body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": CUSTOMER,
        "type": "text",
        "text": {"preview_url": False},
        "context": {"message_id": WAMID},
    }
    assert "3–5 working days" in reply
