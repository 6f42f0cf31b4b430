"""`python -m bot status` and the gauges /metrics samples: queue lag and pending, dead letters, the review queue by
priority, incidents and the per-minute rates, read from a real Redis holding known contents."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.config import Settings
from bot.metrics import Metrics, create_metrics
from bot.models import Action, CaseState, Classification, Decision, Outcome, Priority, Reply, ReviewCase
from bot.records import this_minute
from bot.status import age, gather, rates, render, sample
from bot.store import INBOUND_GROUP, OUTBOX_GROUP, RedisStore
from tests.conftest import ROOT, message


@pytest.fixture
async def store(redis: Redis, settings: Settings) -> RedisStore:
    store = RedisStore(redis, settings.redis_prefix, ttl_s=600)
    await store.setup()
    return store


async def held(store: RedisStore, mid: str, priority: Priority, age_s: float, late_s: float | None = None) -> None:
    """A message taken in and held for review, as a worker does it: `age_s` old, `late_s` past its deadline."""
    msg = message("I want my money back", id=mid)
    await store.enqueue([msg])
    [entry] = await store.read(store.keys.inbound, INBOUND_GROUP, "w", 1, 100)
    deadline = datetime.now(UTC) - timedelta(seconds=late_s) if late_s is not None else None
    decision = Decision(action=Action.REVIEW, reasons=("risk:legal",), priority=priority, deadline=deadline)
    outcome = Outcome(
        message=msg, classification=Classification(intent="complaint", confidence=0.9), draft=None, decision=decision
    )
    created = datetime.now(UTC) - timedelta(seconds=age_s)
    case = ReviewCase(
        case_id=f"c-{mid}", message=msg, classification=None, draft=None, decision=decision, created_at=created
    )
    assert await store.commit(entry.entry_id, outcome, None, case)


async def fill(store: RedisStore, redis: Redis) -> None:
    """Known contents: 2 urgent cases (one 2 h old, one 10 min past its deadline), 1 normal case (90 s old);
    5 inbound messages of which a worker holds 2; 1 reply waiting in the outbox; 2 dead letters."""
    await held(store, "u1", Priority.URGENT, age_s=7200)
    await held(store, "u2", Priority.URGENT, age_s=1800, late_s=600)
    await held(store, "n1", Priority.NORMAL, age_s=90)
    await store.enqueue([message(f"hello {i}", id=f"in{i}") for i in range(5)])
    assert len(await store.read(store.keys.inbound, INBOUND_GROUP, "w", 2, 100)) == 2
    reply = Reply(reply_id="r1", message=message("hi", id="in0"), text="Hi!", origin="bot")
    await redis.xadd(store.keys.outbox, {"m": reply.model_dump_json()})
    for n in range(2):
        await redis.xadd(store.keys.dead, {"stream": "inbound", "m": "{}", "reason": f"processing_failed {n}"})


async def test_status_shows_queues_reviews_and_incidents(store: RedisStore, redis: Redis, settings: Settings) -> None:
    await fill(store, redis)
    status = await gather(store, datetime.now(UTC))
    inbound, outbox = status.streams["inbound"], status.streams["outbox"]
    assert (inbound.lag, inbound.pending, outbox.lag, outbox.pending) == (3, 2, 1, 0)
    assert 0 <= inbound.oldest_s < 60 and status.dead_letters == 2
    review = status.review
    assert review.depth == {Priority.URGENT: 2, Priority.HIGH: 0, Priority.NORMAL: 1}
    assert review.overdue == {Priority.URGENT: 1, Priority.HIGH: 0, Priority.NORMAL: 0}
    assert 7200 <= review.oldest[Priority.URGENT] < 7260 and 90 <= review.oldest[Priority.NORMAL] < 150
    text = render(status, settings.redis_prefix)
    assert re.search(r"^  inbound +3 +2  \d+s$", text, re.MULTILINE), text
    assert re.search(r"^  outbox +1 +0  \d+s$", text, re.MULTILINE), text
    assert re.search(r"^  dead letters +2$", text, re.MULTILINE), text
    assert re.search(r"^  urgent +2 +1  2h 0\dm$", text, re.MULTILINE), text
    assert re.search(r"^  high +0 +0  -$", text, re.MULTILINE), text
    assert re.search(r"^  normal +1 +0  1m \d\ds$", text, re.MULTILINE), text
    assert re.search(r"^  all +3 +1  2h 0\dm$", text, re.MULTILINE), text
    assert "incidents: none" in text

    await redis.hset(store.keys.incidents, "delivery_delay", json.dumps({"since": "10:02", "messages": 41}))
    text = render(await gather(store, datetime.now(UTC)), settings.redis_prefix)
    assert "incidents:\n  delivery_delay: since=10:02, messages=41" in text


async def test_rates_are_per_minute_over_the_last_5_and_15_minutes(store: RedisStore, redis: Redis) -> None:
    minute = 29_000_000  # a fixed minute since the epoch (in 2025), so the windows are known
    for what, ago, count in (("received", 0, 3), ("received", 2, 6), ("received", 10, 20), ("received", 20, 99)):
        await redis.set(store.keys.rate(what, minute - ago), count)
    await redis.set(store.keys.rate("sent", minute - 14), 29)
    figures = await rates(store, minute * 60 + 30)  # half a minute into `minute`: 4.5 and 14.5 minutes
    assert figures["received"] == {5: 9 / 4.5, 15: 29 / 14.5}
    assert figures["sent"] == {5: 0.0, 15: 2.0} and figures["resolved"] == {5: 0.0, 15: 0.0}


async def test_received_sent_and_resolved_are_counted_where_they_happen(store: RedisStore, redis: Redis) -> None:
    started = this_minute()
    await store.enqueue([message("a", id="a"), message("b", id="b"), message("a", id="a")])  # one duplicate
    reply = Reply(reply_id="r1", message=message("a", id="a"), text="Hi!", origin="bot")
    await redis.xadd(store.keys.outbox, {"m": reply.model_dump_json()})
    [entry] = await store.read(store.keys.outbox, OUTBOX_GROUP, "s", 1, 100)
    assert await store.delivered(entry.entry_id, reply)
    assert not await store.delivered(entry.entry_id, reply)  # a redelivered entry is not a second reply
    await held(store, "c1", Priority.NORMAL, age_s=0)
    await store.resolve("c-c1", "alice", CaseState.REJECTED, None, "not for us")

    async def counted(what: str) -> int:
        keys = [store.keys.rate(what, m) for m in range(started, this_minute() + 1)]
        return sum(int(v or 0) for v in await redis.mget(keys))

    assert (await counted("received"), await counted("sent"), await counted("resolved")) == (3, 1, 1)
    assert 0 < await redis.ttl(store.keys.rate("received", this_minute())) <= 3600


async def test_metrics_sample_the_queues_and_count_each_breach_once(store: RedisStore, redis: Redis) -> None:
    await fill(store, redis)
    web, worker = create_metrics(), create_metrics()  # two processes scraped: a breach counts in one only
    for metrics in (web, worker, web):
        await sample(store, metrics, datetime.now(UTC))

    def value(metrics: Metrics, name: str, **labels: str) -> float:
        found = metrics.registry.get_sample_value(name, labels)
        assert found is not None, (name, labels)
        return found

    for metrics in (web, worker):
        assert value(metrics, "autoresponder_queue_lag_messages", stream="inbound") == 3
        assert value(metrics, "autoresponder_queue_pending_messages", stream="inbound") == 2
        assert value(metrics, "autoresponder_queue_lag_messages", stream="outbox") == 1
        assert value(metrics, "autoresponder_queue_pending_messages", stream="outbox") == 0
        assert 0 <= value(metrics, "autoresponder_queue_oldest_seconds", stream="outbox") < 60
        assert value(metrics, "autoresponder_review_queue_cases", priority="urgent") == 2
        assert value(metrics, "autoresponder_review_oldest_case_seconds", priority="urgent") >= 7200
        assert value(metrics, "autoresponder_review_oldest_case_seconds", priority="high") == 0
        assert value(metrics, "autoresponder_review_overdue_cases") == 1
    breaches = [
        m.registry.get_sample_value("autoresponder_sla_breaches_total", {"priority": "urgent"}) or 0
        for m in (web, worker)
    ]
    assert breaches == [1, 0]


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0, "0s"), (59.9, "59s"), (62, "1m 02s"), (7260, "2h 01m"), (3 * 86400 + 4 * 3600, "3d 4h")]
)
def test_ages_read_as_an_operator_reads_them(seconds: float, shown: str) -> None:
    assert age(seconds) == shown


def status_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "status", *args],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("BOT_")} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_the_status_command_prints_the_figures(
    store: RedisStore, redis: Redis, settings: Settings, tmp_path: Path
) -> None:
    await fill(store, redis)
    now = this_minute()
    for ago in range(-1, 16):  # 2 received and 1 sent in each of the last 16 minutes and the next one (the
        # command may start in the next minute)
        await redis.set(store.keys.rate("received", now - ago), 2)
        await redis.set(store.keys.rate("sent", now - ago), 1)
    env = {"BOT_REDIS_URL": str(settings.redis_url), "BOT_REDIS_PREFIX": settings.redis_prefix}
    shown = status_cli(env=env)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert re.search(r"^  inbound +3 +2  \d+s$", text, re.MULTILINE), text
    assert re.search(r"^  dead letters +2$", text, re.MULTILINE), text
    assert re.search(r"^  urgent +2 +1  2h 0\dm$", text, re.MULTILINE), text
    assert "incidents: none" in text
    # Whole minutes of 2 (and part of this one, also 2): 2.0 a minute, or a little more if a minute began since.
    received = re.search(r"^  messages received +(\d+\.\d) +(\d+\.\d)$", text, re.MULTILINE)
    sent = re.search(r"^  replies sent +(\d+\.\d) +(\d+\.\d)$", text, re.MULTILINE)
    resolved = re.search(r"^  reviews resolved +(\d+\.\d) +(\d+\.\d)$", text, re.MULTILINE)
    assert received and sent and resolved, text
    assert 2.0 <= float(received[1]) <= 2.6 and 2.0 <= float(received[2]) <= 2.2
    assert 1.0 <= float(sent[1]) <= 1.3 and float(resolved[1]) == float(resolved[2]) == 0

    as_json = status_cli("--json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    figures = json.loads(as_json.stdout)
    assert figures["streams"]["inbound"]["lag"] == 3 and figures["streams"]["outbox"]["lag"] == 1
    assert figures["dead_letters"] == 2 and figures["incidents"] == {}
    assert figures["review"]["urgent"] == {"cases": 2, "overdue": 1, "oldest_seconds": pytest.approx(7200, abs=60)}

    # Without BOT_REDIS_URL: serve's embedded Redis in the data folder (empty here).
    local = status_cli(env={"BOT_DATA_DIR": str(tmp_path / "data")})
    assert local.returncode == 0, local.stderr
    assert re.search(r"^  inbound +0 +0  -$", local.stdout, re.MULTILINE), local.stdout
    assert "incidents: none" in local.stdout
