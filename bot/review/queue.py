"""Which cases a reviewer sees: the queue's filters (pure), and `find`, which applies them to the store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime

from bot.models import CaseState, Priority, ReviewCase
from bot.review.learning import intent_of
from bot.store import RedisStore

LIMIT = 200  # a reviewer works the top of the queue; the gauges count all of it
SCAN = 10_000  # open cases looked through for a filter


@dataclass(frozen=True)
class Filters:
    """Empty fields match everything; `state` picks the open queue or recently closed cases."""

    channel: str = ""
    priority: str = ""
    intent: str = ""
    state: str = CaseState.PENDING.value

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> Filters:
        """From a query string; an unknown priority or state is a ValueError naming it."""
        found = cls(**{f.name: query[f.name].strip() for f in fields(cls) if query.get(f.name, "").strip()})
        if found.priority and found.priority not in set(Priority):
            raise ValueError(f"priority must be one of {', '.join(Priority)}, not {found.priority!r}")
        if found.state not in set(CaseState):
            raise ValueError(f"state must be one of {', '.join(CaseState)}, not {found.state!r}")
        return found

    def matches(self, case: ReviewCase) -> bool:
        return (
            (not self.channel or case.message.channel == self.channel)
            and (not self.priority or case.decision.priority == self.priority)
            and (not self.intent or intent_of(case) == self.intent)
            and case.state == self.state
        )


def seconds_left(case: ReviewCase, now: datetime) -> float | None:
    """Time to the case's SLA deadline (negative once overdue); None when it has none or is closed."""
    if case.state is not CaseState.PENDING or case.decision.deadline is None:
        return None
    return (case.decision.deadline - now).total_seconds()


def choices(cases: Sequence[ReviewCase]) -> dict[str, list[str]]:
    """The values each filter can take among these cases (for the page's drop-downs)."""
    return {
        "channel": sorted({case.message.channel for case in cases}),
        "priority": [p.value for p in Priority],
        "intent": sorted({intent_of(case) for case in cases}),
        "state": [s.value for s in CaseState],
    }


async def find(store: RedisStore, filters: Filters) -> list[tuple[ReviewCase, str | None]]:
    """The matching cases with who holds each: the open queue in its order (priority, then deadline), or
    the most recently closed cases."""
    if filters.state == CaseState.PENDING:  # every desk polls this: read past the top only to filter
        narrowed = bool(filters.channel or filters.priority or filters.intent)
        cases = await store.pending_cases(limit=SCAN if narrowed else LIMIT)
    else:
        cases = await store.resolved_cases(LIMIT, newest_first=True)
    cases = [case for case in cases if filters.matches(case)][:LIMIT]
    holders = await store.claimed_by([case.case_id for case in cases]) if filters.state == CaseState.PENDING else []
    return list(zip(cases, holders or [None] * len(cases), strict=True))
