"""The incident brake's rules, pure like decide(): when a topic's negative messages spike, and which incident
holds a message. The counting and the incidents themselves live in Redis (bot/incident.py).

A topic is an intent, or `all` (every message: only an admin pulls that one). The spike rule compares the
negative messages of the last `window_minutes` (this minute included) with the average per window of the
`baseline_minutes` before them, so a topic that is always busy needs a larger rise than a quiet one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Literal, cast

from pydantic import AwareDatetime, Field

from bot.models import Classification, Context, Record
from bot.policy.schema import BrandPolicy, IncidentPolicy, Mode, fits_every_channel

ALL = "all"  # the topic that holds every message
AUTO = "auto"  # `by` of an incident the service raised itself
IncidentAction = Literal["review", "holding"]


class Incident(Record):
    """An incident holding a topic: since when, who raised it ("auto" or an admin's name), why, and what its
    messages get (review; or review and at once the holding text, the policy's when `holding` is None)."""

    topic: str
    since: AwareDatetime
    by: str
    reason: str
    action: IncidentAction
    holding: str | None = None
    count: int | None = Field(None, description="The window's negative messages when the service raised it.")

    def stored(self) -> str:
        """The value in the `{prefix}:incidents` hash (the topic is its field)."""
        return self.model_dump_json(exclude={"topic"})

    @classmethod
    def parse(cls, topic: str, raw: str, now: datetime) -> Incident:
        """An incident from the hash; one written by hand in another shape still holds its topic (for review:
        the brake fails closed), with its text as the reason."""
        try:
            return cls.model_validate({**json.loads(raw), "topic": topic})
        except (ValueError, TypeError):  # not JSON, not an object, or not our fields (ValidationError is a ValueError)
            return cls(topic=topic, since=now, by="unknown", reason=raw[:200], action="review")


def spike(window: int, baseline: int, rule: IncidentPolicy) -> bool:
    """Whether `window` negative messages in the last window_minutes are a spike over the `baseline` negative
    messages of the baseline_minutes before: at least min_messages, and at least factor times the baseline's
    average per window (with a quiet baseline, min_messages alone decides)."""
    usual = baseline * rule.window_minutes / rule.baseline_minutes
    return window >= rule.min_messages and window >= rule.factor * usual


def minutes(now: datetime, rule: IncidentPolicy) -> tuple[range, range]:
    """The minutes since the epoch of the window (ending with this one) and of the baseline before it."""
    current = int(now.timestamp() // 60)
    start = current - rule.window_minutes + 1
    return range(start, current + 1), range(start - rule.baseline_minutes, start)


def negatives(classifications: Iterable[Classification], policy: BrandPolicy) -> Counter[str]:
    """How many negative messages each topic had, leaving out intents nobody answers anyway (spam)."""
    ignored = {name for name, spec in policy.intents.intents.items() if spec.mode is Mode.IGNORE}
    return Counter(c.intent for c in classifications if c.sentiment == "negative" and c.intent not in ignored)


def applicable(incidents: Mapping[str, Incident], intent: str) -> Incident | None:
    """The incident that holds a message of this intent: its own topic's, else one on all messages."""
    return incidents.get(intent) or incidents.get(ALL)


def holding_due(incident: Incident | None, context: Context) -> Incident | None:
    """The incident whose holding text this conversation gets now: one with action holding, whose text the
    conversation hasn't had yet (a customer who writes three times is told once)."""
    if incident is None or incident.action != "holding":
        return None
    told = any(t.role == "brand" and t.origin == "holding" and t.at >= incident.since for t in context.turns)
    return None if told else incident


def topics(policy: BrandPolicy) -> set[str]:
    """What an admin may pull the brake on: every intent, `unknown` (matched none) and `all`."""
    return set(policy.intents.intents) | {"unknown", ALL}


def by_hand(
    topic: str, action: str, holding: str | None, reason: str | None, by: str, now: datetime, known: set[str]
) -> Incident:
    """An admin's incident, or a ValueError saying what is wrong with the request."""
    if topic not in known:
        raise ValueError(f"unknown topic {topic!r}: use 'all' or an intent of policies/intents.yaml")
    if action not in ("review", "holding"):
        raise ValueError(f"action must be review or holding, not {action!r}")
    if holding is not None and action != "holding":
        raise ValueError("a holding text goes with action holding")
    return Incident(
        topic=topic,
        since=now,
        by=by,
        reason=(reason or "").strip()[:500] or "pulled by hand",
        action=cast(IncidentAction, action),
        holding=fits_every_channel(holding) if holding is not None else None,
    )


def raised(topic: str, window: int, baseline: int, rule: IncidentPolicy, now: datetime) -> Incident:
    """The incident the service raises itself on a spike, with the figures that made it one."""
    return Incident(
        topic=topic,
        since=now,
        by=AUTO,
        reason=f"{window} negative messages in {rule.window_minutes} min; {baseline} in the "
        f"{rule.baseline_minutes} min before",
        action=rule.action,
        count=window,
    )
