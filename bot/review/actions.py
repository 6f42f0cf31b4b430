"""What a reviewer can do to a case, once, for both the JSON API and the desk's forms.

Each action checks the claim (someone else's claim wins until it expires), lets the store settle races
(exactly one resolution per case), counts the outcome, and raises ActionError with an HTTP status and a
reason the caller shows as JSON or as a notice on the page.
"""

from __future__ import annotations

import logging

from bot.cases import ReviewConflict
from bot.logs import message_fields
from bot.metrics import Metrics
from bot.models import CaseState, Reply, ReviewCase
from bot.review.learning import labels
from bot.store import RedisStore
from bot.worker import stable_id

logger = logging.getLogger(__name__)

CLAIM_S = 600  # a claim left behind (a closed laptop) frees itself after ten minutes
MAX_REASON = 500


class ActionError(Exception):
    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


async def _pending(store: RedisStore, case_id: str, reviewer: str) -> ReviewCase:
    """The case, if it exists and nobody else holds it."""
    case = await store.case(case_id)
    if case is None:
        raise ActionError(404, "not_found", f"no case {case_id}")
    [holder] = await store.claimed_by([case_id])
    if holder is not None and holder != reviewer:
        raise ActionError(409, "claimed", f"{holder} is working on this case")
    return case


async def claim(store: RedisStore, case_id: str, reviewer: str) -> str:
    """Take the case for CLAIM_S seconds (again, if it is yours); 409 if someone else has it."""
    if await store.case(case_id) is None:
        raise ActionError(404, "not_found", f"no case {case_id}")
    holder = await store.claim(case_id, reviewer, CLAIM_S)
    if holder != reviewer:
        raise ActionError(409, "claimed", f"{holder} is working on this case")
    return holder


def _reason(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_REASON:
        raise ActionError(400, "invalid_reason", f"reason must be a string of at most {MAX_REASON} characters")
    return value.strip() or None


async def approve(store: RedisStore, metrics: Metrics, case_id: str, reviewer: str, text: object) -> ReviewCase:
    """Send the draft, the reviewer's edit of it, or their own reply (`text`; None keeps the draft)."""
    case = await _pending(store, case_id, reviewer)
    if text is None:
        text = case.draft.text if case.draft else ""
    if not isinstance(text, str) or not text.strip():
        raise ActionError(400, "empty_text", 'the case has no draft: give the reply as {"text": ...}')
    reply = Reply(
        reply_id=stable_id("r_", case.message.key), message=case.message, text=text.strip(), origin="reviewer"
    )
    return await _resolve(store, metrics, case_id, reviewer, CaseState.APPROVED, reply)


async def reject(store: RedisStore, metrics: Metrics, case_id: str, reviewer: str, reason: object) -> ReviewCase:
    """Close the case; nothing is sent."""
    checked = _reason(reason)
    await _pending(store, case_id, reviewer)
    return await _resolve(store, metrics, case_id, reviewer, CaseState.REJECTED, None, checked)


async def hand_over(
    store: RedisStore, metrics: Metrics, case_id: str, reviewer: str, reason: object, seconds: int
) -> ReviewCase:
    """Close the case and keep the bot out of its conversation for `seconds`: people answer it themselves."""
    checked = _reason(reason)
    await _pending(store, case_id, reviewer)
    return await _resolve(store, metrics, case_id, reviewer, CaseState.HANDED_OVER, None, checked, seconds)


async def _resolve(
    store: RedisStore,
    metrics: Metrics,
    case_id: str,
    reviewer: str,
    state: CaseState,
    reply: Reply | None,
    reason: str | None = None,
    handover_s: int | None = None,
) -> ReviewCase:
    try:
        case = await store.resolve(case_id, reviewer, state, reply, reason, handover_s)
    except KeyError as error:
        raise ActionError(404, "not_found", f"no case {case_id}") from error
    except ReviewConflict as error:
        raise ActionError(409, "conflict", str(error)) from error
    metrics.review_actions.labels(state.value).inc()
    ids = {"case_id": case_id, "reply_id": reply.reply_id if reply else None}
    logger.info("case %s", state.value, extra=message_fields(case.message) | ids | {"reviewer": reviewer})
    deadline, resolved_at = case.decision.deadline, case.resolved_at
    late = deadline is not None and resolved_at is not None and resolved_at > deadline
    if late and await store.first_breaches([case.case_id]) == [True]:  # not counted already while it waited
        metrics.sla_breaches.labels(case.decision.priority.value).inc()
    intent, outcome, shadow = labels(case)
    metrics.review_outcomes.labels(intent, outcome).inc()
    if shadow is not None:
        metrics.shadow_agreement.labels(intent, shadow).inc()
    return case
