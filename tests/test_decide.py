"""decide() is pure: a table of records and a time in, the action and every reason out. And the working-time
arithmetic behind review deadlines and holding replies."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.errors import ConfigError
from bot.models import Action, Classification, Context, Draft, Priority, RiskFlag, Turn
from bot.policy.decide import decide, echoes_brand
from bot.policy.hours import after_working_time, is_working
from bot.policy.load import load_policy
from bot.policy.schema import BrandPolicy
from tests.conftest import ROOT, message

# Wednesday 25 November 2026, 10:00 in London (UTC in winter): the reviewers are at work.
WORKING = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
# Saturday 28 November 2026, 22:00: they are off until Monday 8:00.
OFF = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)


def policy(**decision: Any) -> BrandPolicy:
    return BrandPolicy.model_validate(
        {
            "intents": {
                "intents": {
                    "delivery_info": {"description": "d", "mode": "auto", "examples": ["a", "b"]},
                    "order_problem": {"description": "o", "mode": "review", "examples": ["a", "b"]},
                    "sizing": {"description": "s", "mode": "shadow", "examples": ["a", "b"]},
                    "spam": {"description": "s", "mode": "ignore", "examples": ["a", "b"]},
                }
            },
            "risk": {"flags": {"legal_threat": {"priority": "high", "patterns": ["lawyer"]}}},
            "sentiment": {"sentiments": {k: ["a", "b", "c", "d", "e"] for k in ("negative", "neutral", "positive")}},
            "decision": {
                "confidence_threshold": 0.6,
                "own_accounts": ["@NorthwindOutfit"],
                "bot_handles": ["(?i)bot$"],
                "reach_followers": 100_000,
                "reach_confidence": 0.9,
                "allowed_link_domains": ["northwind.example"],
                "forbidden_promises": [r"\bwe(')?ll refund\b"],
                "follow_up_promises": [r"\bwe(')?ll get back to you\b"],
                "sla_minutes": {"urgent": 15, "high": 60, "normal": 240},
                "review_hours": {
                    "timezone": "Europe/London",
                    "weekly": {d: "08:00-20:00" for d in ("mon", "tue", "wed", "thu", "fri")} | {"sat": "09:00-17:00"},
                    "holidays": ["2026-12-25"],
                },
            }
            | decision,
        }
    )


POLICY = policy()
GOOD = Draft(text="Standard delivery takes 3–5 working days. – Team", answerable=True, drafter="offline")
LEGAL = RiskFlag(name="legal_threat", priority="high", evidence="lawyer")
CRISIS = RiskFlag(name="crisis", priority="urgent", evidence="hurt myself")


def cls(intent: str, confidence: float = 0.9, *flags: RiskFlag, sentiment: str = "neutral") -> Classification:
    return Classification(
        intent=intent, confidence=confidence, sentiment=sentiment, sentiment_score=0.9, risk_flags=flags
    )


def said(text: str, **fields: Any) -> Draft:
    return GOOD.model_copy(update={"text": text, **fields})


def turns(*items: tuple[str, str | None, str | None, timedelta]) -> Context:
    """(role, intent, origin, how long before WORKING) per turn."""
    return Context(turns=tuple(Turn(role=r, text="t", at=WORKING - ago, intent=i, origin=o) for r, i, o, ago in items))


@pytest.mark.parametrize(
    ("classification", "draft", "msg", "context", "action", "reasons", "priority"),
    [
        (cls("delivery_info"), GOOD, {}, None, Action.AUTO_SEND, ("intent_auto:delivery_info",), Priority.NORMAL),
        (cls("delivery_info", 0.4), GOOD, {}, None, Action.REVIEW, ("low_confidence",), Priority.NORMAL),
        (cls("delivery_info", 0.9, LEGAL), GOOD, {}, None, Action.REVIEW, ("risk:legal_threat",), Priority.HIGH),
        (
            cls("delivery_info", 0.9, LEGAL, CRISIS),
            GOOD,
            {},
            None,
            Action.REVIEW,
            ("risk:legal_threat", "risk:crisis"),
            Priority.URGENT,
        ),
        (cls("order_problem"), GOOD, {}, None, Action.REVIEW, ("intent_mode:order_problem",), Priority.NORMAL),
        (cls("not_in_policy"), GOOD, {}, None, Action.REVIEW, ("intent_mode:not_in_policy",), Priority.NORMAL),
        (cls("delivery_info"), None, {}, None, Action.REVIEW, ("no_grounded_draft",), Priority.NORMAL),
        (
            cls("delivery_info"),
            said("", answerable=True),
            {},
            None,
            Action.REVIEW,
            ("no_grounded_draft",),
            Priority.NORMAL,
        ),
        (
            cls("delivery_info"),
            GOOD.model_copy(update={"answerable": False}),
            {},
            None,
            Action.REVIEW,
            ("no_grounded_draft",),
            Priority.NORMAL,
        ),
        # Draft rules: length, links, promises, and what fitting the draft found.
        (cls("delivery_info"), said("x" * 4097), {}, None, Action.REVIEW, ("draft:too_long",), Priority.NORMAL),
        (
            cls("delivery_info"),
            said("é" * 600),
            {"channel": "instagram_dm"},
            None,
            Action.REVIEW,
            ("draft:too_long",),
            Priority.NORMAL,
        ),
        (
            cls("delivery_info"),
            said("See https://northwind.example/track, @jo.walks"),
            {},
            None,
            Action.AUTO_SEND,
            ("intent_auto:delivery_info",),
            Priority.NORMAL,
        ),
        (cls("delivery_info"), said("See http://bit.ly/x3"), {}, None, Action.REVIEW, ("draft:link",), Priority.NORMAL),
        (
            cls("delivery_info"),
            said("Sorry! We'll refund you."),
            {},
            None,
            Action.REVIEW,
            ("draft:promise",),
            Priority.NORMAL,
        ),
        (
            cls("delivery_info"),
            said("We'll get back to you."),
            {},
            None,
            Action.REVIEW,
            ("draft:follow_up",),
            Priority.NORMAL,
        ),
        (
            cls("delivery_info"),
            said("Delivery takes 2 days.", checks=("ungrounded_number",)),
            {},
            None,
            Action.REVIEW,
            ("draft:ungrounded_number",),
            Priority.NORMAL,
        ),
        # Input rules: reach, public anger, the conversation so far.
        (
            cls("delivery_info", 0.95),
            GOOD,
            {"followers": 500_000},
            None,
            Action.AUTO_SEND,
            ("intent_auto:delivery_info",),
            Priority.NORMAL,
        ),
        (cls("delivery_info", 0.8), GOOD, {"followers": 500_000}, None, Action.REVIEW, ("reach",), Priority.HIGH),
        (
            cls("order_problem", 0.95),
            None,
            {"followers": 500_000},
            None,
            Action.REVIEW,
            ("intent_mode:order_problem", "reach", "no_grounded_draft"),
            Priority.HIGH,
        ),
        (
            cls("delivery_info", sentiment="negative"),
            GOOD,
            {"public": True},
            None,
            Action.REVIEW,
            ("public_negative",),
            Priority.NORMAL,
        ),
        (
            cls("delivery_info", sentiment="negative"),
            GOOD,
            {"public": False},
            None,
            Action.AUTO_SEND,
            ("intent_auto:delivery_info",),
            Priority.NORMAL,
        ),
        (
            cls("delivery_info"),
            GOOD,
            {},
            turns(("brand", None, "reviewer", timedelta(hours=3))),
            Action.REVIEW,
            ("human_owned",),
            Priority.NORMAL,
        ),
        (
            cls("delivery_info"),
            GOOD,
            {},
            turns(("brand", None, "reviewer", timedelta(hours=30))),  # the hold has passed
            Action.AUTO_SEND,
            ("intent_auto:delivery_info",),
            Priority.NORMAL,
        ),
        (
            cls("delivery_info"),
            GOOD,
            {},
            turns(("customer", "delivery_info", None, timedelta(hours=5)), ("brand", None, "bot", timedelta(hours=5))),
            Action.REVIEW,
            ("repeat_contact",),
            Priority.NORMAL,
        ),
        (
            cls("delivery_info"),
            GOOD,
            {},
            turns(*[("brand", None, "bot", timedelta(minutes=m)) for m in (5, 15, 25)]),
            Action.REVIEW,
            ("loop_limit",),
            Priority.NORMAL,
        ),
        # Ignored: the brand itself, bots, confident calm spam. Spam with a risk flag is not dropped.
        (
            cls("delivery_info"),
            GOOD,
            {"handle": "@northwindoutfit"},
            None,
            Action.IGNORE,
            ("own_account",),
            Priority.NORMAL,
        ),
        (cls("delivery_info"), GOOD, {"handle": "deals_bot"}, None, Action.IGNORE, ("bot_author",), Priority.NORMAL),
        # A customer passing on the brand's own post: answering it would be the bot answering itself.
        (
            cls("delivery_info"),
            GOOD,
            {"text": "RT @NorthwindOutfit: Free delivery over £50 this week"},
            None,
            Action.IGNORE,
            ("brand_echo",),
            Priority.NORMAL,
        ),
        # Read as negative, the words added to it may be a complaint.
        (
            cls("delivery_info", sentiment="negative"),
            GOOD,
            {"text": "RT @NorthwindOutfit: Free delivery over £50 this week. never came, rubbish", "public": True},
            None,
            Action.REVIEW,
            ("public_negative", "echo"),
            Priority.NORMAL,
        ),
        # Not ignored, an echo is never answered alone either, however calm its reading: the bot would be
        # answering the brand's own post.
        (
            cls("delivery_info", sentiment="negative"),
            GOOD,
            {"text": "Free delivery over £50, because mud shouldn't cost extra 🔁 repost from @NorthwindOutfit"},
            None,
            Action.REVIEW,
            ("echo",),
            Priority.NORMAL,
        ),
        # With a risk flag a person sees it: nobody sees what is ignored.
        (
            cls("delivery_info", 0.9, LEGAL),
            GOOD,
            {"text": "RT @NorthwindOutfit: Free delivery over £50. lawyers may disagree"},
            None,
            Action.REVIEW,
            ("risk:legal_threat", "echo"),
            Priority.HIGH,
        ),
        (cls("spam"), None, {}, None, Action.IGNORE, ("ignore_intent:spam",), Priority.NORMAL),
        # Spam the model is less sure of than `ignore_confidence` (0.8) may be a complaint: a person looks.
        (cls("spam", 0.7), None, {}, None, Action.REVIEW, ("intent_mode:spam", "no_grounded_draft"), Priority.NORMAL),
        (
            cls("spam", 0.9, LEGAL),
            None,
            {},
            None,
            Action.REVIEW,
            ("risk:legal_threat", "intent_mode:spam", "no_grounded_draft"),
            Priority.HIGH,
        ),
        (
            cls("order_problem", 0.2, CRISIS),
            None,
            {},
            None,
            Action.REVIEW,
            ("risk:crisis", "intent_mode:order_problem", "low_confidence", "no_grounded_draft"),
            Priority.URGENT,
        ),
    ],
)
def test_decide(
    classification: Classification,
    draft: Draft | None,
    msg: dict[str, Any],
    context: Context | None,
    action: Action,
    reasons: tuple[str, ...],
    priority: Priority,
) -> None:
    decision = decide(message(**{"text": "any"} | msg), classification, draft, context or Context(), POLICY, WORKING)
    assert (decision.action, decision.reasons, decision.priority) == (action, reasons, priority)
    assert (decision.deadline is not None) == (action is Action.REVIEW) and not decision.holding


@pytest.mark.parametrize(
    ("text", "echo"),
    [
        ("RT @NorthwindOutfit: Our Galway store reopens Saturday. Come and say hello.", True),
        ("rt @northwindoutfit: where are you heading this weekend?", False),  # a question: maybe theirs
        ("so true! RT @NorthwindOutfit: no bad weather, just the wrong jacket", True),
        ("Repost from @NorthwindOutfitters: 'Every jacket can be repaired for life.' 👏", True),
        ("Reposting because @northwindoutfitters said it best: new season, same mud", True),
        ("Lifetime repairs on every jacket. Book at northwind.example/repair via @NorthwindOutfit", True),
        ('"Get outside, whatever the weather." - @NorthwindOutfit', True),
        ('Sharing: "Lifetime repairs on every jacket." – NorthwindOutfitters', True),  # signed with the name
        ("NorthwindOutfitters: Stores open Sunday 11-5 for the sale weekend.", True),  # headed by it
        ("@NorthwindOutfit: my order never came", False),
        ("Repost from @NorthwindOutfit: lifetime repairs. does that cover my 10 year old shell?", False),
        ("@NorthwindOutfit what time does the Galway store open?", False),
        ("RT @someone_else: Northwind's sale is on", False),
        ("via @NorthwindOutfitters_fan: lovely jackets", False),
        ("this 👇 QT @NorthwindOutfit: Our lifetime repair service turns 10 this year.", True),
        ("RT @NorthwindOutfit: See us at Kendal this weekend! - oh I will. Bringing my ice axe 🙂", False),
        ("RT @NorthwindOutfit: Free returns for 60 days. Not what I’ve seen", False),
    ],
)
def test_an_echo_of_the_brand_s_own_post(text: str, echo: bool) -> None:
    assert echoes_brand(text, ["northwindoutfit", "northwindoutfitters"]) is echo
    assert echoes_brand(text, []) is False


def test_an_intent_may_need_more_confidence_than_the_rest() -> None:
    wary = policy(intent_confidence={"delivery_info": 0.8})
    half_read = decide(message("?"), cls("delivery_info", 0.7), GOOD, Context(), wary, WORKING)
    assert (half_read.action, half_read.reasons) == (Action.REVIEW, ("low_confidence",))
    sure = decide(message("when will it come"), cls("delivery_info", 0.85), GOOD, Context(), wary, WORKING)
    assert sure.action is Action.AUTO_SEND
    assert decide(message("?"), cls("delivery_info", 0.7), GOOD, Context(), POLICY, WORKING).action is Action.AUTO_SEND


def test_spam_bait_is_never_answered_alone_but_dropped_only_when_the_model_is_sure() -> None:
    baited = policy(spam_signs=[r"\bcheck\s+my\s+profile\b", r"\bhello\s+dear\b.{0,40}\bi\s+am\b"])
    bait = message("hey handsome 😘 CHECK MY PROFILE 💋")  # matched without case
    read_as_hello = decide(bait, cls("delivery_info", 0.93), GOOD, Context(), baited, WORKING)
    assert (read_as_hello.action, read_as_hello.reasons) == (Action.REVIEW, ("spam_sign",))
    assert decide(bait, cls("delivery_info", 0.93), GOOD, Context(), POLICY, WORKING).action is Action.AUTO_SEND
    linda = message("Hello dear, I am Linda from Texas, can we be friends? 🌹")
    assert "spam_sign" in decide(linda, cls("delivery_info"), GOOD, Context(), baited, WORKING).reasons
    sure = decide(bait, cls("spam", 0.85), None, Context(), baited, WORKING)
    assert (sure.action, sure.reasons) == (Action.IGNORE, ("ignore_intent:spam",))
    half_sure = decide(bait, cls("spam", 0.7), None, Context(), baited, WORKING)
    assert half_sure.action is Action.REVIEW and "spam_sign" in half_sure.reasons
    plain = message("hello, is my profile showing my old address? check please")
    assert decide(plain, cls("delivery_info"), GOOD, Context(), baited, WORKING).action is Action.AUTO_SEND


def test_a_script_the_model_can_t_read_goes_to_a_person_at_the_policy_s_priority() -> None:
    urdu = message("السلام علیکم، کیا آپ کل کھلے ہیں")
    read_anyway = decide(urdu, cls("delivery_info"), GOOD, Context(), POLICY, WORKING)  # off by default
    assert read_anyway.action is Action.AUTO_SEND
    policy_on = policy(unread_script="high")
    held = decide(urdu, cls("delivery_info"), GOOD, Context(), policy_on, WORKING)
    assert (held.action, held.reasons, held.priority) == (Action.REVIEW, ("unread_script",), Priority.HIGH)
    urgent = decide(urdu, cls("order_problem", 0.2, CRISIS), None, Context(), policy_on, WORKING)
    assert urgent.priority is Priority.URGENT and "unread_script" in urgent.reasons  # a flag's priority stands
    polish = message("@NorthwindOutfit Dzień dobry, czy jesteście otwarci w niedzielę?")
    assert decide(polish, cls("delivery_info"), GOOD, Context(), policy_on, WORKING).action is Action.AUTO_SEND


def test_another_language_in_latin_letters_is_never_answered_alone() -> None:
    polish = message("Dzień dobry, czy mogę zapłacić PayPalem na stronie?")
    read_as = cls("delivery_info").model_copy(update={"language": "pl"})
    assert decide(polish, read_as, GOOD, Context(), POLICY, WORKING).action is Action.AUTO_SEND  # off by default
    policy_on = policy(unread_language="normal", unread_script="high")
    held = decide(polish, read_as, GOOD, Context(), policy_on, WORKING)
    assert (held.action, held.reasons, held.priority) == (Action.REVIEW, ("unread_language",), Priority.NORMAL)
    english = decide(message("can I pay with PayPal?"), cls("delivery_info"), GOOD, Context(), policy_on, WORKING)
    assert english.action is Action.AUTO_SEND
    # Another script is the other rule's: one reason, at that rule's priority.
    urdu = decide(message("کیا آپ کل کھلے ہیں"), read_as, GOOD, Context(), policy_on, WORKING)
    assert (urdu.reasons, urdu.priority) == (("unread_script",), Priority.HIGH)


def test_shadow_mode_reviews_everything_and_records_what_the_bot_would_do() -> None:
    would_send = decide(message("boots?"), cls("sizing"), GOOD, Context(), POLICY, WORKING)
    assert (would_send.action, would_send.shadow, would_send.reasons) == (
        Action.REVIEW,
        Action.AUTO_SEND,
        ("shadow:sizing",),
    )
    would_hold = decide(message("boots?"), cls("sizing", 0.3), GOOD, Context(), POLICY, WORKING)
    assert would_hold.shadow is Action.REVIEW and would_hold.reasons == ("low_confidence", "shadow:sizing")


def test_deadlines_count_working_time_and_off_hours_get_a_holding_reply() -> None:
    normal = decide(message("my order"), cls("order_problem"), None, Context(), POLICY, WORKING)
    assert normal.deadline == WORKING + timedelta(hours=4) and not normal.holding
    # Saturday 22:00: nobody until Monday 8:00, then four working hours.
    weekend = decide(message("my order"), cls("order_problem"), None, Context(), POLICY, OFF)
    assert weekend.holding and weekend.deadline == datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    # A draft that promises a time: whoever owns the case must keep that promise, even if sooner.
    promised = said("We'll get back to you within 2 hours.")
    soon = decide(message("my order"), cls("order_problem"), promised, Context(), POLICY, OFF)
    assert soon.deadline == OFF + timedelta(hours=2) and "draft:follow_up" in soon.reasons
    quiet = policy(no_holding_reply=["legal_threat"])
    threat = decide(message("lawyer"), cls("order_problem", 0.9, LEGAL), None, Context(), quiet, OFF)
    assert threat.action is Action.REVIEW and not threat.holding  # no automatic words to a legal threat


def test_a_picture_without_words_goes_to_a_person_and_may_get_a_thank_you_at_once() -> None:
    photo = message("").model_copy(update={"attachments": ("image",)})
    looked_at = decide(photo, cls("delivery_info"), GOOD, Context(), POLICY, WORKING)
    assert looked_at.action is Action.REVIEW and "attachment_only" in looked_at.reasons and not looked_at.holding
    thanked = decide(photo, cls("delivery_info"), GOOD, Context(), policy(attachments_only="reply"), WORKING)
    assert thanked.action is Action.REVIEW and thanked.holding  # thanked now, at work or not
    handed = Context(handed_to="alice")
    assert not decide(photo, cls("delivery_info"), GOOD, handed, policy(attachments_only="reply"), WORKING).holding
    captioned = message("is this the right size?").model_copy(update={"attachments": ("image",)})
    assert "attachment_only" not in decide(captioned, cls("sizing"), GOOD, Context(), POLICY, WORKING).reasons


@pytest.mark.parametrize(
    ("now", "working", "next_person"),
    [
        (datetime(2026, 11, 25, 7, 59, tzinfo=UTC), False, datetime(2026, 11, 25, 8, 0, tzinfo=UTC)),
        (datetime(2026, 11, 25, 19, 59, tzinfo=UTC), True, datetime(2026, 11, 25, 19, 59, tzinfo=UTC)),
        (datetime(2026, 11, 25, 20, 0, tzinfo=UTC), False, datetime(2026, 11, 26, 8, 0, tzinfo=UTC)),
        (datetime(2026, 11, 28, 16, 0, tzinfo=UTC), True, datetime(2026, 11, 28, 16, 0, tzinfo=UTC)),  # Sat 9-17
        (datetime(2026, 12, 24, 21, 0, tzinfo=UTC), False, datetime(2026, 12, 26, 9, 0, tzinfo=UTC)),  # Christmas
        # Summer time: 8:00 in London is 7:00 UTC.
        (datetime(2026, 7, 1, 7, 30, tzinfo=UTC), True, datetime(2026, 7, 1, 7, 30, tzinfo=UTC)),
    ],
)
def test_working_time_follows_the_hours_the_zone_and_holidays(
    now: datetime, working: bool, next_person: datetime
) -> None:
    hours = POLICY.decision.review_hours
    assert is_working(hours, now) is working
    assert after_working_time(hours, now, 0) == next_person


def test_an_hour_of_work_spans_the_closing() -> None:
    hours = POLICY.decision.review_hours
    friday_late = datetime(2026, 11, 27, 19, 30, tzinfo=UTC)  # 30 minutes left on Friday, Saturday opens at 9
    assert after_working_time(hours, friday_late, 60) == datetime(2026, 11, 28, 9, 30, tzinfo=UTC)


def test_the_demo_policy_stops_what_the_demo_brand_says_needs_a_person() -> None:
    demo = load_policy(ROOT / "policies")
    for text, rule in [
        ("We'll refund you in full.", "draft:promise"),
        ("Use code SAVE20 for 20% off.", "draft:promise"),
        ("We'll match that price for you.", "draft:promise"),
        ("A member of the team will be in touch tomorrow.", "draft:follow_up"),
        ("Have a look at www.cheap-jackets.biz/deal", "draft:link"),
    ]:
        decision = decide(message("q"), cls("delivery_info", 0.99), said(text), Context(), demo, WORKING)
        assert rule in decision.reasons, text
    fine = said("Returns are free within 60 days at northwind.example/returns. – Northwind Team")
    assert decide(message("q"), cls("returns_info", 0.99), fine, Context(), demo, WORKING).action is Action.AUTO_SEND


def test_a_policy_naming_an_unknown_flag_or_intent_is_refused(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "policies", tmp_path, dirs_exist_ok=True)
    text = (tmp_path / "decision.yaml").read_text()
    (tmp_path / "decision.yaml").write_text(
        text.replace("no_holding_reply: [violence_threat", "no_holding_reply: [nope")
    )
    with pytest.raises(ConfigError, match=r"decision.yaml:\d+: no_holding_reply: nope not defined in risk.yaml"):
        load_policy(tmp_path)
    (tmp_path / "decision.yaml").write_text(text.replace("  greeting: 0.6", "  greetings: 0.6"))
    with pytest.raises(ConfigError, match=r"decision.yaml:\d+: intent_confidence: greetings not defined in intents"):
        load_policy(tmp_path)
