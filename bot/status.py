"""How the service is doing now, read from Redis: for `python -m bot status` at an operator's terminal, and for
the gauges /metrics samples at each scrape (queue lag and pending, the review queue, SLA breaches).

Every figure comes from Redis, so it is the same whichever process (or none) is running: the streams' lengths
and consumer groups, the review queue, the incident brake's hash, and per-minute counters the store increments
where messages are received, replies sent and reviews resolved (`{prefix}:rate:<what>:<minute>`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from redis.exceptions import ResponseError

from bot.cases import QueueStats
from bot.config import Settings
from bot.metrics import Metrics
from bot.models import Priority
from bot.review.connect import service_redis
from bot.store import INBOUND_GROUP, OUTBOX_GROUP, RedisStore

WINDOWS = (5, 15)  # minutes the rates are averaged over
RATES = {"received": "messages received", "sent": "replies sent", "resolved": "reviews resolved"}


@dataclass(frozen=True)
class StreamFigures:
    """A stream's backlog: `lag` entries no consumer has read, `pending` read and not finished, and the age in
    seconds of the oldest unfinished one (finished entries are deleted, so it is the stream's first)."""

    lag: int
    pending: int
    oldest_s: float


@dataclass(frozen=True)
class Status:
    at: datetime
    streams: dict[str, StreamFigures]
    dead_letters: int
    review: QueueStats
    incidents: dict[str, str]
    rates: dict[str, dict[int, float]]  # what -> window in minutes -> per minute


def streams(store: RedisStore) -> dict[str, tuple[str, str]]:
    """The two work streams by name: their key and consumer group."""
    return {"inbound": (store.keys.inbound, INBOUND_GROUP), "outbox": (store.keys.outbox, OUTBOX_GROUP)}


async def stream_figures(store: RedisStore, stream: str, group: str) -> StreamFigures:
    async with store.redis.pipeline(transaction=False) as pipe:
        pipe.xlen(stream)
        pipe.xpending(stream, group)
        pipe.xrange(stream, count=1)
        pipe.time()
        length, summary, first, (seconds, micros) = await pipe.execute(raise_on_error=False)
    if isinstance(length, ResponseError):
        raise length
    # No group yet (nothing has run against this Redis): nothing is pending either.
    pending = 0 if isinstance(summary, ResponseError) else int(summary["pending"])
    oldest = 0.0
    if first:
        now_ms = int(seconds) * 1000 + int(micros) // 1000  # Redis's clock, which stamped the entry ids
        oldest = max(0.0, (now_ms - int(first[0][0].split("-")[0])) / 1000)
    return StreamFigures(lag=max(0, int(length) - pending), pending=pending, oldest_s=oldest)


async def rates(store: RedisStore, now_s: float) -> dict[str, dict[int, float]]:
    """Per minute over each window: the whole minutes before this one and the part of this one gone by."""
    current = int(now_s // 60)
    minutes = range(current - max(WINDOWS) + 1, current + 1)
    keys = [store.keys.rate(what, minute) for what in RATES for minute in minutes]
    values = iter(await store.redis.mget(keys))
    figures: dict[str, dict[int, float]] = {}
    for what in RATES:
        counts = {minute: int(next(values) or 0) for minute in minutes}
        figures[what] = {}
        for window in WINDOWS:
            total = sum(counts[minute] for minute in range(current - window + 1, current + 1))
            elapsed = window - 1 + (now_s - current * 60) / 60
            figures[what][window] = total / elapsed
    return figures


async def gather(store: RedisStore, now: datetime) -> Status:
    figures = {name: await stream_figures(store, key, group) for name, (key, group) in streams(store).items()}
    incidents = cast(dict[str, str], await store.redis.hgetall(store.keys.incidents))
    return Status(
        at=now,
        streams=figures,
        dead_letters=int(await store.redis.xlen(store.keys.dead)),
        review=await store.queue_stats(now),
        incidents=dict(sorted(incidents.items())),
        rates=await rates(store, now.timestamp()),
    )


async def sample(store: RedisStore, metrics: Metrics, now: datetime) -> None:
    """Set the gauges read from Redis (queues, review queue, incidents), and count the cases seen past their
    deadline for the first time."""
    for name, (key, group) in streams(store).items():
        figures = await stream_figures(store, key, group)
        metrics.queue_lag.labels(name).set(figures.lag)
        metrics.queue_pending.labels(name).set(figures.pending)
        metrics.queue_oldest.labels(name).set(figures.oldest_s)
    review = await store.queue_stats(now)
    for priority in Priority:
        metrics.review_queue.labels(priority.value).set(review.depth[priority])
        metrics.review_oldest.labels(priority.value).set(review.oldest[priority])
    metrics.review_overdue.set(sum(review.overdue.values()))
    firsts = await store.first_breaches([case_id for case_id, _ in review.late])
    for (_, priority), first in zip(review.late, firsts, strict=True):
        if first:
            metrics.sla_breaches.labels(priority.value).inc()
    # Every process shows the incidents any process (or an admin) raised, and lowers the ones now cleared.
    held = set(cast(list[str], await store.redis.hkeys(store.keys.incidents)))
    shown = {sample.labels["topic"] for family in metrics.incident_active.collect() for sample in family.samples}
    for topic in held | shown:
        metrics.incident_active.labels(topic).set(1 if topic in held else 0)


def age(seconds: float) -> str:
    """A duration as an operator reads it: 42s, 5m 02s, 2h 10m, 3d 4h."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def _incident(raw: str) -> str:
    try:
        record = json.loads(raw)
    except ValueError:  # written by hand or by a newer brake: show it as it is
        return raw
    if isinstance(record, dict):
        return ", ".join(f"{key}={value}" for key, value in record.items())
    return raw


def render(status: Status, prefix: str) -> str:
    lines = [f"auto-responder status at {status.at:%Y-%m-%d %H:%M:%S %Z} (Redis key prefix {prefix!r})", ""]
    lines.append(f"{'queues':<18}{'lag':>7}{'pending':>9}  oldest")
    for name, figures in status.streams.items():
        oldest = age(figures.oldest_s) if figures.lag + figures.pending else "-"
        lines.append(f"  {name:<16}{figures.lag:>7}{figures.pending:>9}  {oldest}")
    lines.append(f"  {'dead letters':<16}{status.dead_letters:>7}")
    lines.append("  (lag: not read by a worker or sender yet; pending: read and not finished)")
    lines += ["", f"{'review queue':<18}{'cases':>7}{'overdue':>9}  oldest"]
    review = status.review
    for priority in Priority:
        depth = review.depth[priority]
        oldest = age(review.oldest[priority]) if depth else "-"
        lines.append(f"  {priority.value:<16}{depth:>7}{review.overdue[priority]:>9}  {oldest}")
    total = sum(review.depth.values())
    oldest = age(max(review.oldest.values())) if total else "-"
    lines.append(f"  {'all':<16}{total:>7}{sum(review.overdue.values()):>9}  {oldest}")
    lines += ["", "incidents: none" if not status.incidents else "incidents:"]
    lines += [f"  {topic}: {_incident(raw)}" for topic, raw in status.incidents.items()]
    lines += ["", f"{'per minute':<20}" + "".join(f"{f'last {w} min':>13}" for w in WINDOWS)]
    for what, label in RATES.items():
        lines.append(f"  {label:<18}" + "".join(f"{status.rates[what][w]:>13.1f}" for w in WINDOWS))
    return "\n".join(lines)


def as_json(status: Status) -> dict[str, Any]:
    review = status.review
    return {
        "at": status.at.isoformat(),
        "streams": {
            name: {"lag": f.lag, "pending": f.pending, "oldest_seconds": round(f.oldest_s, 3)}
            for name, f in status.streams.items()
        },
        "dead_letters": status.dead_letters,
        "review": {
            p.value: {"cases": review.depth[p], "overdue": review.overdue[p], "oldest_seconds": round(review.oldest[p])}
            for p in Priority
        },
        "incidents": {topic: _parsed(raw) for topic, raw in status.incidents.items()},
        "per_minute": {
            what: {f"{w}m": round(v, 3) for w, v in windows.items()} for what, windows in status.rates.items()
        },
    }


def _parsed(raw: str) -> object:
    try:
        return json.loads(raw)
    except ValueError:  # not JSON: pass it on as text
        return raw


def show_status(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_show(settings, args.json))


async def _show(settings: Settings, as_object: bool) -> int:
    async with service_redis(settings) as redis:
        store = RedisStore(redis, settings.redis_prefix, ttl_s=settings.dedup_ttl_s)
        status = await gather(store, datetime.now(UTC))
    print(json.dumps(as_json(status)) if as_object else render(status, settings.redis_prefix))
    return 0
