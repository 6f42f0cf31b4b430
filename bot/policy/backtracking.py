"""Patterns that could stall the service on one crafted message, found when the policy is read.

Python's engine backtracks: where a pattern can match the same text in many ways, a text it almost matches
makes it try them all. `(\\w+\\s?)+!` takes half a second on 22 letters without the "!", nearly twice that for
each letter more; the risk patterns run on the event loop, so anyone who can write to the brand could stop every
conversation with one message. A brand edits these patterns, so the policy refuses them with the reason and
how to write them instead, rather than trusting every author to know.

Three shapes are refused, all found on the parsed pattern (the standard library's own reading):
- a repeat inside a repeat, where one repetition of the outer could end where the inner repeat could go on,
  or begin where it could have started: the text splits between repetitions in exponentially many ways;
- alternatives of a repeated group that match the same character (`(.|\\s)+`): each such character is read two
  ways (the parser merges most such alternatives into one class itself, `(\\w|\\d)`, but not all);
- two unbounded repeats of overlapping characters with nothing required between them (`\\d+\\s?\\d+x`): the
  split between them is tried at every place, square the length of a long run, per place the search starts.
The message says how to write each instead: possessive (`\\w++`, `(?>...)`), one class, or with a separator
that the repeated part can't match. Alternatives that overlap over more than one character (`(a|aa)+`) are
not recognised, and `.` is read as not matching a newline (the patterns are compiled without re.DOTALL).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import cache
from re import _parser  # type: ignore[attr-defined]  # the standard library's own reading of a pattern
from re._constants import (
    ANY,
    ASSERT,
    ASSERT_NOT,
    AT,
    ATOMIC_GROUP,
    BRANCH,
    CATEGORY,
    IN,
    LITERAL,
    MAX_REPEAT,
    MAXREPEAT,
    MIN_REPEAT,
    NEGATE,
    NOT_LITERAL,
    POSSESSIVE_REPEAT,
    RANGE,
    SUBPATTERN,
)
from typing import Any

from bot.policy.parsed import children, one_of

Item = tuple[Any, Any]
Chars = frozenset[str]

# Characters a class is tested on: the alphabets up to Arabic and Syriac, and a few that classes treat specially.
SAMPLE = "".join(map(chr, range(9, 0x800))) + "\u2003\u2028\u0966\u212a\u3000\u4e2d\uff10\U0001f600"
ALL: Chars = frozenset(SAMPLE)
_CATEGORIES = {"DIGIT": r"\d", "SPACE": r"\s", "WORD": r"\w"}


def problem(pattern: str) -> str | None:
    """Why `pattern` could backtrack without end on a crafted text, or None where it has none of the shapes."""
    try:
        parsed = list(_parser.parse(pattern, 0))
    except (re.error, RecursionError):
        return None  # not ours to report: compiling it says what is wrong
    try:
        return _shape(parsed)
    except RecursionError:
        return "it is nested too deeply to be checked for backtracking; write it with fewer groups inside groups"


def _shape(parsed: Sequence[Item]) -> str | None:
    for inner in _nested(parsed):
        return (
            f"{_text(inner)} inside a repeated group can take characters that the group's next or previous "
            f"repetition could take instead, so a text that almost matches is split between repetitions in "
            f"exponentially many ways; make it possessive ({_possessive(inner)}) or begin each repetition with "
            f"something it can't match"
        )
    for one, other in _overlapping(parsed):
        return (
            f"the alternatives {one} and {other} of a repeated group can match the same character, so a run of "
            f"such characters is matched in exponentially many ways; write them as one character class"
        )
    for first, second in _adjacent(parsed):
        return (
            f"{_text(first)} and {_text(second)} repeat the same characters with nothing required between them, "
            f"so on a long run of them every split between the two is tried; make the first possessive "
            f"({_possessive(first)}) or require a separator between them"
        )
    return None


def _nested(items: Sequence[Item]) -> Iterator[Item]:
    """Inner repeats of the first shape, anywhere in `items`."""
    for item in _all(items):
        op, av = item
        if op in (MAX_REPEAT, MIN_REPEAT) and av[1] >= 2:
            body = list(av[2])
            starts, ends = _first(body), _last(body)
            for inner in _ends(body):
                if _first(_body(inner)) & starts:
                    yield inner
            for inner in _starts(body):
                if _last(_body(inner)) & ends:
                    yield inner


def _overlapping(items: Sequence[Item]) -> Iterator[tuple[str, str]]:
    """Alternatives of the second shape: one character each, inside a repeat, sharing a character; written back. (The
    parser makes most such branches one class itself, `(\\w|\\d)` say, but not those with `.`.)"""
    for item in _all(items):
        op, av = item
        if op in (MAX_REPEAT, MIN_REPEAT) and av[1] >= 2:
            for inner in _all(av[2]):
                if inner[0] is BRANCH:
                    ones = [alternative[0] for alternative in inner[1][1] if len(alternative) == 1]
                    ones = [one for one in ones if one[0] in (LITERAL, NOT_LITERAL, ANY, IN)]
                    for i, first in enumerate(ones):
                        for second in ones[i + 1 :]:
                            if _one(first) & _one(second):
                                yield f"`{one_of(first)}`", f"`{one_of(second)}`"


def _adjacent(items: Sequence[Item]) -> Iterator[tuple[Item, Item]]:
    """(first, second) unbounded repeats of the third shape, in any sequence within `items`: the first can end
    one part of the sequence, the second begin a later one, and all parts between them can match nothing."""
    for sequence in _sequences(items):
        for i, item in enumerate(sequence):
            ends = [repeat for repeat in _ends([item]) if _unbounded(repeat)]
            for later in sequence[i + 1 :] if ends else ():
                for start in _starts([later]):
                    for end in ends:
                        if _unbounded(start) and _last(_body(end)) & _first(_body(start)):
                            yield end, start
                if not _nullable([later]):
                    break


def _all(items: Sequence[Item]) -> Iterator[Item]:
    """Every item of `items`, at any depth."""
    for item in items:
        yield item
        for sequence in children(item):
            yield from _all(sequence)


def _sequences(items: Sequence[Item]) -> Iterator[Sequence[Item]]:
    yield items
    for item in items:
        for sequence in children(item):
            yield from _sequences(sequence)


def _body(repeat: Item) -> list[Item]:
    return list(repeat[1][2])


def _variable(item: Item) -> bool:
    """A repeat that can give back what it took (not possessive) and take more than one repetition."""
    op, av = item
    return op in (MAX_REPEAT, MIN_REPEAT) and av[1] >= 2 and av[1] > av[0]


def _unbounded(item: Item) -> bool:
    return _variable(item) and item[1][1] == MAXREPEAT


def _ends(items: Sequence[Item]) -> Iterator[Item]:
    """The variable repeats that can take the last characters of a match of `items`."""
    for item in reversed(items):
        yield from _edge(item, _ends)
        if not _nullable([item]):
            return


def _starts(items: Sequence[Item]) -> Iterator[Item]:
    """The variable repeats that can take the first characters of a match of `items`."""
    for item in items:
        yield from _edge(item, _starts)
        if not _nullable([item]):
            return


def _edge(item: Item, walk: Any) -> Iterator[Item]:
    if _variable(item):
        yield item
    op, _av = item
    if op in (SUBPATTERN, BRANCH, MAX_REPEAT, MIN_REPEAT):
        for sequence in children(item):
            yield from walk(sequence)


def _nullable(items: Sequence[Item]) -> bool:
    """Whether `items` can match the empty string (anything not understood: yes, the cautious answer)."""
    for item in items:
        op, av = item
        if op in (LITERAL, NOT_LITERAL, ANY, IN):
            return False
        if op in (MAX_REPEAT, MIN_REPEAT, POSSESSIVE_REPEAT):
            if av[0] > 0 and not _nullable(list(av[2])):
                return False
        elif op in (SUBPATTERN, ATOMIC_GROUP, BRANCH) and not any(_nullable(seq) for seq in children(item)):
            return False
    return True


def _first(items: Sequence[Item]) -> Chars:
    """Characters a match of `items` can begin with (of SAMPLE; more rather than fewer)."""
    chars: set[str] = set()
    for item in items:
        chars |= _chars(item, _first)
        if not _nullable([item]):
            break
    return frozenset(chars)


def _last(items: Sequence[Item]) -> Chars:
    """Characters a match of `items` can end with."""
    chars: set[str] = set()
    for item in reversed(items):
        chars |= _chars(item, _last)
        if not _nullable([item]):
            break
    return frozenset(chars)


def _chars(item: Item, walk: Any = _first) -> Chars:
    """The characters `item` can match at its edge (`walk` picks which), in either case."""
    op, av = item
    if op in (LITERAL, NOT_LITERAL, ANY, IN):
        return _one(item)
    if op in (AT, ASSERT, ASSERT_NOT):
        return frozenset()
    if op in (SUBPATTERN, BRANCH, MAX_REPEAT, MIN_REPEAT, POSSESSIVE_REPEAT, ATOMIC_GROUP):
        return frozenset().union(*(walk(sequence) for sequence in children(item)))
    return ALL  # a reference to a group, a condition: could be anything


def _one(item: Item) -> Chars:
    op, av = item
    if op is ANY:
        return ALL - {"\n"}  # as without re.DOTALL, which the patterns are compiled without
    if op in (LITERAL, NOT_LITERAL):
        same = _cased(chr(av))
        return same if op is LITERAL else ALL - same
    return _class(tuple((kind, value if kind is not CATEGORY else value.name) for kind, value in av))


@cache
def _class(parts: tuple[tuple[Any, Any], ...]) -> Chars:
    chars: set[str] = set()
    negated = False
    for kind, value in parts:
        if kind is NEGATE:
            negated = True
        elif kind is LITERAL:
            chars |= _cased(chr(value))
        elif kind is RANGE:
            chars |= {c for c in SAMPLE if any(value[0] <= ord(v) <= value[1] for v in _cased(c))}
        elif kind is CATEGORY:
            chars |= _category(value)
        else:
            return ALL
    return ALL - chars if negated else frozenset(chars)


@cache
def _category(name: str) -> Chars:
    """A category (CATEGORY_WORD, CATEGORY_NOT_DIGIT...) as the characters of SAMPLE in it."""
    kind = name.removeprefix("CATEGORY_").removeprefix("UNI_").removeprefix("LOC_")
    negated = kind.startswith("NOT_")
    pattern = _CATEGORIES.get(kind.removeprefix("NOT_"))
    if pattern is None:
        return ALL
    chars = frozenset(c for c in SAMPLE if re.fullmatch(pattern, c))
    return ALL - chars if negated else chars


def _cased(char: str) -> Chars:
    """`char` and its other cases (of one character: "ß" upper-cases to "SS")."""
    return frozenset(c for c in (char, char.lower(), char.upper()) if len(c) == 1)


def _text(item: Item) -> str:
    """A repeat as it could be written (`\\w+`, `[a-z]*`), or "a repeat" where its body is not one character."""
    _min, _max, body = item[1]
    quantifier = {(0, MAXREPEAT): "*", (1, MAXREPEAT): "+"}.get(
        (_min, _max), f"{{{_min},{'' if _max == MAXREPEAT else _max}}}"
    )
    written = _written(list(body))
    return f"`{written}{quantifier}`" if written else "a repeat"


def _possessive(item: Item) -> str:
    """How to write `item` so it never gives back what it took."""
    text = _text(item)
    return f"{text[:-1]}+`" if text.startswith("`") else "`(?>...)`"


def _written(body: Sequence[Item]) -> str | None:
    return one_of(body[0]) if len(body) == 1 else None
