"""Shared fixtures: a real Redis (BOT_TEST_REDIS_URL, else an embedded server), settings with a key prefix
of their own per test, the real encoder loaded once, and the fake remote peers."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from bot.app import build_classifier, create_app
from bot.channels.generic import sign
from bot.classify.encoder import TransformersEncoder, default_model_path
from bot.classify.evaluate import read_labelled
from bot.config import Settings
from bot.embedded import EmbeddedRedis
from bot.keys import STORE
from bot.models import (
    Action,
    Author,
    Classification,
    Decision,
    Draft,
    InboundMessage,
    Outcome,
    Priority,
    ReviewCase,
    RiskFlag,
)
from bot.policy.load import load_policy
from bot.store import INBOUND_GROUP, RedisStore
from tests.fakes import FakeLLM, Receiver

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-generic-secret"
TOKEN = "test-review-token-0123456789"


@pytest.fixture(autouse=True)
def logging_put_back(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A command run in-process (`main([...])`) configures logging for the whole process: its handler would keep
    writing to that test's captured stderr after pytest closed it, and later tests' records would go nowhere."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    yield
    logging.captureWarnings(False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
async def redis_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    url = os.environ.get("BOT_TEST_REDIS_URL")
    if url:
        yield url
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), port=free_port())
    yield await server.start()
    await server.stop()


@pytest.fixture
async def redis(redis_url: str, settings: Settings) -> AsyncIterator[Redis]:
    """A client; at the end, this test's keys (its own prefix) are deleted: other tests' data is untouched."""
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    async for key in client.scan_iter(f"{settings.redis_prefix}:*", count=1000):
        await client.delete(key)
    await client.aclose()


@pytest.fixture(scope="session")
def policies_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo policies, with reviewers at work around the clock: what a test sees doesn't depend on the hour
    it runs at (tests of off hours set their own hours)."""
    folder = tmp_path_factory.mktemp("policies")
    shutil.copytree(ROOT / "policies", folder, dirs_exist_ok=True)
    decision = yaml.safe_load((folder / "decision.yaml").read_text())
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    decision["review_hours"] |= {"weekly": dict.fromkeys(days, "00:00-24:00"), "holidays": []}
    (folder / "decision.yaml").write_text(yaml.safe_dump(decision, allow_unicode=True))
    return folder


@pytest.fixture
def make_settings(redis_url: str, tmp_path: Path, policies_dir: Path) -> Callable[..., Settings]:
    prefix = "t" + uuid.uuid4().hex[:12]

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "redis_url": redis_url,
            "redis_prefix": prefix,
            "data_dir": tmp_path / "data",
            "policies_dir": policies_dir,
            "prompts_dir": ROOT / "prompts",
            "generic_secret": SECRET,
            "review_tokens": TOKEN,
            "claim_idle_ms": 2000,
            "send_backoff_s": 0.01,
            "shutdown_timeout_s": 5,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
def encoder() -> Iterator[TransformersEncoder]:
    loaded = TransformersEncoder(default_model_path())
    yield loaded
    loaded.close()


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeLLM]:
    llm = FakeLLM()
    yield llm
    await llm.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    peer = Receiver(SECRET.encode())
    yield peer
    await peer.close()


@pytest.fixture(scope="module")
async def peer() -> AsyncIterator[Receiver]:
    """The platform side for a module's real service process."""
    receiver = Receiver(SECRET.encode())
    yield receiver
    await receiver.close()


def message(
    text: str,
    *,
    id: str | None = None,
    handle: str = "hiker_jo",
    public: bool = False,
    channel: str = "generic",
    followers: int = 10,
) -> InboundMessage:
    now = datetime.now(UTC)
    return InboundMessage(
        channel=channel,
        id=id or uuid.uuid4().hex,
        conversation_id="conv-" + (id or "x"),
        text=text,
        author=Author(id="u1", handle=handle, followers=followers),
        created_at=now,
        public=public,
        received_at=now,
    )


def payload(text: str, *, id: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {
        "id": id or uuid.uuid4().hex,
        "conversation_id": "c-" + uuid.uuid4().hex[:8],
        "text": text,
        "author": {"id": "u-1", "handle": "hiker_jo", "followers": 12},
        "created_at": "2026-11-23T10:00:00+00:00",
        "public": False,
    }
    body.update(extra)
    return body


def signed(body: object) -> tuple[bytes, dict[str, str]]:
    return signed_bytes(json.dumps(body).encode())


def signed_bytes(raw: bytes) -> tuple[bytes, dict[str, str]]:
    return raw, {"Content-Type": "application/json", "X-Bot-Signature": sign(SECRET.encode(), raw)}


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tuned layers and trained heads, shared by the tests of one session (keyed by their examples)."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def brand_models(models_dir: Path, encoder: TransformersEncoder) -> Path:
    """`models_dir` holding the demo brand's model as the service trains it by default, so the service
    processes that tests start (BOT_MODELS_DIR) load it instead of each tuning its own."""
    settings = Settings(_env_file=None, models_dir=models_dir)  # type: ignore[call-arg]
    try:
        build_classifier(settings, encoder, load_policy(ROOT / "policies"))  # its ONNX export too
    finally:
        encoder.top, encoder.lone = None, None  # the session's encoder stays as other tests expect it
    return models_dir


def intent_examples() -> list[tuple[str, str]]:
    """(intent, text) pairs of tests/data/intents_train.csv without its out-of-scope rows: a small brand to tune on."""
    train = read_labelled(ROOT / "tests" / "data" / "intents_train.csv", "text", "category")
    return [(label, text) for label, text in zip(train.labels, train.texts, strict=True) if label != "oos"]


@pytest.fixture
def untuned(encoder: TransformersEncoder) -> Iterator[TransformersEncoder]:
    """The session's encoder, left as it was found (tuning installs layers on it, serve_lone a session)."""
    yield encoder
    encoder.top, encoder.lone = None, None


async def open_case(
    store: RedisStore,
    msg: InboundMessage,
    *,
    intent: str = "compensation_demand",
    draft: str | None = "Sorry to hear that.",
    priority: Priority = Priority.NORMAL,
    shadow: Action | None = None,
    flags: tuple[RiskFlag, ...] = (),
    retrieved: tuple[str, ...] = (),
) -> ReviewCase:
    """A message taken in and held for review through the store's own paths, as a worker does it."""
    await store.enqueue([msg])
    [entry] = await store.read(store.keys.inbound, INBOUND_GROUP, "w", 1, 100)
    outcome = Outcome(
        message=msg,
        classification=Classification(intent=intent, confidence=0.8, sentiment="negative", risk_flags=flags),
        draft=Draft(text=draft, answerable=True, drafter="offline", retrieved=retrieved) if draft else None,
        decision=Decision(action=Action.REVIEW, reasons=(f"intent_mode:{intent}",), priority=priority, shadow=shadow),
    )
    case = ReviewCase(
        case_id=f"c-{msg.id}",
        message=msg,
        classification=outcome.classification,
        draft=outcome.draft,
        decision=outcome.decision,
        created_at=datetime.now(UTC),
    )
    await store.commit(entry.entry_id, outcome, None, case)
    return case


@pytest.fixture
async def client(settings: Settings, redis: Redis) -> AsyncIterator[TestClient]:
    """The API and the desk (no workers) with two open cases: c-m1 (normal) and c-m2 (urgent)."""
    async with TestClient(TestServer(create_app(settings, workers=False))) as client:
        for mid, priority in (("m1", Priority.NORMAL), ("m2", Priority.URGENT)):
            await open_case(client.app[STORE], message("I want compensation", id=mid), priority=priority)
        yield client
