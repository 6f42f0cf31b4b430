"""Reviewer accounts: created from the command line, stored hashed in Redis, and accepted by the API."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from bot.app import create_app
from bot.config import Settings
from bot.keys import METRICS, USERS
from bot.review.users import Role, UserExists, UserStore
from tests.conftest import ROOT


async def test_users_are_stored_hashed_and_found_by_token_or_password(redis: Redis, settings: Settings) -> None:
    store = UserStore(redis, settings.redis_prefix)
    user, password, token = await store.add("alice", Role.ADMIN)
    raw = str(await redis.hgetall(store.users)) + str(await redis.hgetall(store.tokens))  # type: ignore[misc]
    assert password not in raw and token not in raw and user.password_hash.startswith("$argon2")
    assert (await store.by_token(token)) == user and await store.by_token(token + "x") is None
    assert (await store.by_password("alice", password)) == user
    assert await store.by_password("alice", "wrong") is None and await store.by_password("nobody", password) is None
    with pytest.raises(UserExists):
        await store.add("alice", Role.REVIEWER)
    assert [u.name for u in await store.all()] == ["alice"]
    assert await store.remove("alice") and await store.by_token(token) is None and not await store.remove("alice")


@pytest.fixture
async def client(settings: Settings, redis: Redis) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings, workers=False))) as client:
        yield client


async def test_the_api_takes_a_users_token_and_refuses_a_wrong_one_slowly(client: TestClient) -> None:
    _, _, token = await client.app[USERS].add("bob", Role.REVIEWER)
    ok = await client.get("/api/reviews", headers={"Authorization": f"Bearer {token}"})
    assert ok.status == 200
    wrong = await client.get("/api/reviews", headers={"Authorization": "Bearer not-a-token"})
    assert wrong.status == 401 and (await wrong.json())["error"] == "unauthorized"
    none = await client.get("/api/reviews")
    assert none.status == 401
    assert client.app[METRICS].auth_failures.labels("token")._value.get() == 2
    await client.app[USERS].remove("bob")
    assert (await client.get("/api/reviews", headers={"Authorization": f"Bearer {token}"})).status == 401


def users_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "users", *args],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("BOT_")} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_users_add_prints_a_password_and_token_once(settings: Settings, redis: Redis, tmp_path: Path) -> None:
    env = {"BOT_REDIS_URL": str(settings.redis_url), "BOT_REDIS_PREFIX": settings.redis_prefix}
    added = users_cli("add", "carol", "--role", "admin", env=env)
    assert added.returncode == 0, added.stderr
    token = re.search(r"API token: (\S+)", added.stdout)
    assert token is not None and "password: " in added.stdout
    user = await UserStore(redis, settings.redis_prefix).by_token(token.group(1))
    assert user is not None and user.name == "carol" and user.role is Role.ADMIN
    again = users_cli("add", "carol", env=env)
    assert again.returncode == 2 and "user carol exists already" in again.stderr
    bad = users_cli("add", "Carol Smith", env=env)
    assert bad.returncode == 2 and "user name 'Carol Smith'" in bad.stderr
    # Without BOT_REDIS_URL: the embedded Redis that `serve` uses, in the data folder.
    local = {"BOT_DATA_DIR": str(tmp_path / "data")}
    assert users_cli("add", "dave", env=local).returncode == 0
    listed = users_cli("list", env=local)
    assert listed.returncode == 0 and listed.stdout.startswith("dave\treviewer")
