"""POST /webhooks/{channel} on the real app and a real Redis: 202 only once stored; clear 4xx otherwise."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from bot.app import create_app
from bot.config import Settings
from tests.conftest import payload, signed, signed_bytes


@pytest.fixture
async def client(settings: Settings, redis: Redis) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings, workers=False))) as client:
        yield client


async def metric(client: TestClient, name: str, **labels: str) -> float:
    text = await (await client.get("/metrics")).text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


async def test_accepts_signed_messages_once(client: TestClient, redis: Redis, settings: Settings) -> None:
    raw, headers = signed([payload("How long is delivery?", id="m1"), payload("Hi", id="m2")])
    response = await client.post("/webhooks/generic", data=raw, headers=headers)
    assert response.status == 202
    assert await response.json() == {"accepted": 2, "duplicates": 0}
    # Already in Redis when the 202 arrives.
    assert await redis.xlen(f"{settings.redis_prefix}:inbound") == 2
    raw, headers = signed([payload("Hi", id="m2"), payload("New", id="m3")])
    response = await client.post("/webhooks/generic", data=raw, headers=headers)
    assert await response.json() == {"accepted": 1, "duplicates": 1}
    assert await redis.xlen(f"{settings.redis_prefix}:inbound") == 3
    assert await metric(client, "autoresponder_messages_received_total", channel="generic") == 3


@pytest.mark.parametrize(
    ("mutate", "status", "reason"),
    [
        (lambda raw, h: (raw, {k: v for k, v in h.items() if k != "X-Bot-Signature"}), 401, "bad_signature"),
        (lambda raw, h: (raw, {**h, "X-Bot-Signature": "sha256=" + "0" * 64}), 401, "bad_signature"),
        (lambda raw, h: (raw.replace(b"Hello", b"Hellx"), h), 401, "bad_signature"),
        (lambda raw, h: signed_bytes(b"{oops"), 400, "malformed_json"),
        (lambda raw, h: signed_bytes(json.dumps({"id": "x"}).encode()), 400, "invalid_message"),
        (lambda raw, h: signed_bytes(b"x" * (1024 * 1024 + 1)), 413, "too_large"),
    ],
)
async def test_rejections_are_explained_and_counted(
    client: TestClient, redis: Redis, settings: Settings, mutate: object, status: int, reason: str
) -> None:
    raw, headers = signed(payload("Hello"))
    raw, headers = mutate(raw, headers)  # type: ignore[operator]
    response = await client.post("/webhooks/generic", data=io.BytesIO(raw), headers=headers)
    assert response.status == status
    body = await response.json()
    assert body["error"] == reason and body["detail"]
    assert await metric(client, "autoresponder_webhook_rejections_total", channel="generic", reason=reason) == 1
    assert await redis.xlen(f"{settings.redis_prefix}:inbound") == 0


async def test_missing_field_is_named(client: TestClient) -> None:
    body = payload("hi")
    del body["conversation_id"]
    raw, headers = signed(body)
    response = await client.post("/webhooks/generic", data=raw, headers=headers)
    assert response.status == 400
    assert "conversation_id" in (await response.json())["detail"]


async def test_unknown_channel_and_health(client: TestClient) -> None:
    response = await client.post("/webhooks/myspace", data=b"{}")
    assert response.status == 404
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")  # web-only process: ready once Redis answers
    assert ready.status == 200 and (await ready.json())["status"] == "ready"


async def test_a_wrong_method_or_path_under_webhooks_is_a_counted_json_refusal(client: TestClient) -> None:
    wrong = await client.put("/webhooks/generic", data=b"{}")
    assert wrong.status == 405 and wrong.headers["Allow"] == "GET, POST"
    assert (await wrong.json())["error"] == "method_not_allowed"
    nowhere = await client.post("/webhooks/generic/extra", data=b"{}")
    assert nowhere.status == 404 and (await nowhere.json())["error"] == "unknown_channel"
    rejected = "autoresponder_webhook_rejections_total"
    assert await metric(client, rejected, channel="generic", reason="method_not_allowed") == 1
    assert await metric(client, rejected, channel="unknown", reason="unknown_channel") == 1
