"""The one decision that matters: what goes out without a human. Pure: records and `now` in, Decision out.

Every rule that fires is listed in the reasons, not only the one that set the action, so a reviewer (and
a replay) sees the whole picture. The action is the most cautious one any rule asks for. The rules are
tables below: input rules look at the message, its classification and the conversation; draft rules look
at what the bot would say.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from bot.channels.base import max_chars, reply_length
from bot.models import Action, Classification, Context, Decision, Draft, InboundMessage, Priority
from bot.policy.hours import after_working_time, is_working
from bot.policy.incident import Incident, applicable, holding_due
from bot.policy.schema import BrandPolicy, Mode
from bot.script import ENGLISH, in_latin_script

# A URL, or a bare domain (not an @handle or an e-mail's local part).
_LINK = re.compile(r"https?://[^\s)]+|(?<![@\w.])(?:[a-z0-9-]+\.)+[a-z]{2,}\b(?:/[^\s)]*)?", re.IGNORECASE)
_WITHIN = re.compile(r"\bwithin\s+(\d+)\s+(hour|day|working day)s?\b", re.IGNORECASE)

Fired = tuple[str, Priority]

# How a customer passes on a post: a manual retweet or quote tweet, a repost or share credited to its author, a
# quote signed with the author's handle or name ("– Northwind Outfitters") or headed by it ("Northwind Outfitters:
# Stores open Sunday"). {own} is the brand's handles.
_PASSED_ON = (
    r"\b(?:RT|QT)\s+@(?:{own})\b"
    r"|\b(?:re-?post(?:ed|ing)?|regram(?:med)?|shared|sharing)\b[^@\n]{{0,30}}@(?:{own})\b"
    r"|\bvia\s+@(?:{own})\b"
    r"|[\"'”’]\s*[-–—~]\s*@?(?:{own})\b"
    r"|^\s*@?(?:{own})\s*:\s"
)
# The customer's own voice: a brand's posts speak as "we" and "you", rarely as "I".
_FIRST_PERSON = re.compile(r"\b(?:i|i'm|im|i'll|i've|i'd|me|my|mine|myself)\b", re.IGNORECASE)


@functools.cache
def _passed_on(own_accounts: tuple[str, ...]) -> re.Pattern[str] | None:
    if not own_accounts:
        return None
    return re.compile(_PASSED_ON.format(own="|".join(re.escape(h) for h in own_accounts)), re.IGNORECASE)


def echoes_brand(text: str, own_accounts: Sequence[str]) -> bool:
    """Whether the text passes on one of the brand's own posts: a reply to it would be the bot answering its
    own post, in public. Not with a question mark or a first-person word anywhere in it: words the customer
    added to the echo may ask, complain or threaten ("- oh I will. Bringing my ice axe"), and nobody sees what
    is ignored."""
    pattern = _passed_on(tuple(own_accounts))
    if pattern is None or "?" in text or _FIRST_PERSON.search(text.replace("’", "'")):
        return False
    return bool(pattern.search(text))


def ignore_reasons(message: InboundMessage, cls: Classification, policy: BrandPolicy) -> list[str]:
    """Why a message needs no answer at all (the brand's own posts and their echoes, bots, spam); empty if it
    does. A risk flag keeps an echo or spam in front of a person: nobody sees what is ignored."""
    reasons = []
    handle = message.author.handle.lstrip("@")
    if handle.lower() in policy.decision.own_accounts:
        reasons.append("own_account")
    if any(re.search(pattern, handle) for pattern in policy.decision.bot_handles):
        reasons.append("bot_author")
    # An echo read as negative may carry the customer's own complaint: a person looks.
    if not cls.risk_flags and cls.sentiment != "negative" and echoes_brand(message.text, policy.decision.own_accounts):
        reasons.append("brand_echo")
    spec = policy.intents.intents.get(cls.intent)
    # Nobody ever sees an ignored message, so dropping one takes more certainty than answering it: a complaint
    # the model half-reads as spam goes to a person instead (as `intent_mode:spam`).
    sure = cls.confidence >= policy.decision.ignore_confidence
    if spec is not None and spec.mode is Mode.IGNORE and sure and not cls.risk_flags:
        reasons.append(f"ignore_intent:{cls.intent}")
    return reasons


def attachment_only(message: InboundMessage) -> bool:
    """A picture, voice note or file without words: nothing for the model to answer, something for a person."""
    return bool(message.attachments) and not message.text.strip()


def _negative(cls: Classification) -> float:
    return (cls.sentiment_score or 0.0) if cls.sentiment == "negative" else 0.0


def _brand_turns_since(context: Context, since: datetime, origin: str) -> int:
    return sum(1 for t in context.turns if t.role == "brand" and t.origin == origin and t.at >= since)


def input_rules(
    message: InboundMessage, cls: Classification, context: Context, policy: BrandPolicy, now: datetime
) -> list[Fired]:
    """Rules on the message, its classification and the conversation so far."""
    rules = policy.decision
    spec = policy.intents.intents.get(cls.intent)
    latin = in_latin_script(message.text)
    fired: list[Fired] = [(f"risk:{flag.name}", Priority(flag.priority)) for flag in cls.risk_flags]
    checks: list[tuple[bool, str, Priority]] = [
        (spec is None or spec.mode in (Mode.REVIEW, Mode.IGNORE), f"intent_mode:{cls.intent}", Priority.NORMAL),
        (
            cls.confidence < rules.intent_confidence.get(cls.intent, rules.confidence_threshold),
            "low_confidence",
            Priority.NORMAL,
        ),
        (
            # A large author is answered alone only when the bot is very sure, and whatever goes to a person from
            # them is high priority: a complaint the model reads with confidence still speaks to an audience.
            message.author.followers >= rules.reach_followers
            and (cls.confidence < rules.reach_confidence or spec is None or spec.mode is not Mode.AUTO),
            "reach",
            Priority.HIGH,
        ),
        (
            rules.unread_script is not None and not latin,
            "unread_script",
            rules.unread_script or Priority.NORMAL,
        ),
        (
            # Another language in Latin letters: the model reads it by its shared words ("PayPal", "email"), and a
            # danger said around them may be named by no pattern.
            rules.unread_language is not None and cls.language != ENGLISH and latin,
            "unread_language",
            rules.unread_language or Priority.NORMAL,
        ),
        (
            # Bait the model half-reads as a hello or praise ("hey handsome 😘 check my profile"): a cheerful public
            # answer to it is the bot's most shareable mistake. Dropping it still takes the model's certainty.
            any(re.search(pattern, message.text, re.IGNORECASE) for pattern in rules.spam_signs),
            "spam_sign",
            Priority.NORMAL,
        ),
        (
            rules.public_negative is not None and message.public and _negative(cls) >= rules.public_negative,
            "public_negative",
            Priority.NORMAL,
        ),
        (
            # An echo that was not ignored (read as negative, or a flag fired): a person decides whether the
            # customer added a complaint, and the bot never answers the brand's own post.
            echoes_brand(message.text, rules.own_accounts),
            "echo",
            Priority.NORMAL,
        ),
        (
            _brand_turns_since(context, now - timedelta(hours=rules.human_hold_hours), "reviewer") > 0,
            "human_owned",
            Priority.NORMAL,
        ),
        (context.handed_to is not None, "handed_over", Priority.NORMAL),
        (attachment_only(message), "attachment_only", Priority.NORMAL),
        (
            any(
                t.role == "customer"
                and t.intent == cls.intent
                and t.at >= now - timedelta(hours=rules.repeat_contact_hours)
                for t in context.turns
            ),
            "repeat_contact",
            Priority.NORMAL,
        ),
        (
            _brand_turns_since(context, now - timedelta(hours=1), "bot") >= rules.max_auto_replies_per_hour,
            "loop_limit",
            Priority.NORMAL,
        ),
    ]
    return fired + [(reason, priority) for applies, reason, priority in checks if applies]


def _foreign_links(text: str, allowed: list[str]) -> list[str]:
    hosts = [urlsplit(link if "://" in link else "//" + link).hostname or "" for link in _LINK.findall(text)]
    return [h for h in hosts if not any(h == d or h.endswith("." + d) for d in allowed)]


def draft_rules(message: InboundMessage, draft: Draft | None, policy: BrandPolicy) -> list[Fired]:
    """Rules on what the bot would say."""
    if draft is None or not draft.answerable or not draft.text.strip():
        return [("no_grounded_draft", Priority.NORMAL)]
    rules = policy.decision
    checks: list[tuple[Callable[[str], bool], str]] = [
        (
            lambda t: reply_length(message.channel, t) > max_chars(message.channel),
            "too_long",
        ),
        (lambda t: bool(_foreign_links(t, rules.allowed_link_domains)), "link"),
        (lambda t: any(re.search(p, t, re.IGNORECASE) for p in rules.forbidden_promises), "promise"),
        (lambda t: any(re.search(p, t, re.IGNORECASE) for p in rules.follow_up_promises), "follow_up"),
    ]
    fired = [(f"draft:{check}", Priority.NORMAL) for check in draft.checks]
    return fired + [(f"draft:{name}", Priority.NORMAL) for applies, name in checks if applies(draft.text)]


def deadline(policy: BrandPolicy, priority: Priority, draft: Draft | None, now: datetime) -> datetime:
    """When a reviewer must have answered: the priority's SLA in working time, or sooner if the draft
    promised the customer a time (whoever owns that promise must keep it)."""
    due = after_working_time(policy.decision.review_hours, now, policy.decision.sla_minutes[priority])
    promised = _WITHIN.search(draft.text) if draft is not None else None
    if promised:
        count, unit = int(promised.group(1)), promised.group(2).lower()
        due = min(due, now + (timedelta(hours=count) if unit == "hour" else timedelta(days=count)))
    return due


def decide(
    message: InboundMessage,
    cls: Classification,
    draft: Draft | None,
    context: Context,
    policy: BrandPolicy,
    now: datetime,
    incidents: Mapping[str, Incident] | None = None,
) -> Decision:
    """auto_send only when no rule objects; ignore only the brand's own posts, bots and confident spam.
    `incidents` are the topics the incident brake holds (by topic): their messages go to review."""
    ignored = ignore_reasons(message, cls, policy)
    if ignored:
        return Decision(action=Action.IGNORE, reasons=tuple(ignored))
    fired = input_rules(message, cls, context, policy, now) + draft_rules(message, draft, policy)
    incident = applicable(incidents or {}, cls.intent)
    if incident is not None:
        fired.append((f"incident:{incident.topic}", Priority.NORMAL))
    spec = policy.intents.intents.get(cls.intent)
    shadow = None
    if spec is not None and spec.mode is Mode.SHADOW:
        shadow = Action.REVIEW if fired else Action.AUTO_SEND
        fired.append((f"shadow:{cls.intent}", Priority.NORMAL))
    if not fired:
        return Decision(action=Action.AUTO_SEND, reasons=(f"intent_auto:{cls.intent}",))
    priority = min((p for _, p in fired), key=lambda p: p.rank)
    return Decision(
        action=Action.REVIEW,
        reasons=tuple(reason for reason, _ in fired),
        priority=priority,
        deadline=deadline(policy, priority, draft, now),
        holding=(
            not is_working(policy.decision.review_hours, now)
            or (attachment_only(message) and policy.decision.attachments_only == "reply")
            or holding_due(incident, context) is not None
        )
        and context.handed_to is None
        and not any(flag.name in policy.decision.no_holding_reply for flag in cls.risk_flags),
        shadow=shadow,
    )
