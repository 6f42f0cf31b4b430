"""The shape of policies/*.yaml, validated strictly so a typo fails at start instead of misrouting."""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.channels.base import MAX_CHARS, reply_length
from bot.models import Priority
from bot.policy.backtracking import problem


def valid_pattern(pattern: str) -> str:
    """A pattern that compiles and can't be made to backtrack without end (see backtracking)."""
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {error}") from error
    slow = problem(pattern)
    if slow:
        raise ValueError(f"pattern {pattern!r} could stall the service on one crafted message: {slow}")
    return pattern


Pattern = Annotated[str, AfterValidator(valid_pattern)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Mode(StrEnum):
    AUTO = "auto"
    REVIEW = "review"
    SHADOW = (
        "shadow"  # decided and drafted as if auto, but a person always reviews; the case says what the bot would do
    )
    IGNORE = "ignore"


class IntentSpec(Strict):
    description: str = Field(min_length=1)
    mode: Mode = Field(
        description="auto: may be sent without a human; review: always a human; shadow: a human, recording what "
        "the bot would have done; ignore: no answer."
    )
    examples: list[str] = Field(min_length=2, description="Utterances the classifier trains on.")


class IntentCatalog(Strict):
    intents: dict[str, IntentSpec] = Field(min_length=2)
    unknown_threshold: float = Field(
        0.0, ge=0, le=1, description="Below this confidence the intent is `unknown`; 0 turns it off."
    )

    @field_validator("intents")
    @classmethod
    def _names(cls, value: dict[str, IntentSpec]) -> dict[str, IntentSpec]:
        bad = [name for name in value if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or name == "unknown"]
        if bad:
            raise ValueError(f"intent names must be lower_snake_case and not 'unknown': {bad}")
        return value


class RiskFlagSpec(Strict):
    priority: Priority
    description: str = ""
    patterns: list[Pattern] = Field(default_factory=list, description="Regular expressions; any match raises the flag.")
    intents: list[str] = Field(
        default_factory=list,
        description="Intents whose messages carry this risk: the flag also fires when the intent model gives them "
        "together at least `resemblance` probability, which catches what no pattern foresaw.",
    )
    resemblance: float = Field(0.25, gt=0, le=1, description="Probability of `intents` that raises the flag.")

    @model_validator(mode="after")
    def _detects_something(self) -> RiskFlagSpec:
        if not self.patterns and not self.intents:
            raise ValueError("a flag needs patterns, intents, or both")
        return self


class RiskLexicon(Strict):
    flags: dict[str, RiskFlagSpec]
    sentence_resemblance: float | None = Field(
        None,
        gt=0,
        le=1,
        description="A message of several sentences that the intent model reads as an intent the bot answers alone, "
        "with no flag, has each sentence read again: a flag with `intents` fires when one sentence alone gives them "
        "this much probability. One risky sentence among ordinary ones is diluted in the whole message's vector. "
        "Unset: no second reading.",
    )


_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$")
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class ReviewHours(Strict):
    """When reviewers work; outside these hours a message for review gets a holding reply at once."""

    timezone: str = Field(description="IANA time zone of the hours, e.g. Europe/London.")
    weekly: dict[Day, str] = Field(
        min_length=1, description='Opening hours per weekday, "08:00-20:00"; a missing day is closed.'
    )
    holidays: list[date] = Field(default_factory=list, description="Dates the reviewers don't work.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}") from error
        return value

    @field_validator("weekly")
    @classmethod
    def _spans(cls, value: dict[str, str]) -> dict[str, str]:
        bad = {day: span for day, span in value.items() if not _CLOCK.match(span) or span[:5] >= span[6:]}
        if bad:
            raise ValueError(f'hours must read "HH:MM-HH:MM", opening before closing: {bad}')
        return value


def fits_every_channel(text: str) -> str:
    """A text that goes out as it is (an incident's holding reply) must fit the strictest platform (an X post)."""
    if not text.strip():
        raise ValueError("the holding text is empty")
    too_long = sorted(channel for channel, limit in MAX_CHARS.items() if reply_length(channel, text) > limit)
    if too_long:
        raise ValueError(f"the holding text is too long for {', '.join(too_long)} (an X post takes 280)")
    return text.strip()


class IncidentPolicy(Strict):
    """The incident brake: when many customers complain about one intent at once, send it to people.

    Each intent's negative messages are counted per minute. A spike is a window whose count reaches
    `min_messages` and is at least `factor` times the average count of a window over the `baseline_minutes`
    before it (so an intent that is always busy needs a larger rise than a quiet one)."""

    auto: bool = Field(True, description="Raise incidents on spikes; false: only admins pull the brake (API, CLI).")
    window_minutes: int = Field(
        15, ge=1, le=120, description="The sliding window, in minutes up to now, whose negative messages are counted."
    )
    baseline_minutes: int = Field(
        240, ge=1, le=1440, description="The minutes before the window that give its usual count (the baseline)."
    )
    min_messages: int = Field(8, ge=1, description="A window needs at least this many negative messages to spike.")
    factor: float = Field(
        4.0, ge=1, description="A window also needs this many times the baseline's average count per window to spike."
    )
    action: Literal["review", "holding"] = Field(
        "review",
        description="While an incident holds a topic, its messages go to review; with 'holding' the customer also "
        "gets the holding text at once (once per conversation and incident).",
    )
    holding: str = Field(
        "Thanks for getting in touch. We know about this issue and are working on it; a member of our team will "
        "reply to you here as soon as they can.",
        description="What customers get with action 'holding' when the incident sets no text of its own.",
    )

    @model_validator(mode="after")
    def _baseline_covers_a_window(self) -> IncidentPolicy:
        if self.baseline_minutes < self.window_minutes:
            raise ValueError("baseline_minutes must be at least window_minutes")
        return self

    @field_validator("holding")
    @classmethod
    def _fits(cls, value: str) -> str:
        return fits_every_channel(value)


class DecisionPolicy(Strict):
    confidence_threshold: float = Field(ge=0, le=1, description="Below it, a message goes to a human.")
    intent_confidence: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=dict,
        description="Per intent, the confidence its messages need instead of `confidence_threshold`: for an intent "
        "whose answer reads badly when the guess is wrong (a cheerful greeting to a sarcastic public post).",
    )
    own_accounts: list[str] = Field(default_factory=list, description="The brand's handles: their posts are ignored.")
    bot_handles: list[Pattern] = Field(
        default_factory=list, description="Regular expressions of handles that are bots: never answered."
    )
    spam_signs: list[Pattern] = Field(
        default_factory=list,
        description="Regular expressions of spam's bait ('check my profile', 'hello dear, I am ...'), matched without "
        "case: a message showing one is never answered alone, however sure the model is of its intent.",
    )
    reach_followers: int = Field(
        100_000, gt=0, description="Authors this large are answered alone only when the bot is very sure."
    )
    reach_confidence: float = Field(0.9, ge=0, le=1, description="The intent confidence a large author needs.")
    ignore_confidence: float = Field(
        0.8, ge=0, le=1, description="An `ignore` intent (spam) is dropped only when the model is this sure."
    )
    unread_script: Priority | None = Field(
        None,
        description="A message mostly in a script the model can't read (not Latin) goes to a person at this "
        "priority at least: its words may be a danger no pattern names; null: off.",
    )
    unread_language: Priority | None = Field(
        None,
        description="A message in Latin letters but in another language than English (which the model reads only "
        "by the odd shared word) goes to a person at this priority at least; null: answered like any other.",
    )
    public_negative: float | None = Field(
        0.7, ge=0, le=1, description="A public post at least this likely negative goes to a person; null: off."
    )
    human_hold_hours: float = Field(
        24, ge=0, description="After a reviewer replies in a conversation, the bot stays out of it this long."
    )
    repeat_contact_hours: float = Field(
        72, ge=0, description="The same customer writing again on the same intent within this time: a person."
    )
    max_auto_replies_per_hour: int = Field(3, gt=0, description="Loop protection, per conversation.")
    allowed_link_domains: list[str] = Field(
        default_factory=list, description="A draft may link only to these domains (and their subdomains)."
    )
    forbidden_promises: list[Pattern] = Field(
        default_factory=list, description="Regular expressions of promises a draft may not make alone."
    )
    follow_up_promises: list[Pattern] = Field(
        default_factory=list,
        description="Regular expressions of a promise to get back to the customer: a person must own it.",
    )
    sla_minutes: dict[Priority, int] = Field(description="Review deadline per priority, in reviewer working time.")
    review_hours: ReviewHours
    review_minutes_per_case: float = Field(
        5, ge=0, description="A reviewer's time per case: with the queue, when a holding reply says a person answers."
    )
    no_holding_reply: list[str] = Field(
        default_factory=list, description="Risk flags whose messages get no holding reply (threats, abuse)."
    )
    attachments_only: Literal["review", "reply"] = Field(
        "review",
        description="A picture, voice note or file without words: a person looks at it (review), and with "
        "'reply' the customer is also thanked at once and asked to say what it is about (holding.yaml attachment).",
    )
    coalesce_seconds: float = Field(
        3.0, ge=0, description="Messages of one customer in one conversation this close together: answered once."
    )
    incident: IncidentPolicy = Field(
        default_factory=IncidentPolicy,
        description="The incident brake: a spike of one intent's negative messages sends that intent to people.",
    )

    @field_validator("own_accounts")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [handle.lstrip("@").lower() for handle in value]

    @field_validator("sla_minutes")
    @classmethod
    def _every_priority(cls, value: dict[Priority, int]) -> dict[Priority, int]:
        missing = sorted(p.value for p in Priority if p not in value)
        if missing:
            raise ValueError(f"needs a deadline for every priority; missing {missing}")
        return value


Sentiment = Literal["negative", "neutral", "positive"]
SENTIMENTS: tuple[str, ...] = get_args(Sentiment)


class SentimentExamples(Strict):
    sentiments: dict[Sentiment, list[str]] = Field(
        description="Example messages per sentiment; the sentiment model trains on them."
    )

    @field_validator("sentiments")
    @classmethod
    def _all_three(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        thin = [name for name in SENTIMENTS if len(value.get(name, [])) < 5]
        if thin:
            raise ValueError(f"each sentiment needs at least 5 examples: {thin}")
        return value


class BrandPolicy(Strict):
    """Everything in policies/, checked together."""

    intents: IntentCatalog
    risk: RiskLexicon
    decision: DecisionPolicy
    sentiment: SentimentExamples
