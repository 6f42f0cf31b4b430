"""Each risk flag's first pattern match in a text, found without trying every pattern at every position.

Python's engine tries every alternative of a flag's patterns at every position of a text: about 170 µs a
message for the demo brand's lexicon, a seventh of a text's model time on a CPU with AMX, spent on the event
loop while the model waits for the run's callers (BENCHMARKS.md, "A CPU with AMX"). Yet nearly every pattern
names words that any match contains: `\\b(kill|hang)\\s+myself\\b` can't match a text without "myself". One pass
over the text finds which of the lexicon's words it contains (a trie of them, as one regular expression), and
only the patterns whose words are there go to the engine, which finds the match as before: the flags and
their evidence are the same, found in a fifth of the time. A pattern that begins by repeating a class of
characters is also tried only where a run of them starts (`guarded`), so a long run can't make it quadratic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from re import _parser  # type: ignore[attr-defined]  # the standard library's own reading of a pattern
from re._constants import (
    ATOMIC_GROUP,
    BRANCH,
    IN,
    LITERAL,
    MAX_REPEAT,
    MAXREPEAT,
    MIN_REPEAT,
    NOT_LITERAL,
    POSSESSIVE_REPEAT,
    RANGE,
    SUBPATTERN,
)
from typing import Any

from bot.policy.parsed import children, one_of

Words = frozenset[str]
EVIDENCE = 80  # characters of a match shown as evidence
_REFERENCE = re.compile(r"\\[1-9]|\(\?P=|\(\?\(")  # a back-reference or a condition on a group
WORD = 32  # characters of a required word looked for: a text with the word has its beginning too


def compiled(patterns: Sequence[str]) -> re.Pattern[str] | None:
    """One regular expression for a flag's patterns, matched case-insensitively. Patterns written in lower case
    run on the lowered text without re.IGNORECASE, which is two to three times faster in Python's engine (and
    lets FlagPatterns try only the patterns whose words a text holds); a pattern that `reads_case` keeps
    re.IGNORECASE on the original text for the whole flag."""
    if not patterns:
        return None
    return re.compile(alternation(patterns), re.IGNORECASE if any(map(reads_case, patterns)) else 0)


def reads_case(pattern: str) -> bool:
    """Whether `pattern` could match differently on the lowered text than without case on the original: it names
    a character that lowering changes (`A`, `[A-Z]`, `\\x41`), or turns case back on (`(?-i:...)`). An escape
    such as `\\S` or `\\W` is a capital of the syntax, not of the text, and matches the same either way: read by
    the standard library's parser, it does not send its flag down the slow path, as one `\\S` in the fraud flag
    once did (0.5 ms a message, two thirds of the lexicon's time)."""
    try:
        return _reads_case(_parser.parse(pattern, 0))
    except (re.error, RecursionError):
        return True


def _reads_case(items: Iterable[tuple[Any, Any]]) -> bool:
    for op, av in items:
        if op is SUBPATTERN and av[2] & re.IGNORECASE:  # av: group, flags added, flags removed, items
            return True
        if any(chr(code).lower() != chr(code) for code in _characters(op, av)):
            return True
        if any(_reads_case(inner) for inner in children((op, av))):
            return True
    return False


def _characters(op: Any, av: Any) -> Iterator[int]:
    """The characters a parsed item names: a literal's, or a class's literals and ranges."""
    if op in (LITERAL, NOT_LITERAL):
        yield av
    elif op is IN:
        for kind, value in av:
            if kind is LITERAL:
                yield value
            elif kind is RANGE:
                yield from range(value[0], value[1] + 1)


def alternation(patterns: Sequence[str], guard: bool = True) -> str:
    """`patterns` as one regular expression, their alternatives `guarded` (unless not `guard`)."""
    return "|".join(f"(?:{guarded(piece) if guard else piece})" for p in patterns for piece in alternatives(p))


class FlagPatterns:
    """Every flag's patterns; `first_matches` gives what one alternation of each flag's patterns (`compiled`)
    would match first. A case-insensitive flag is searched that way, whole: under re.IGNORECASE "s" also matches
    "ſ", so no word can be required of the lowered text. A lowered flag's patterns are split into their
    alternatives, each searched only in texts that contain one of its words: of several matches of a flag the
    one that starts first wins, and of two that start together the one written first, as in one alternation."""

    def __init__(self, flags: Mapping[str, Sequence[str]]) -> None:
        self._whole: list[tuple[str, re.Pattern[str]]] = []
        self._pieces: list[tuple[str, re.Pattern[str]]] = []
        always: list[int] = []
        by_word: dict[str, list[int]] = {}
        for name, patterns in flags.items():
            whole = compiled(patterns)
            if whole is None:
                continue
            if whole.flags & re.IGNORECASE:
                self._whole.append((name, whole))
                continue
            for piece in (re.compile(guarded(piece)) for pattern in patterns for piece in alternatives(pattern)):
                words = required_words(piece)
                for word in {word[:WORD] for word in words or ()}:
                    by_word.setdefault(word, []).append(len(self._pieces))
                if words is None:
                    always.append(len(self._pieces))
                self._pieces.append((name, piece))
        self._always = frozenset(always)
        # The finder reports the longest word at each position; the words it begins with are there too.
        self._finder = re.compile(f"(?=({_trie(by_word)}))") if by_word else None
        self._pieces_of = {
            word: frozenset(i for end in range(1, len(word) + 1) for i in by_word.get(word[:end], ()))
            for word in by_word
        }

    def first_matches(self, text: str) -> dict[str, str]:
        """Each matching flag's first match in `text` (at most EVIDENCE characters)."""
        found: dict[str, str] = {}
        for name, whole in self._whole:
            match = whole.search(text)
            if match:
                found[name] = match.group(0)[:EVIDENCE]
        lowered = text.lower()
        candidates = set(self._always)
        if self._finder is not None:
            for word in self._finder.finditer(lowered):
                candidates |= self._pieces_of[word.group(1)]
        first: dict[str, re.Match[str]] = {}
        for index in sorted(candidates):  # the order the patterns are written in
            name, piece = self._pieces[index]
            match = piece.search(lowered)
            if match and (name not in first or match.start() < first[name].start()):
                first[name] = match
        # Cut from the original text where lowering kept every character in its place (it nearly always does).
        source = text if len(lowered) == len(text) else lowered
        for name, match in first.items():
            found[name] = source[match.start() : match.end()][:EVIDENCE]
        return found


def alternatives(pattern: str) -> list[str]:
    """The top-level alternatives of `pattern` ("a|b(c|d)" gives "a" and "b(c|d)"), each a pattern of its own;
    `pattern` alone where splitting could change what it means (verbose mode, references to groups)."""
    if re.search(r"\(\?[aiLmsux]*(x|\))", pattern) or _REFERENCE.search(pattern):  # verbose, global flags
        return [pattern]
    pieces, depth, start, in_class, i = [], 0, 0, False, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 1  # the escaped character is literal
        elif in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            i += pattern.startswith("^", i + 1)
            i += pattern.startswith("]", i + 1)  # a "]" first in a class is one of its characters
        elif char in "()":
            depth += 1 if char == "(" else -1
        elif char == "|" and depth == 0:
            pieces.append(pattern[start:i])
            start = i + 1
        i += 1
    pieces.append(pattern[start:])
    try:
        for piece in pieces:
            re.compile(piece)
    except re.error:
        return [pattern]
    return pieces


def guarded(piece: str) -> str:
    """`piece`, tried only where a run of the character it begins by repeating begins: `(?<!\\d)\\d+\\s?%`.

    Where a piece begins with an unbounded repeat of one character (class), a match that starts inside a run of
    them has a twin that starts one character earlier, the repeat taking one more; so a search never finds a
    match there first, and the guard changes no first match. Without it the engine tries every position of a
    long run, each scanning to the run's end: quadratic, 6 s for `\\d+\\s?%` on 20,000 digits (a message may be
    that long, and the patterns run on the event loop), against 1 ms with it."""
    if re.match(r"\(\?[aiLmsux]+\)", piece) or _REFERENCE.search(piece):
        return piece  # global flags must stay first; a reference to the repeat's group would see the twin differ
    try:
        item = _leading_repeat(_parser.parse(piece, 0))
    except (re.error, RecursionError):
        return piece
    chars = one_of(item) if item is not None else None
    return f"(?<!{chars}){piece}" if chars is not None else piece


def _leading_repeat(items: Sequence[tuple[Any, Any]]) -> tuple[Any, Any] | None:
    """The one-character item a sequence begins by repeating without bound, looking into plain groups."""
    if not len(items):
        return None
    op, av = items[0]
    if op is SUBPATTERN and not av[1] and not av[2]:
        return _leading_repeat(av[3])
    if op in (MAX_REPEAT, MIN_REPEAT, POSSESSIVE_REPEAT) and av[1] == MAXREPEAT and len(av[2]) == 1:
        return av[2][0]
    return None


def required_words(pattern: re.Pattern[str]) -> Words | None:
    """Strings of which every match of `pattern` contains at least one, as written (so in the text the pattern
    searches), or None where none are known (and for a case-insensitive pattern, see FlagPatterns)."""
    if pattern.flags & re.IGNORECASE:
        return None
    try:
        return _sequence(_parser.parse(pattern.pattern, pattern.flags))
    except (re.error, RecursionError):
        return None


def _sequence(items: Iterable[tuple[Any, Any]]) -> Words | None:
    """The best requirement among a sequence's parts: each part must match, so any one part's words will do."""
    best: Words | None = None
    run = ""  # consecutive literal characters: one word
    for op, av in items:
        if op is LITERAL:
            run += chr(av)
            continue
        best, run = _better(best, frozenset({run}) if run else None), ""
        if op is SUBPATTERN:
            _group, add_flags, del_flags, inner = av
            if not add_flags and not del_flags:  # a group that changes flags (say `(?i:...)`) is not read
                best = _better(best, _sequence(inner))
        elif op is BRANCH:
            best = _better(best, _branch(av[1]))
        elif op in (MAX_REPEAT, MIN_REPEAT, POSSESSIVE_REPEAT) and av[0] >= 1:
            best = _better(best, _sequence(av[2]))
        elif op is ATOMIC_GROUP:
            best = _better(best, _sequence(av))
        # Anything else (a character class, an anchor, a look-around, a back-reference, a part that may repeat
        # zero times) requires no particular word.
    return _better(best, frozenset({run}) if run else None)


def _branch(alternatives: Iterable[Iterable[tuple[Any, Any]]]) -> Words | None:
    """Every alternative's words together; none at all if one alternative requires none."""
    words: set[str] = set()
    for alternative in alternatives:
        found = _sequence(alternative)
        if found is None:
            return None
        words |= found
    return frozenset(words)


def _better(a: Words | None, b: Words | None) -> Words | None:
    """The more selective requirement: the longer shortest word (rarer in text), then fewer words."""
    if a is None or b is None:
        return a if b is None else b
    return max(a, b, key=lambda words: (min(map(len, words)), -len(words)))


def _trie(words: Iterable[str]) -> str:
    """A regular expression matching the longest of `words` that starts where it is tried: one branch per
    distinct next character, so the engine follows one path instead of trying every word."""
    root: dict[str, dict] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _branches(root)


def _branches(node: dict[str, dict]) -> str:
    branches = [re.escape(char) + _branches(child) for char, child in sorted(node.items()) if char]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
    if "" in node:  # a word ends here: longer ones first (greedy), else this one
        return f"(?:{body})?"
    return body
