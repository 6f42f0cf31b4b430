"""X end to end: the real `python -m bot serve` with X on and its API at a fake; the CRC through the service,
signed deliveries of both families in, and the replies out as X API v2 calls."""

from __future__ import annotations

import base64
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

from tests.channels.fake_x import FakeX, weighted
from tests.service import Service, answered, serving

pytestmark = pytest.mark.slow
TOKEN = "e2e-x-user-token"
SECRET = "e2e-x-consumer-secret"
BRAND = "1500000000000000001"  # the brand's X account
CUSTOMER = "3001969357"
QUESTION = "How long does standard delivery take in the UK?"


def signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@pytest.fixture(scope="module")
async def fake() -> AsyncIterator[FakeX]:
    server = FakeX(TOKEN, BRAND)
    yield server
    await server.close()


@pytest.fixture(scope="module")
async def service(
    fake: FakeX, tmp_path_factory: pytest.TempPathFactory, brand_models: Path, policies_dir: Path
) -> AsyncIterator[Service]:
    env = {
        "BOT_X_USER_TOKEN": TOKEN,
        "BOT_X_CONSUMER_SECRET": SECRET,
        "BOT_X_USER_ID": BRAND,
        "BOT_X_API_URL": await fake.start(),
        "BOT_SEND_RATE": "x_mention=10,x_dm=10",  # X's own pace (one DM a minute) would only slow the test
    }
    async with serving(tmp_path_factory.mktemp("x-e2e"), brand_models, policies_dir, env) as service:
        yield service


def aaa_dm(event_id: str) -> dict[str, Any]:
    return {
        "for_user_id": BRAND,
        "direct_message_events": [
            {
                "type": "message_create",
                "id": event_id,
                "created_timestamp": str(int(time.time() * 1000)),
                "message_create": {
                    "target": {"recipient_id": BRAND},
                    "sender_id": CUSTOMER,
                    "message_data": {"text": QUESTION, "entities": {"urls": []}},
                },
            }
        ],
        "users": {CUSTOMER: {"id": CUSTOMER, "name": "Jordan Brinks", "screen_name": "furiouscamper"}},
    }


def aaa_mention(post_id: str) -> dict[str, Any]:
    return {
        "for_user_id": BRAND,
        "tweet_create_events": [
            {
                "created_at": datetime.now(UTC).strftime("%a %b %d %H:%M:%S +0000 %Y"),
                "id": int(post_id),
                "id_str": post_id,
                "text": f"@NorthwindHelp {QUESTION}",
                "truncated": False,
                "in_reply_to_status_id_str": None,
                "user": {"id_str": CUSTOMER, "screen_name": "furiouscamper", "followers_count": 22},
                "entities": {"user_mentions": [{"id_str": BRAND, "screen_name": "NorthwindHelp"}]},
            }
        ],
    }


def xaa_mention(post_id: str) -> dict[str, Any]:
    author = "2222222222222222222"
    return {
        "data": {
            "event_uuid": post_id,
            "filter": {"user_id": BRAND},
            "event_type": "post.mention.create",
            "tag": "mentions",
            "payload": {
                "id": post_id,
                "conversation_id": post_id,
                "created_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "text": f"@NorthwindHelp {QUESTION.lower()}",
                "author_id": author,
                "entities": {"mentions": [{"start": 0, "end": 14, "username": "NorthwindHelp", "id": BRAND}]},
            },
            "includes": {"users": [{"id": author, "username": "OtherUser", "name": "OtherUser", "public_metrics": {}}]},
        }
    }


async def deliver(service: Service, body: object, secret: str = SECRET) -> tuple[int, dict[str, Any]]:
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "X-Twitter-Webhooks-Signature": signature(raw, secret)}
    async with (
        aiohttp.ClientSession() as session,
        session.post(service.url + "/webhooks/x", data=raw, headers=headers) as response,
    ):
        return response.status, await response.json()


async def test_the_crc_is_answered_by_the_service(service: Service) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(service.url + "/webhooks/x", params={"crc_token": "9b4507b3-crc"}) as response:
            assert response.status == 200 and response.content_type == "application/json"
            expected = base64.b64encode(hmac.new(SECRET.encode(), b"9b4507b3-crc", hashlib.sha256).digest())
            assert await response.json() == {"response_token": "sha256=" + expected.decode()}
        async with session.get(service.url + "/webhooks/x") as response:
            assert response.status == 400


async def test_x_in_and_out_for_a_dm_and_mentions_of_both_families(service: Service, fake: FakeX) -> None:
    dm, xaa, aaa = "1790000000000000001", "2080765813578199999", "1296887316556989999"
    status, answer = await deliver(service, aaa_dm(dm), secret="not-the-secret")
    assert (status, answer["error"]) == (401, "bad_signature")
    for body in (aaa_dm(dm), xaa_mention(xaa), aaa_mention(aaa)):
        assert await deliver(service, body) == (202, {"accepted": 1, "duplicates": 0})
    assert await deliver(service, aaa_dm(dm)) == (202, {"accepted": 0, "duplicates": 1})  # X redelivers
    await answered(service, "x_dm", dm)
    await answered(service, "x_mention", xaa)
    await answered(service, "x_mention", aaa)
    calls = await fake.wait_for(3)
    assert len(calls) == 3 and all(call.authorization == f"Bearer {TOKEN}" for call in calls)
    [to_dm] = [call for call in calls if call.path != "/2/tweets"]
    assert to_dm.path == f"/2/dm_conversations/with/{CUSTOMER}/messages" and list(to_dm.body) == ["text"]
    assert "3–5 working days" in to_dm.body["text"]
    replies = {call.body["reply"]["in_reply_to_tweet_id"]: call.body for call in calls if call.path == "/2/tweets"}
    assert set(replies) == {xaa, aaa}
    for body in replies.values():
        assert set(body) == {"text", "reply"} and set(body["reply"]) == {"in_reply_to_tweet_id"}
        assert 0 < weighted(body["text"]) <= 280
