"""Security: forged deliveries are never processed, replays at most once, signatures are compared in constant
time, every review-API operation refuses a missing token (and a reviewer's where it is for admins), and no
configured secret reaches the logs or /metrics."""

from __future__ import annotations

import inspect
import io
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from bot.app import create_app
from bot.channels import meta
from bot.channels.base import REGISTRY
from bot.config import Settings
from bot.keys import STORE, USERS
from bot.logs import AccessLogger, JsonFormatter
from bot.review import auth
from bot.review.users import Role
from tests.conftest import TOKEN
from tests.deliveries import CHANNELS, SECRETS, SIGNERS, all_channels, chatwoot_signed, samples

# One delivery per channel that becomes a message (the published examples of a customer writing in).
FIRST = {"generic": 0, "telegram": 0, "x": 0, "messenger": 0, "instagram": 2, "whatsapp": 0, "chatwoot": 0}


def delivery(channel: str) -> bytes:
    body = samples()[channel][FIRST[channel]]
    if channel == "chatwoot":  # the published example is of an open conversation: make it the bot's
        body["message_type"], body["private"] = "incoming", False
        body["conversation"]["status"] = "pending"
    return json.dumps(body).encode()


@pytest.fixture
async def app_client(make_settings: Callable[..., Settings], redis: Redis) -> AsyncIterator[TestClient]:
    """The app with every channel on, its access log written as the service writes it (bot/__main__.py)."""
    app = create_app(make_settings(**all_channels()), workers=False)
    server = TestServer(app)
    await server.start_server(access_log_class=AccessLogger)
    async with TestClient(server) as client:
        yield client


async def state(client: TestClient, redis: Redis) -> tuple[int, set[str]]:
    """The inbound stream's length and the service's keys in Redis."""
    store = client.app[STORE]
    prefix = store.keys.inbound.rpartition(":")[0]
    keys = {key async for key in redis.scan_iter(f"{prefix}:*")}
    return await redis.xlen(store.keys.inbound) if store.keys.inbound in keys else 0, keys


async def test_every_sample_is_a_message(app_client: TestClient) -> None:
    """The deliveries below are real messages: what the other tests refuse or dedup would otherwise be taken."""
    for name in CHANNELS:
        body = delivery(name)
        answer = await (await app_client.post(f"/webhooks/{name}", data=body, headers=SIGNERS[name](body))).json()
        assert answer["accepted"] >= 1, (name, answer)


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_forged_delivery_is_never_processed(app_client: TestClient, redis: Redis, channel: str) -> None:
    before = await state(app_client, redis)
    body = delivery(channel)
    good = SIGNERS[channel](body)
    forgeries = [
        {},  # unsigned
        {key: value[:-2] + ("00" if not value.endswith("00") else "11") for key, value in good.items()},
    ]
    if channel != "telegram":  # Telegram's secret header doesn't depend on the body
        forgeries.append(SIGNERS[channel](body + b" "))  # signed for another body
    for headers in forgeries:
        response = await app_client.post(f"/webhooks/{channel}", data=body, headers=headers)
        assert response.status == 401, (headers, await response.text())
        assert (await response.json())["error"] in ("missing_signature", "bad_signature", "bad_secret")
    assert await state(app_client, redis) == before  # no stream entry, no dedup key, no message state


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_replayed_delivery_is_processed_at_most_once(
    app_client: TestClient, redis: Redis, channel: str
) -> None:
    body = delivery(channel)
    headers = SIGNERS[channel](body)
    first = await (await app_client.post(f"/webhooks/{channel}", data=body, headers=headers)).json()
    length, _ = await state(app_client, redis)
    for _ in range(3):
        response = await app_client.post(f"/webhooks/{channel}", data=body, headers=headers)  # same bytes, same sig
        assert response.status == 202
        assert await response.json() == {"accepted": 0, "duplicates": first["accepted"]}
    assert (await state(app_client, redis))[0] == length


async def test_a_chatwoot_delivery_replayed_after_its_window_is_refused(app_client: TestClient, redis: Redis) -> None:
    body = delivery("chatwoot")
    before = await state(app_client, redis)
    for at in (time.time() - 310, time.time() + 310):  # the header is whole seconds: 1 s is lost to rounding
        response = await app_client.post("/webhooks/chatwoot", data=body, headers=chatwoot_signed(body, at))
        assert response.status == 401 and (await response.json())["error"] == "stale_timestamp"
    assert await state(app_client, redis) == before


