"""The one decision that matters: what goes out without a human. Pure: records in, Decision out.

Every rule that fires is listed in the reasons, not only the one that set the action, so a reviewer
(and a replay) sees the whole picture. The action is the most cautious one any rule asks for.
"""

from __future__ import annotations

from bot.channels.base import MAX_CHARS, reply_length
from bot.models import Action, Classification, Decision, Draft, InboundMessage, Priority
from bot.policy.schema import BrandPolicy, Mode

_RANK = {Priority.URGENT: 0, Priority.HIGH: 1, Priority.NORMAL: 2}


def ignore_reasons(message: InboundMessage, cls: Classification, policy: BrandPolicy) -> list[str]:
    """Why a message needs no answer at all (the brand's own posts, spam); empty if it does."""
    reasons = []
    if message.author.handle.lstrip("@").lower() in policy.decision.own_accounts:
        reasons.append("own_account")
    spec = policy.intents.intents.get(cls.intent)
    confident = cls.confidence >= policy.decision.confidence_threshold
    if spec is not None and spec.mode is Mode.IGNORE and confident and not cls.risk_flags:
        reasons.append(f"ignore_intent:{cls.intent}")
    return reasons


def review_reasons(message: InboundMessage, cls: Classification, draft: Draft | None, policy: BrandPolicy) -> list[str]:
    """Why a human must see this message before anything is sent; empty if nothing stops it."""
    reasons = [f"risk:{flag.name}" for flag in cls.risk_flags]
    spec = policy.intents.intents.get(cls.intent)
    if spec is None or spec.mode is not Mode.AUTO:
        reasons.append(f"intent_mode:{cls.intent}")
    if cls.confidence < policy.decision.confidence_threshold:
        reasons.append("low_confidence")
    if draft is None or not draft.answerable or not draft.text.strip():
        reasons.append("no_grounded_draft")
    else:
        if reply_length(message.channel, draft.text) > MAX_CHARS.get(message.channel, min(MAX_CHARS.values())):
            reasons.append("too_long")  # the drafter fits replies to the channel: this is a safety net
    return reasons


def decide(message: InboundMessage, cls: Classification, draft: Draft | None, policy: BrandPolicy) -> Decision:
    """auto_send only when no rule objects; ignore only the brand's own posts and confident spam."""
    ignored = ignore_reasons(message, cls, policy)
    if ignored:
        return Decision(action=Action.IGNORE, reasons=tuple(ignored))
    reasons = review_reasons(message, cls, draft, policy)
    if reasons:
        priorities = [Priority(flag.priority) for flag in cls.risk_flags] or [Priority.NORMAL]
        return Decision(action=Action.REVIEW, reasons=tuple(reasons), priority=min(priorities, key=_RANK.__getitem__))
    return Decision(action=Action.AUTO_SEND, reasons=(f"intent_auto:{cls.intent}",))
