"""decide() is pure: a table of records in, the action and every reason out."""

from __future__ import annotations

import pytest

from bot.models import Action, Classification, Draft, Priority, RiskFlag
from bot.policy.decide import decide
from bot.policy.schema import BrandPolicy
from tests.conftest import message

POLICY = BrandPolicy.model_validate(
    {
        "intents": {
            "intents": {
                "delivery_info": {"description": "d", "mode": "auto", "examples": ["a", "b"]},
                "order_problem": {"description": "o", "mode": "review", "examples": ["a", "b"]},
                "spam": {"description": "s", "mode": "ignore", "examples": ["a", "b"]},
            }
        },
        "risk": {"flags": {"legal_threat": {"priority": "high", "patterns": ["lawyer"]}}},
        "sentiment": {"sentiments": {k: ["a", "b", "c", "d", "e"] for k in ("negative", "neutral", "positive")}},
        "decision": {
            "confidence_threshold": 0.6,
            "own_accounts": ["@NorthwindOutfit"],
        },
    }
)

GOOD = Draft(text="Standard delivery takes 3–5 working days.", answerable=True, drafter="offline")
LEGAL = RiskFlag(name="legal_threat", priority="high", evidence="lawyer")
CRISIS = RiskFlag(name="crisis", priority="urgent", evidence="hurt myself")


def cls(intent: str, confidence: float = 0.9, *flags: RiskFlag) -> Classification:
    return Classification(intent=intent, confidence=confidence, risk_flags=flags)


@pytest.mark.parametrize(
    ("classification", "draft", "handle", "action", "reasons", "priority"),
    [
        (cls("delivery_info"), GOOD, "jo", Action.AUTO_SEND, ("intent_auto:delivery_info",), Priority.NORMAL),
        (cls("delivery_info", 0.4), GOOD, "jo", Action.REVIEW, ("low_confidence",), Priority.NORMAL),
        (cls("delivery_info", 0.9, LEGAL), GOOD, "jo", Action.REVIEW, ("risk:legal_threat",), Priority.HIGH),
        (
            cls("delivery_info", 0.9, LEGAL, CRISIS),
            GOOD,
            "jo",
            Action.REVIEW,
            ("risk:legal_threat", "risk:crisis"),
            Priority.URGENT,
        ),
        (cls("order_problem"), GOOD, "jo", Action.REVIEW, ("intent_mode:order_problem",), Priority.NORMAL),
        (cls("not_in_policy"), GOOD, "jo", Action.REVIEW, ("intent_mode:not_in_policy",), Priority.NORMAL),
        (cls("delivery_info"), None, "jo", Action.REVIEW, ("no_grounded_draft",), Priority.NORMAL),
        (
            cls("delivery_info"),
            GOOD.model_copy(update={"answerable": False}),
            "jo",
            Action.REVIEW,
            ("no_grounded_draft",),
            Priority.NORMAL,
        ),
        (
            cls("delivery_info"),
            GOOD.model_copy(update={"text": "x" * 4097}),  # longer than the channel takes
            "jo",
            Action.REVIEW,
            ("too_long",),
            Priority.NORMAL,
        ),
        (cls("spam"), None, "jo", Action.IGNORE, ("ignore_intent:spam",), Priority.NORMAL),
        # Spam with a risk flag, or spam the model is unsure of, is not silently dropped.
        (
            cls("spam", 0.9, LEGAL),
            None,
            "jo",
            Action.REVIEW,
            ("risk:legal_threat", "intent_mode:spam", "no_grounded_draft"),
            Priority.HIGH,
        ),
        (
            cls("spam", 0.3),
            None,
            "jo",
            Action.REVIEW,
            ("intent_mode:spam", "low_confidence", "no_grounded_draft"),
            Priority.NORMAL,
        ),
        (cls("delivery_info"), GOOD, "@northwindoutfit", Action.IGNORE, ("own_account",), Priority.NORMAL),
        (
            cls("order_problem", 0.2, CRISIS),
            None,
            "jo",
            Action.REVIEW,
            ("risk:crisis", "intent_mode:order_problem", "low_confidence", "no_grounded_draft"),
            Priority.URGENT,
        ),
    ],
)
def test_decide(
    classification: Classification,
    draft: Draft | None,
    handle: str,
    action: Action,
    reasons: tuple[str, ...],
    priority: Priority,
) -> None:
    decision = decide(message("any", handle=handle), classification, draft, POLICY)
    assert (decision.action, decision.reasons, decision.priority) == (action, reasons, priority)
