"""The review queue in Redis: open cases by priority and deadline, reviewers' claims, resolutions (exactly one
reviewer's action wins), the append-only audit log, and what reviews teach per intent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from bot.models import CaseState, MessageState, Priority, Reply, ReviewCase, Status
from bot.records import Keys, moved, now, tally
from bot.review.learning import labels


class ReviewConflict(Exception):
    """The case was already resolved (by another reviewer, or twice)."""


@dataclass(frozen=True)
class QueueStats:
    """The review queue per priority: waiting cases, the oldest one's age in seconds, and those past their
    deadline (`late`: their ids)."""

    depth: dict[Priority, int]
    oldest: dict[Priority, float]
    overdue: dict[Priority, int]
    late: tuple[tuple[str, Priority], ...]


def open_case(pipe: Pipeline, keys: Keys, case: ReviewCase) -> None:
    """Put a case in the queue (in the caller's transaction, with the step that raised it)."""
    rank = case.decision.priority.rank
    due = case.decision.deadline or case.created_at
    pipe.set(keys.case(case.case_id), case.model_dump_json())
    pipe.zadd(keys.reviews, {case.case_id: rank * 1e11 + due.timestamp()})


class ReviewCases:
    """Reviewers' side of the store (RedisStore extends it with the streams, as redis-py composes its client
    from command groups)."""

    def __init__(self, redis: Redis, keys: Keys, ttl_s: int) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_s = ttl_s

    async def release(self, channel: str, conversation_id: str, reviewer: str) -> bool:
        """Give a handed-over conversation back to the bot; False if it was not handed over."""
        if not await self.redis.delete(self.keys.handover(channel, conversation_id)):
            return False
        entry = _audited("", reviewer, "released", conversation=f"{channel}:{conversation_id}")
        await self.redis.xadd(self.keys.audit, entry)  # type: ignore[arg-type]
        return True

    async def audit_log(self, limit: int) -> list[dict[str, str]]:
        """The newest reviewer actions first (the stream is append-only: nothing here can edit it)."""
        entries = cast(list[tuple[str, dict[str, str]]], await self.redis.xrevrange(self.keys.audit, count=limit))
        return [{"id": entry_id, **fields} for entry_id, fields in entries]

    async def queue_stats(self, now: datetime) -> QueueStats:
        """The waiting cases per priority: how many, the age of the oldest, and which are past their deadline."""
        cases = await self.pending_cases(limit=10_000)
        late = tuple(
            (c.case_id, c.decision.priority)
            for c in cases
            if c.decision.deadline is not None and c.decision.deadline < now
        )
        return QueueStats(
            depth={p: sum(1 for c in cases if c.decision.priority is p) for p in Priority},
            oldest={
                p: max(((now - c.created_at).total_seconds() for c in cases if c.decision.priority is p), default=0.0)
                for p in Priority
            },
            overdue={p: sum(1 for _, priority in late if priority is p) for p in Priority},
            late=late,
        )

    async def first_breaches(self, case_ids: Sequence[str]) -> list[bool]:
        """Mark cases as having missed their deadline; True for each marked now for the first time, so every
        process may look and a breach is still counted once."""
        if not case_ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for case_id in case_ids:
                pipe.set(self.keys.breached(case_id), "1", nx=True, ex=self.ttl_s)
            return [bool(marked) for marked in await pipe.execute()]

    async def claim(self, case_id: str, reviewer: str, ttl_s: int) -> str:
        """Take a case for `ttl_s` seconds (again, if it is already yours); the holder's name either way."""
        key = self.keys.claim(case_id)
        if await self.redis.set(key, reviewer, nx=True, ex=ttl_s):
            return reviewer
        holder = cast(str | None, await self.redis.get(key))
        if holder == reviewer:
            await self.redis.expire(key, ttl_s)
        return holder or await self.claim(case_id, reviewer, ttl_s)  # it expired in between: try again

    async def claimed_by(self, case_ids: Sequence[str]) -> list[str | None]:
        if not case_ids:
            return []
        return cast(list[str | None], await self.redis.mget([self.keys.claim(c) for c in case_ids]))

    async def backlog(self) -> int:
        """Cases waiting for a reviewer."""
        return int(await self.redis.zcard(self.keys.reviews))

    async def pending_cases(self, limit: int = 100) -> list[ReviewCase]:
        """Open cases, most urgent first, then oldest first."""
        ids = cast(list[str], await self.redis.zrange(self.keys.reviews, 0, limit - 1))
        if not ids:
            return []
        raw = await self.redis.mget([self.keys.case(case_id) for case_id in ids])
        return [ReviewCase.model_validate_json(item) for item in raw if item]

    async def case(self, case_id: str) -> ReviewCase | None:
        raw = await self.redis.get(self.keys.case(case_id))
        return ReviewCase.model_validate_json(raw) if raw else None

    async def resolve(
        self,
        case_id: str,
        reviewer: str,
        state: CaseState,
        reply: Reply | None,
        reason: str | None = None,
        handover_s: int | None = None,
    ) -> ReviewCase:
        """Approve (with the reply to send), reject, or hand over a pending case; exactly one reviewer's
        action wins. Handing over also keeps the bot out of the conversation for `handover_s` seconds."""
        key = self.keys.case(case_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        raise KeyError(case_id)
                    case = ReviewCase.model_validate_json(raw)
                    if case.state is not CaseState.PENDING:
                        raise ReviewConflict(f"case {case_id} is already {case.state}")
                    resolved = case.model_copy(
                        update={
                            "state": state,
                            "resolved_by": reviewer,
                            "resolved_at": now(),
                            "resolution": reply.text if reply else reason,
                        }
                    )
                    message = case.message
                    state_key = self.keys.state(message.channel, message.id)
                    current_raw = await pipe.get(state_key)
                    current = MessageState.model_validate_json(current_raw) if current_raw else None
                    pipe.multi()
                    pipe.set(key, resolved.model_dump_json())
                    pipe.zrem(self.keys.reviews, case_id)
                    pipe.set(state_key, moved(message, current, _resolved_state(resolved, current)), ex=self.ttl_s)
                    if reply is not None:
                        pipe.xadd(self.keys.outbox, {"m": reply.model_dump_json()})
                    if state is CaseState.HANDED_OVER:
                        handover = self.keys.handover(message.channel, message.conversation_id)
                        pipe.set(handover, reviewer, ex=handover_s or self.ttl_s)
                        # The platform's own inbox (Chatwoot) hears of it through the sender, durably.
                        notice = Reply(reply_id=f"o_{case_id}", message=message, text="", origin="handover")
                        pipe.xadd(self.keys.outbox, {"m": notice.model_dump_json()})
                    self._learn(pipe, resolved)
                    tally(pipe, self.keys, "resolved")
                    entry = _audited(
                        case_id,
                        reviewer,
                        state.value,
                        before=case.draft.text if case.draft else "",
                        after=reply.text if reply else "",
                        reason=reason or "",
                    )
                    pipe.xadd(self.keys.audit, entry)  # type: ignore[arg-type]
                    await pipe.execute()
                    return resolved
                except WatchError:  # someone else changed the case between our read and write: look again
                    continue

    def _learn(self, pipe: Pipeline, case: ReviewCase) -> None:
        """Count how the draft fared, per intent (and, in shadow mode, whether the bot would have agreed)."""
        intent, outcome, shadow = labels(case)
        pipe.hincrby(self.keys.learning, f"{intent}|{outcome}", 1)
        if shadow is not None:
            pipe.hincrby(self.keys.learning, f"{intent}|shadow_{shadow}", 1)

    async def learning(self) -> dict[str, dict[str, int]]:
        """Per intent, how many reviewed drafts ended each way (see bot.review.learning)."""
        raw = cast(dict[str, str], await self.redis.hgetall(self.keys.learning))
        figures: dict[str, dict[str, int]] = {}
        for field, count in raw.items():
            intent, _, outcome = field.rpartition("|")
            figures.setdefault(intent, {})[outcome] = int(count)
        return figures

    async def resolved_cases(self, limit: int = 100_000, *, newest_first: bool = False) -> list[ReviewCase]:
        """Cases reviewers closed, in the audit log's order (oldest first unless `newest_first`)."""
        read = self.redis.xrevrange if newest_first else self.redis.xrange
        entries = cast(list[tuple[str, dict[str, str]]], await read(self.keys.audit, count=limit))
        ids = list(dict.fromkeys(fields["case_id"] for _, fields in entries if fields.get("case_id")))
        cases = []
        for start in range(0, len(ids), 500):
            raw = await self.redis.mget([self.keys.case(case_id) for case_id in ids[start : start + 500]])
            cases += [ReviewCase.model_validate_json(item) for item in raw if item]
        return [case for case in cases if case.state is not CaseState.PENDING]


def _audited(case_id: str, reviewer: str, action: str, **fields: str) -> dict[str, str]:
    """One audit entry: who did what to which case, when (the stream is append-only)."""
    return {"case_id": case_id, "reviewer": reviewer, "action": action, "at": now().isoformat(), **fields}


def _resolved_state(case: ReviewCase, current: MessageState | None) -> dict[str, object]:
    """The message's new state fields once its case is resolved."""
    status = {
        CaseState.APPROVED: Status.PROCESSING,
        CaseState.REJECTED: Status.REJECTED,
        CaseState.HANDED_OVER: Status.HANDED_OVER,
    }[case.state]
    update: dict[str, object] = {
        "status": status,
        "case_id": case.case_id,
        "reply": case.resolution if case.state is CaseState.APPROVED else None,
    }
    if current is None:  # its state expired: rebuild what the case knows
        update |= {
            "reasons": case.decision.reasons,
            "decision": case.decision.action,
            "intent": case.classification.intent if case.classification else None,
        }
    return update
