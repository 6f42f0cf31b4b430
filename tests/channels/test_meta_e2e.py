"""The real `python -m bot serve` with Messenger and Instagram on, both Graph hosts pointing at a fake Graph
API: signed deliveries in (a Messenger DM, a Page comment, an Instagram DM and comment), the Graph calls out,
the hub.challenge handshakes and a wrongly signed delivery."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.channels import meta
from tests.channels.fake_graph import FakeGraph
from tests.service import Service, answered, serving

pytestmark = pytest.mark.slow
APP_SECRET = "e2e-meta-app-secret"
IG_APP_SECRET = "e2e-instagram-app-secret"
VERIFY = "e2e-verify-token"
PAGE_TOKEN = "EAAB-e2e-page-token"
IG_TOKEN = "IGAA-e2e-instagram-token"
PAGE, IG_ACCOUNT = "1029384756", "17841400000000001"
QUESTION = "How long does standard delivery take in the UK?"


@pytest.fixture(scope="module")
async def graph() -> AsyncIterator[FakeGraph]:
    fake = FakeGraph(PAGE_TOKEN, IG_TOKEN)
    yield fake
    await fake.close()


@pytest.fixture(scope="module")
async def service(
    graph: FakeGraph, tmp_path_factory: pytest.TempPathFactory, brand_models: Path, policies_dir: Path
) -> AsyncIterator[Service]:
    url = await graph.start()
    env = {
        "BOT_META_APP_SECRET": APP_SECRET,
        "BOT_META_INSTAGRAM_APP_SECRET": IG_APP_SECRET,
        "BOT_META_VERIFY_TOKEN": VERIFY,
        "BOT_META_PAGE_TOKEN": PAGE_TOKEN,
        "BOT_META_INSTAGRAM_TOKEN": IG_TOKEN,
        "BOT_META_GRAPH_URL": url,
        "BOT_META_INSTAGRAM_GRAPH_URL": url,
        "BOT_META_GRAPH_VERSION": "v23.0",
    }
    async with serving(tmp_path_factory.mktemp("meta-e2e"), brand_models, policies_dir, env) as service:
        yield service


def dm(page_object: str, account: str, customer: str, mid: str) -> dict[str, Any]:
    """A direct message as Messenger and Instagram deliver it (platforms.md §1.3, §2.3)."""
    now = int(time.time() * 1000)
    event = {
        "sender": {"id": customer},
        "recipient": {"id": account},
        "timestamp": now,
        "message": {"mid": mid, "text": QUESTION},
    }
    return {"object": page_object, "entry": [{"id": account, "time": now, "messaging": [event]}]}


def page_comment(comment_id: str) -> dict[str, Any]:
    value = {
        "item": "comment",
        "verb": "add",
        "comment_id": comment_id,
        "post_id": f"{PAGE}_555",
        "parent_id": f"{PAGE}_555",
        "from": {"id": "7001", "name": "Jane Doe"},
        "message": QUESTION,
        "created_time": int(time.time()),
    }
    return {
        "object": "page",
        "entry": [{"id": PAGE, "time": int(time.time()), "changes": [{"field": "feed", "value": value}]}],
    }


def instagram_comment(comment_id: str) -> dict[str, Any]:
    value = {
        "id": comment_id,
        "from": {"id": "8001", "username": "ana_buyer"},
        "text": QUESTION,
        "media": {"id": "18000000000000001", "media_product_type": "FEED"},
    }
    entry = {"id": IG_ACCOUNT, "time": int(time.time()), "changes": [{"field": "comments", "value": value}]}
    return {"object": "instagram", "entry": [entry]}


async def post(service: Service, webhook: str, body: dict[str, Any], secret: str = APP_SECRET) -> int:
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", meta.SIGNATURE_HEADER: meta.signature(secret.encode(), raw)}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{service.url}/webhooks/{webhook}", data=raw, headers=headers) as response,
    ):
        if response.status == 202:
            assert (await response.json())["accepted"] == 1
        return response.status


async def test_the_handshakes_and_a_wrong_signature(service: Service) -> None:
    async with aiohttp.ClientSession() as session:
        for webhook in ("messenger", "instagram"):
            query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": VERIFY}
            async with session.get(f"{service.url}/webhooks/{webhook}", params=query) as response:
                assert response.status == 200 and response.content_type == "text/plain"
                assert await response.text() == "1158201444"
            query["hub.verify_token"] = "wrong"
            async with session.get(f"{service.url}/webhooks/{webhook}", params=query) as response:
                assert response.status == 403
    assert await post(service, "messenger", dm("page", PAGE, "6001", "m_forged"), "not-the-secret") == 401
    assert await post(service, "instagram", instagram_comment("17900000000000009"), "not-the-secret") == 401


async def test_messenger_and_instagram_in_and_out(service: Service, graph: FakeGraph) -> None:
    assert await post(service, "messenger", dm("page", PAGE, "6001", "m_e2e_dm")) == 202
    assert await post(service, "messenger", page_comment(f"{PAGE}_555_901")) == 202
    assert await post(service, "instagram", dm("instagram", IG_ACCOUNT, "9001", "ig_e2e_dm")) == 202
    # Apps with Business Login for Instagram sign with the Instagram app secret.
    assert await post(service, "instagram", instagram_comment("17900000000000001"), IG_APP_SECRET) == 202
    await answered(service, "messenger", "m_e2e_dm")
    await answered(service, "facebook_comment", f"{PAGE}_555_901")
    await answered(service, "instagram_dm", "ig_e2e_dm")
    await answered(service, "instagram_comment", "17900000000000001")
    calls = {(call.path, call.owner): call.body for call in await graph.wait_for(4)}
    assert len(graph.calls) == 4 and len(calls) == 4

    messenger = calls["/v23.0/me/messages", "page"]
    assert messenger["recipient"] == {"id": "6001"} and messenger["messaging_type"] == "RESPONSE"
    assert set(messenger) == {"recipient", "messaging_type", "message"}
    assert "3–5 working days" in messenger["message"]["text"]

    page_reply = calls[f"/v23.0/{PAGE}_555_901/comments", "page"]
    assert set(page_reply) == {"message"} and "3–5 working days" in page_reply["message"]

    instagram = calls["/v23.0/me/messages", "instagram"]
    assert set(instagram) == {"recipient", "message"} and instagram["recipient"] == {"id": "9001"}
    assert "3–5 working days" in instagram["message"]["text"]

    ig_reply = calls["/v23.0/17900000000000001/replies", "instagram"]
    assert set(ig_reply) == {"message"} and "3–5 working days" in ig_reply["message"]
