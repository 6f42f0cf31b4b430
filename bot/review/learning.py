"""What reviewers' decisions teach: how each draft fared, and whether a shadow-mode intent's bot would
have decided as the reviewer did. Pure functions of a resolved case, shared by the store's counters, the
learning page and `export-feedback`."""

from __future__ import annotations

from enum import StrEnum

from bot.models import Action, CaseState, ReviewCase


class Verdict(StrEnum):
    APPROVED = "approved"  # the bot's draft went out as it was
    EDITED = "edited"  # a reviewer changed it before sending (or wrote one where there was none)
    REJECTED = "rejected"
    HANDED_OVER = "handed_over"


def verdict(case: ReviewCase) -> Verdict | None:
    """How the bot's draft fared with the reviewer; None while the case is pending."""
    if case.state is CaseState.APPROVED:
        unchanged = case.draft is not None and case.draft.text.strip() == (case.resolution or "")
        return Verdict.APPROVED if unchanged else Verdict.EDITED
    if case.state is CaseState.REJECTED:
        return Verdict.REJECTED
    if case.state is CaseState.HANDED_OVER:
        return Verdict.HANDED_OVER
    return None


def shadow_agrees(case: ReviewCase) -> bool | None:
    """For a shadow-mode case: would the bot alone have done what the reviewer did? It would have sent its
    draft as it was (auto_send) or held it; the reviewer sending that same draft unedited is the one
    outcome where sending was right. None for cases not in shadow mode, or still pending."""
    found = verdict(case)
    if case.decision.shadow is None or found is None:
        return None
    return (case.decision.shadow is Action.AUTO_SEND) == (found is Verdict.APPROVED)


def intent_of(case: ReviewCase) -> str:
    return case.classification.intent if case.classification else "unclassified"


def labels(case: ReviewCase) -> tuple[str, str, str | None]:
    """A resolved case as counted: its intent, its verdict, and "agreed"/"differed" in shadow mode (else None)."""
    agrees = shadow_agrees(case)
    return intent_of(case), str(verdict(case)), None if agrees is None else ("agreed" if agrees else "differed")