def test_every_signature_is_compared_in_constant_time() -> None:
    """A guard, not a proof: each channel's verify (or the helper it calls) uses hmac.compare_digest and no ==."""
    assert set(REGISTRY) == set(CHANNELS)
    for name, channel in REGISTRY.items():
        source = inspect.getsource(channel.verify)  # type: ignore[attr-defined]
        if "meta.verify_signature" in source:
            source = inspect.getsource(meta.verify_signature)
        assert "hmac.compare_digest(" in source, name
        for line in source.splitlines():  # no == on a signature or secret (a header's name is compared with ==)
            compared = ("==" in line or "!=" in line) and "key.lower() ==" not in line
            assert not compared or not any(word in line for word in ("sign", "secret", "given")), line


def operations(document: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(method, path with its parameters filled, admin only) of every operation that needs credentials."""
    found = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if operation.get("security") == []:
                continue
            admin = "Not an admin" in json.dumps(operation["responses"].get("403", {}))
            found.append((method.upper(), path.replace("{", "").replace("}", ""), admin))
    return found


async def test_every_api_operation_needs_credentials_and_admin_ones_an_admin(
    app_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "FAILURE_DELAY_S", 0)
    document = await (await app_client.get("/api/openapi.json")).json()
    found = operations(document)
    assert len(found) >= 10 and sum(admin for *_, admin in found) >= 3
    _, _, reviewer = await app_client.app[USERS].add("rita", Role.REVIEWER)
    for method, path, admin in found:
        for headers in ({}, {"Authorization": "Bearer not-a-token-0123456789"}, {"Authorization": TOKEN}):
            response = await app_client.request(method, path, headers=headers, json={"topic": "all"})
            assert response.status == 401, (method, path, headers)
            assert (await response.json())["error"] == "unauthorized"
        response = await app_client.request(
            method, path, headers={"Authorization": f"Bearer {reviewer}"}, json={"topic": "all"}
        )
        if admin:
            assert response.status == 403, (method, path, await response.text())
        else:
            assert response.status != 403 and response.status < 500, (method, path, await response.text())


async def test_no_secret_reaches_the_logs_or_metrics(app_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "FAILURE_DELAY_S", 0)
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(JsonFormatter())  # without the service's scrubbing of secrets: nothing may emit one
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        sent = 0
        for round_ in range(8):
            for name in CHANNELS:
                body = delivery(name)
                fresh = body.replace(b'"', b'"', 1) + b" " * round_  # a new body each round: new signatures
                for data, headers in (
                    (fresh, SIGNERS[name](fresh)),  # good (a duplicate after the first round)
                    (fresh, SIGNERS[name](b"other")),  # forged
                    (b"{not json", SIGNERS[name](b"{not json")),  # malformed, signed
                    (b"\xff" * 40, {}),  # garbage, unsigned
                ):
                    await app_client.post(f"/webhooks/{name}", data=data, headers=headers)
                    sent += 1
                query = {"hub.mode": "subscribe", "hub.verify_token": SECRETS["meta_verify_token"], "crc_token": "c"}
                await app_client.get(f"/webhooks/{name}", params=query | {"hub.challenge": str(round_)})
                await app_client.get(f"/webhooks/{name}", params={"hub.verify_token": "wrong"})
                sent += 2
            for path in ("/api/reviews", "/api/audit", "/api/incidents", "/api/learning"):
                await app_client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
                await app_client.get(path, headers={"Authorization": "Bearer wrong-token-0123456789"})
                sent += 2
        assert sent >= 300
        metrics = await (await app_client.get("/metrics")).text()
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    logs = captured.getvalue()
    assert "webhook rejected" in logs and "message accepted" in logs and "webhook_rejections_total" in metrics
    for setting, secret in SECRETS.items():
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            assert form not in logs, f"{setting} in the logs"
            assert form not in metrics, f"{setting} in /metrics"
    assert TOKEN not in logs and TOKEN not in metrics
