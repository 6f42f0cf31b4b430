"""Chatwoot end to end: the real `python -m bot serve` with the Agent Bot channel pointed at a fake Chatwoot.

Chatwoot has no public mentions (every conversation is one customer's), so there is one customer message to
answer; the bot's own reply coming back as a delivery is acknowledged and never answered.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.channels.chatwoot import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from tests.channels.fake_chatwoot import Call, FakeChatwoot
from tests.service import Service, answered, serving

pytestmark = pytest.mark.slow
DATA = Path(__file__).parent / "data"
TOKEN = "e2e-agent-bot-token"
SECRET = "e2e-agent-bot-secret"
ACCOUNT, CONVERSATION = 3, 42


def delivery(message_id: int, content: str, message_type: str, sender: dict[str, Any]) -> bytes:
    """A message_created body shaped like the published example, in a conversation the bot owns."""
    body = json.loads((DATA / "chatwoot_message_created.json").read_text())["payload"]
    body["conversation"] |= {"id": CONVERSATION, "status": "pending"}
    body["account"]["id"] = ACCOUNT
    created_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    body |= {"id": message_id, "content": content, "message_type": message_type, "sender": sender}
    return json.dumps(body | {"created_at": created_at}).encode()


def signed(body: bytes, at: int | None = None, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(time.time()) if at is None else at)
    return {
        "Content-Type": "application/json",
        "X-Chatwoot-Delivery": "2a1e4f0c-7d3b-4c8e-9f61-0b5d2c7a9e13",
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: signature(secret.encode(), stamp, body),
    }


@pytest.fixture(scope="module")
async def chatwoot() -> AsyncIterator[FakeChatwoot]:
    fake = FakeChatwoot(TOKEN, conversations={(ACCOUNT, CONVERSATION): "pending"})
    yield fake
    await fake.close()


@pytest.fixture(scope="module")
async def service(
    chatwoot: FakeChatwoot, tmp_path_factory: pytest.TempPathFactory, brand_models: Path, policies_dir: Path
) -> AsyncIterator[Service]:
    env = {
        "BOT_CHATWOOT_URL": await chatwoot.start(),
        "BOT_CHATWOOT_BOT_TOKEN": TOKEN,
        "BOT_CHATWOOT_SECRET": SECRET,
    }
    async with serving(tmp_path_factory.mktemp("chatwoot"), brand_models, policies_dir, env) as service:
        yield service


async def post(service: Service, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(service.url + "/webhooks/chatwoot", data=body, headers=headers) as response,
    ):
        return response.status, await response.json()


async def test_chatwoot_in_and_out_and_its_own_echo_ignored(service: Service, chatwoot: FakeChatwoot) -> None:
    contact = {"id": 14, "name": "Ana", "avatar": "", "type": "contact"}
    question = delivery(9001, "How long does standard delivery take in the UK?", "incoming", contact)
    assert await post(service, question, signed(question)) == (202, {"accepted": 1, "duplicates": 0})
    await answered(service, "chatwoot", "9001")
    [call] = await chatwoot.wait_for(1)
    assert (call.account, call.conversation, call.action, call.token) == (ACCOUNT, CONVERSATION, "messages", TOKEN)
    assert set(call.body) == {"content", "message_type", "private"}
    assert (call.body["message_type"], call.body["private"]) == ("outgoing", False)
    assert "3–5 working days" in call.body["content"]

    bot = {"id": 7, "name": "Northwind bot", "avatar_url": "", "type": "agent_bot"}
    echo = delivery(5001, call.body["content"], "outgoing", bot)  # Chatwoot sends the bot its own reply
    assert await post(service, echo, signed(echo)) == (202, {"accepted": 0, "duplicates": 0})

    replay = delivery(9002, "How long does standard delivery take in the UK?", "incoming", contact)
    status, answer = await post(service, replay, signed(replay, at=int(time.time()) - 3600))
    assert (status, answer["error"]) == (401, "stale_timestamp")
    status, answer = await post(service, replay, signed(replay, secret="not-the-bot-secret"))
    assert (status, answer["error"]) == (401, "bad_signature")
    async with aiohttp.ClientSession() as session, session.get(service.url + "/webhooks/chatwoot") as response:
        assert response.status == 405  # Chatwoot has no subscription check
    assert chatwoot.calls == [Call(ACCOUNT, CONVERSATION, "messages", TOKEN, call.body)]
    assert chatwoot.conversations == {(ACCOUNT, CONVERSATION): "pending"}  # still the bot's
