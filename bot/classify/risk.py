"""Risk flags from the brand's lexicon (policies/risk.yaml), each with the evidence that raised it: the words
a pattern matched, or the risky intent the message reads like, plus the checks a regular expression can't do
alone (a payment card number is only one if its Luhn digit is right)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from bot.classify.prefilter import FlagPatterns, alternation
from bot.models import Priority, RiskFlag
from bot.policy.schema import RiskLexicon
from bot.script import in_latin_script

PII = "pii"
# A sentence ends at . ! ? or … before white space (and every line is one or more): what a second reading splits.
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
SENTENCE_WORDS = 3  # shorter parts ("thanks!", "Hi Sam.") say too little alone to read
MAX_SENTENCES = 32  # a message's first 32: each costs the model a text
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


def _cards(text: str) -> Iterator[tuple[re.Match[str], str]]:
    """The runs of digits in `text` that are payment card numbers, each with its digits."""
    for match in _CARD_CANDIDATE.finditer(text):
        digits = re.sub(r"\D", "", match.group(0))
        if luhn_valid(digits):
            yield match, digits


def card_number(text: str) -> str | None:
    """Evidence of a payment card number in `text` (masked: reviewers need to know, not to see it), or None."""
    for _, digits in _cards(text):
        return f"card number ending {digits[-4:]}"
    return None


class PiiRedactor:
    """Personal data in a text replaced by `[card]` or `[pii]`, found as RiskDetector finds it: Luhn-valid card
    numbers (a digit run that fails the check stays) and the lexicon's `pii` patterns (e-mail addresses, phone
    numbers, postcodes, street addresses...). Without a lexicon, only card numbers. The logs' safety net."""

    def __init__(self, lexicon: RiskLexicon | None = None) -> None:
        spec = lexicon.flags.get(PII) if lexicon is not None else None
        patterns = spec.patterns if spec is not None else []
        # On the original text: re.IGNORECASE stands in for the detector's lowering.
        self._searches = (
            (
                re.compile(alternation(patterns, guard=False), re.IGNORECASE),
                re.compile(alternation(patterns), re.IGNORECASE),
            )
            if patterns
            else None
        )  # (plain, guarded)

    def __call__(self, text: str) -> str:
        for match, _ in reversed(list(_cards(text))):
            text = text[: match.start()] + "[card]" + text[match.end() :]
        parts, kept = [], 0
        for start, end in self._matches(text):
            parts.append(text[kept:start])
            kept = end
        return "[pii]".join([*parts, text[kept:]])

    def _matches(self, text: str) -> Iterator[tuple[int, int]]:
        """The spans of the patterns' non-empty matches, one after another. The guarded search (fast on long runs,
        see prefilter.guarded) can miss only a match that starts just where the last one ended, inside a run of
        its repeated character: that one place is tried unguarded first."""
        if self._searches is None:
            return
        plain, guarded = self._searches
        position = 0
        while position <= len(text):
            match = plain.match(text, position) or guarded.search(text, position)
            if match is None:
                return
            if match.end() > match.start():
                yield match.span()
            position = max(match.end(), match.start() + 1)


def sentences(text: str) -> list[str]:
    """The sentences of `text` worth reading alone, or none when it has fewer than two (a one-sentence message's
    own reading is its sentence's). Split line by line first: a pattern spanning line breaks would rescan runs of
    white space from each of their characters."""
    parts = [
        part for line in text.splitlines() for part in _SENTENCE_END.split(line) if len(part.split()) >= SENTENCE_WORDS
    ]
    return parts[:MAX_SENTENCES] if len(parts) >= 2 else []


def _quoted(sentence: str, limit: int = 120) -> str:
    return f'"{sentence}"' if len(sentence) <= limit else f'"{sentence[: limit - 1]}…"'


@dataclass(frozen=True)
class _Rule:
    name: str
    priority: str
    intents: tuple[int, ...]  # columns of the intent model's probabilities
    resemblance: float


class RiskDetector:
    """Every flag's patterns, and its resemblance to the intents that carry its risk; a flag fires once.

    Patterns give exact evidence but only catch the words someone foresaw; resemblance, read off the intent
    model's probabilities of the same message (no second model run), catches paraphrases ("won't need it
    after that"). In doubt a flag fires: the policy, not the detector, decides what follows.
    """

    def __init__(self, lexicon: RiskLexicon, intent_labels: Sequence[str] = ()) -> None:
        column = {label: i for i, label in enumerate(intent_labels)}
        self._rules = [
            _Rule(
                name,
                spec.priority,
                tuple(column[intent] for intent in spec.intents if intent in column),
                spec.resemblance,
            )
            for name, spec in lexicon.flags.items()
        ]
        self._patterns = FlagPatterns({name: spec.patterns for name, spec in lexicon.flags.items()})
        self._labels = tuple(intent_labels)
        self._sentence_resemblance = lexicon.sentence_resemblance
        pii = lexicon.flags.get(PII)
        self._pii_priority = pii.priority if pii is not None else Priority.NORMAL

    def detect(self, text: str, probabilities: np.ndarray | None = None) -> tuple[RiskFlag, ...]:
        """Flags for `text`; `probabilities` is the intent model's row for it (columns as `intent_labels`)."""
        flags = []
        matched = self._patterns.first_matches(text)
        # Plain floats: cheap to index. The model's reading of a script it can't read is noise: no flag from it, and
        # only the lexicon's patterns in that script raise one.
        row = probabilities.tolist() if probabilities is not None and in_latin_script(text) else None
        for rule in self._rules:
            # The words a pattern matched are the clearest evidence for a reviewer; else the model's reading.
            evidence = matched.get(rule.name) or self._resembles(rule, row, rule.resemblance)
            if evidence:
                flags.append(RiskFlag(name=rule.name, priority=rule.priority, evidence=evidence))
        card = card_number(text)
        if card is not None:
            # The card outranks whatever weaker personal data the lexicon matched, and is never shown whole.
            flags = [flag for flag in flags if flag.name != PII]
            flags.append(RiskFlag(name=PII, priority=self._pii_priority, evidence=card))
        return tuple(flags)

    @property
    def reads_sentences(self) -> bool:
        """Whether the lexicon asks for a second reading, sentence by sentence (`in_sentences`)."""
        return self._sentence_resemblance is not None

    def in_sentences(self, parts: Sequence[str], probabilities: np.ndarray) -> tuple[RiskFlag, ...]:
        """Flags that one of `parts` (a message's `sentences`) resembles alone at the lexicon's
        `sentence_resemblance`; `probabilities` holds the intent model's row for each. The sentence is quoted in
        the evidence, so a reviewer sees which line of a long message raised it."""
        if self._sentence_resemblance is None:
            return ()
        found: dict[str, RiskFlag] = {}
        for part, row in zip(parts, probabilities.tolist(), strict=True):
            if not in_latin_script(part):
                continue
            for rule in self._rules:
                reading = None if rule.name in found else self._resembles(rule, row, self._sentence_resemblance)
                if reading:
                    found[rule.name] = RiskFlag(
                        name=rule.name, priority=rule.priority, evidence=f"{reading} in {_quoted(part)}"
                    )
        return tuple(found.values())

    def _resembles(self, rule: _Rule, row: list[float] | None, threshold: float) -> str | None:
        if row is None or not rule.intents:
            return None
        if sum(row[i] for i in rule.intents) < threshold:
            return None
        top = max(rule.intents, key=row.__getitem__)
        return f"reads like {self._labels[top]} (p={row[top]:.2f})"
