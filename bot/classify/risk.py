"""Risk flags from the brand's lexicon (policies/risk.yaml), each with the words that triggered it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.models import RiskFlag
from bot.policy.schema import RiskLexicon


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

    def detect(self, text: str) -> tuple[RiskFlag, ...]:
        flags = []
        for rule in self._rules:
            match = rule.pattern.search(text)
            if match:
                flags.append(RiskFlag(name=rule.name, priority=rule.priority, evidence=match.group(0)[:80]))
        return tuple(flags)
