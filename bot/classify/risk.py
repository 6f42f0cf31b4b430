"""Risk flags from the brand's lexicon (policies/risk.yaml), each with the words that triggered it, plus the
checks a regular expression can't do alone (a payment card number is only one if its Luhn digit is right)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.models import Priority, RiskFlag
from bot.policy.schema import RiskLexicon

PII = "pii"
# 13 to 19 digits, optionally grouped by single spaces or dashes, not part of a longer number.
_CARD_CANDIDATE = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def card_number(text: str) -> str | None:
    """Evidence of a payment card number in `text` (masked: reviewers need to know, not to see it), or None."""
    for match in _CARD_CANDIDATE.finditer(text):
        digits = re.sub(r"\D", "", match.group(0))
        if luhn_valid(digits):
            return f"card number ending {digits[-4:]}"
    return None


@dataclass(frozen=True)
class _Rule:
    name: str
    priority: str
    pattern: re.Pattern[str]


class RiskDetector:
    """Runs every flag's patterns; a flag fires once, with its first match as evidence."""

    def __init__(self, lexicon: RiskLexicon) -> None:
        self._rules = [
            _Rule(name, spec.priority, re.compile("|".join(f"(?:{p})" for p in spec.patterns), re.IGNORECASE))
            for name, spec in lexicon.flags.items()
        ]
        pii = lexicon.flags.get(PII)
        self._pii_priority = pii.priority if pii is not None else Priority.NORMAL

    def detect(self, text: str) -> tuple[RiskFlag, ...]:
        flags = []
        for rule in self._rules:
            match = rule.pattern.search(text)
            if match:
                flags.append(RiskFlag(name=rule.name, priority=rule.priority, evidence=match.group(0)[:80]))
        card = card_number(text)
        if card is not None:
            # The card outranks whatever weaker personal data the lexicon matched, and is never shown whole.
            flags = [flag for flag in flags if flag.name != PII]
            flags.append(RiskFlag(name=PII, priority=self._pii_priority, evidence=card))
        return tuple(flags)
