"""The shape of policies/*.yaml, validated strictly so a typo fails at start instead of misrouting."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.models import Priority


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Mode(StrEnum):
    AUTO = "auto"
    REVIEW = "review"
    IGNORE = "ignore"


class IntentSpec(Strict):
    description: str = Field(min_length=1)
    mode: Mode = Field(description="auto: may be sent without a human; review: always a human; ignore: no answer.")
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
    patterns: list[str] = Field(default_factory=list, description="Regular expressions; any match raises the flag.")
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

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {error}") from error
        return value


class RiskLexicon(Strict):
    flags: dict[str, RiskFlagSpec]


class DecisionPolicy(Strict):
    confidence_threshold: float = Field(ge=0, le=1, description="Below it, a message goes to a human.")
    own_accounts: list[str] = Field(default_factory=list, description="The brand's handles: their posts are ignored.")

    @field_validator("own_accounts")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [handle.lstrip("@").lower() for handle in value]


class SentimentExamples(Strict):
    sentiments: dict[Literal["negative", "neutral", "positive"], list[str]] = Field(
        description="Example messages per sentiment; the sentiment model trains on them."
    )

    @field_validator("sentiments")
    @classmethod
    def _all_three(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        thin = [name for name in ("negative", "neutral", "positive") if len(value.get(name, [])) < 5]
        if thin:
            raise ValueError(f"each sentiment needs at least 5 examples: {thin}")
        return value


class BrandPolicy(Strict):
    """Everything in policies/, checked together."""

    intents: IntentCatalog
    risk: RiskLexicon
    decision: DecisionPolicy
    sentiment: SentimentExamples
