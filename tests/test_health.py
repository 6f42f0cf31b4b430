"""Health and readiness, and what the webhook says while Redis is away: nothing is accepted it can't keep."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from bot.app import create_app
from bot.config import Settings
from bot.embedded import EmbeddedRedis
from tests.conftest import free_port, payload, signed


async def test_redis_outage_makes_the_service_unready_and_refuses_intake(make_settings: object, tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", port=free_port())
    settings: Settings = make_settings(redis_url=await server.start())  # type: ignore[operator]
    async with TestClient(TestServer(create_app(settings, workers=False))) as client:
        assert (await client.get("/readyz")).status == 200
        await server.stop()
        ready = await client.get("/readyz")
        assert ready.status == 503 and (await ready.json())["problems"][0].startswith("redis:")
        assert (await client.get("/healthz")).status == 200  # alive, just not ready
        raw, headers = signed(payload("How long is delivery?"))
        response = await client.post("/webhooks/generic", data=raw, headers=headers)
        assert response.status == 503 and (await response.json())["error"] == "store_unavailable"


async def test_a_worker_process_is_not_ready_until_its_model_is(settings: Settings) -> None:
    async with TestClient(TestServer(create_app(settings, webhooks=False))) as client:
        first = await client.get("/readyz")
        assert first.status == 503 and "model: loading" in (await first.json())["problems"]
        assert (await client.get("/webhooks/generic")).status == 404  # a worker takes no webhooks
