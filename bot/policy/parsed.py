"""Reading a regular expression as the standard library parses it: the items inside an item, and a
one-character item written back as a pattern.

The policy's check of patterns (backtracking), the risk prefilter and bench/risk.py all walk parsed patterns,
and write a character class back: in the prefilter's guard, in the check's message, which shows the author
the repeat it means, and in the benchmark's texts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from re._constants import (
    ANY,
    ASSERT,
    ASSERT_NOT,
    ATOMIC_GROUP,
    BRANCH,
    CATEGORY,
    CATEGORY_DIGIT,
    CATEGORY_NOT_DIGIT,
    CATEGORY_NOT_SPACE,
    CATEGORY_NOT_WORD,
    CATEGORY_SPACE,
    CATEGORY_WORD,
    GROUPREF_EXISTS,
    IN,
    LITERAL,
    MAX_REPEAT,
    MIN_REPEAT,
    NEGATE,
    NOT_LITERAL,
    POSSESSIVE_REPEAT,
    RANGE,
    SUBPATTERN,
)
from typing import Any

_CLASSES = {
    CATEGORY_DIGIT: r"\d",
    CATEGORY_NOT_DIGIT: r"\D",
    CATEGORY_SPACE: r"\s",
    CATEGORY_NOT_SPACE: r"\S",
    CATEGORY_WORD: r"\w",
    CATEGORY_NOT_WORD: r"\W",
}


def one_of(item: tuple[Any, Any]) -> str | None:
    """A parsed one-character item written back as a pattern (None for a kind not written back)."""
    op, av = item
    if op is ANY:
        return "."
    if op in (LITERAL, NOT_LITERAL):
        return _char(av) if op is LITERAL else f"[^{_char(av)}]"
    if op is not IN:
        return None
    parts = []
    for kind, value in av:
        if kind is NEGATE:
            parts.append("^")
        elif kind is LITERAL:
            parts.append(_char(value))
        elif kind is RANGE:
            parts.append(f"{_char(value[0])}-{_char(value[1])}")
        elif kind is CATEGORY and value in _CLASSES:
            parts.append(_CLASSES[value])
        else:
            return None
    return parts[0] if len(parts) == 1 and parts[0] in _CLASSES.values() else f"[{''.join(parts)}]"


def _char(code: int) -> str:
    """One character as a pattern writes it: escaped where it means something, and a control character by its
    name (`\\n`), so a message that shows the pattern stays on one line."""
    return {"\n": r"\n", "\t": r"\t", "\r": r"\r"}.get(chr(code)) or re.escape(chr(code))


def children(item: tuple[Any, Any]) -> list[Sequence[tuple[Any, Any]]]:
    """The sequences of parsed items inside `item`: a group's, each alternative's, a repeat's, a look-around's."""
    op, av = item
    if op is SUBPATTERN:
        return [list(av[3])]
    if op is BRANCH:
        return [list(alternative) for alternative in av[1]]
    if op in (MAX_REPEAT, MIN_REPEAT, POSSESSIVE_REPEAT):
        return [list(av[2])]
    if op is ATOMIC_GROUP:
        return [list(av)]
    if op in (ASSERT, ASSERT_NOT):
        return [list(av[1])]
    if op is GROUPREF_EXISTS:
        return [list(part) for part in av[1:] if part is not None]
    return []
