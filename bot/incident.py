"""The incident brake in Redis: the incidents that hold topics, and the per-minute counts of each intent's
negative messages that every worker process adds to and reads (the rules are pure, in bot/policy/incident.py).

Keys: `{prefix}:incidents`, a hash topic -> JSON (since, by, reason, action, holding, count), which
`python -m bot status` shows; `{prefix}:neg:<intent>:<minute>`, counters that expire once older than a window
and its baseline; `{prefix}:incidents:quiet:<topic>`, set for one window when an admin clears a topic, so the
spike they just dealt with doesn't raise it again at once. Every raise, change and clear is in the audit log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import cast

from redis.asyncio import Redis

from bot.metrics import Metrics
from bot.models import Classification
from bot.policy.incident import Incident, minutes, negatives, raised, spike
from bot.policy.schema import BrandPolicy, IncidentPolicy
from bot.records import Keys

logger = logging.getLogger(__name__)


class IncidentStore:
    """Reads and writes the incidents and the negative-message counters under one key prefix."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        keys = Keys(prefix)
        self.key, self.audit = keys.incidents, keys.audit
        self._p = prefix

    def counter(self, intent: str, minute: int) -> str:
        return f"{self._p}:neg:{intent}:{minute}"

    def quiet(self, topic: str) -> str:
        return f"{self.key}:quiet:{topic}"

    async def active(self) -> dict[str, Incident]:
        """Every incident holding a topic now, by topic."""
        raw = cast(dict[str, str], await self.redis.hgetall(self.key))  # type: ignore[misc]
        now = datetime.now(UTC)
        return {topic: Incident.parse(topic, value, now) for topic, value in sorted(raw.items())}

    async def pull(self, incident: Incident) -> Incident | None:
        """An admin sets (or changes) the incident on its topic; returns the one it replaced, if any."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hget(self.key, incident.topic)
            pipe.hset(self.key, incident.topic, incident.stored())
            pipe.delete(self.quiet(incident.topic))
            before, *_ = await pipe.execute()
        action = "incident_changed" if before else "incident_raised"
        await self._audit(incident.by, action, incident, before=before or "")
        return Incident.parse(incident.topic, before, incident.since) if before else None

    async def clear(self, topic: str, by: str, quiet_s: int) -> Incident | None:
        """An admin lifts the incident on `topic`; None if there was none. Auto-detection leaves the topic
        alone for `quiet_s`, the spike's own window."""
        raw = cast(str | None, await self.redis.hget(self.key, topic))  # type: ignore[misc]
        if raw is None or not await self.redis.hdel(self.key, topic):  # type: ignore[misc]
            return None  # none, or another admin cleared it meanwhile
        await self.redis.set(self.quiet(topic), by, ex=max(1, quiet_s))
        incident = Incident.parse(topic, raw, datetime.now(UTC))
        await self._audit(by, "incident_cleared", incident, before=incident.stored())
        return incident

    async def count(self, found: Mapping[str, int], now: datetime, rule: IncidentPolicy) -> dict[str, int]:
        """Add this batch's negative messages per intent to this minute's counters; the window's totals."""
        window, baseline = minutes(now, rule)
        ttl = (len(window) + len(baseline) + 1) * 60
        async with self.redis.pipeline(transaction=False) as pipe:
            for intent, n in found.items():
                pipe.incrby(self.counter(intent, window[-1]), n)
                pipe.expire(self.counter(intent, window[-1]), ttl)
            for intent in found:
                pipe.mget([self.counter(intent, minute) for minute in window])
            results = await pipe.execute()
        counts = results[2 * len(found) :]
        return {intent: sum(int(v or 0) for v in values) for intent, values in zip(found, counts, strict=True)}

    async def candidates(
        self, topics: Sequence[str], now: datetime, rule: IncidentPolicy
    ) -> list[tuple[str, int, bool]]:
        """Per topic: its baseline's negative messages, and whether it may be raised (not held nor quiet)."""
        _, baseline = minutes(now, rule)
        async with self.redis.pipeline(transaction=False) as pipe:
            for topic in topics:
                pipe.mget([self.counter(topic, minute) for minute in baseline])
                pipe.hexists(self.key, topic)
                pipe.exists(self.quiet(topic))
            results = await pipe.execute()
        return [
            (topic, sum(int(v or 0) for v in values), not held and not quiet)
            for topic, values, held, quiet in zip(topics, results[::3], results[1::3], results[2::3], strict=True)
        ]

    async def raise_once(self, incident: Incident) -> bool:
        """The service raises an incident unless one holds the topic already (another worker may be first)."""
        if not await self.redis.hsetnx(self.key, incident.topic, incident.stored()):  # type: ignore[misc]
            return False
        await self._audit(incident.by, "incident_raised", incident)
        return True

    async def _audit(self, by: str, action: str, incident: Incident, before: str = "") -> None:
        """An audit entry in the reviewers' log (same fields as theirs; `topic` instead of a case)."""
        after = "" if action == "incident_cleared" else incident.stored()
        entry = {
            "case_id": "",
            "reviewer": by,
            "action": action,
            "at": datetime.now(UTC).isoformat(),
            "topic": incident.topic,
            "before": before,
            "after": after,
            "reason": incident.reason,
        }
        await self.redis.xadd(self.audit, entry)  # type: ignore[arg-type]


async def watch(
    store: IncidentStore,
    classifications: Sequence[Classification],
    policy: BrandPolicy,
    metrics: Metrics,
    now: datetime,
) -> list[Incident]:
    """Count a batch's negative messages per intent and raise an incident on each topic that spikes now.
    Cheap when nothing happens: one round trip, and the baseline is read only for a window that is full."""
    rule = policy.decision.incident
    found = negatives(classifications, policy)
    if not found:
        return []
    windows = await store.count(found, now, rule)
    full = [topic for topic, n in windows.items() if n >= rule.min_messages]
    if not rule.auto or not full:
        return []
    incidents = []
    for topic, baseline, free in await store.candidates(full, now, rule):
        if not free or not spike(windows[topic], baseline, rule):
            continue
        incident = raised(topic, windows[topic], baseline, rule, now)
        if await store.raise_once(incident):
            metrics.incidents_raised.inc()
            metrics.incident_active.labels(topic).set(1)
            logger.warning(
                "incident raised",
                extra={"topic": topic, "by": incident.by, "action": incident.action, "reason": incident.reason},
            )
            incidents.append(incident)
    return incidents
