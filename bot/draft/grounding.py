"""A strict, simple grounding check: every number a draft states must appear in what it relied on."""

from __future__ import annotations

import re
from collections.abc import Iterable

_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")


def numbers(text: str) -> set[str]:
    """Numbers, prices, times and durations as written ("4.95", "9:00", "3" and "5" of "3–5")."""
    return set(_NUMBER.findall(text))


def ungrounded_numbers(text: str, sources: Iterable[str]) -> list[str]:
    """The numbers of `text` that no source contains, sorted; empty when the text is grounded."""
    known: set[str] = set()
    for source in sources:
        known |= numbers(source)
    return sorted(numbers(text) - known)
