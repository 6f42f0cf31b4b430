"""The risk patterns' prefilter: the words a pattern can't match without, the split into alternatives, and the
whole of it against the plain search it stands in for (one alternation of a flag's patterns) on texts built
from the demo lexicon's own words, where a wrong requirement would show."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.classify.prefilter import (
    EVIDENCE,
    FlagPatterns,
    alternatives,
    compiled,
    guarded,
    reads_case,
    required_words,
)
from bot.classify.risk import PiiRedactor
from bot.models import Priority
from bot.policy.load import load_policy
from bot.policy.schema import RiskFlagSpec, RiskLexicon

ROOT = Path(__file__).resolve().parent.parent
LEXICON = {name: spec.patterns for name, spec in load_policy(ROOT / "policies").risk.flags.items()}
SEARCH = FlagPatterns(LEXICON)


@functools.cache
def one_alternation(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """Compiled once: the re module's own cache (512 entries) is full after the lexicon loads, and compiling the
    flags' alternations again for every text took 0.2 s a text, five minutes of the suite."""
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE if any(map(reads_case, patterns)) else 0)


def plain_first_matches(flags: dict[str, list[str]], text: str) -> dict[str, str]:
    """What the prefilter stands in for: each flag's patterns as one alternation, as written (no guard), searched
    over the whole text."""
    found = {}
    lowered = text.lower()
    for name, patterns in flags.items():
        if not patterns:
            continue
        pattern = one_alternation(tuple(patterns))
        ignoring_case = bool(pattern.flags & re.IGNORECASE)
        match = pattern.search(text if ignoring_case else lowered)
        if match:
            source = text if ignoring_case or len(lowered) == len(text) else lowered
            found[name] = source[match.start() : match.end()][:EVIDENCE]
    return found


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        (r"\b(kill|hang)\s+myself\b", {"myself"}),
        (r"\bsuicid(e|al)\b", {"suicid"}),
        (r"\b(point|reason)\s+to\s+(live|go\s+on)", {"point", "reason"}),  # longer shortest word than live/go
        (r"\bcharge[\s-]?backs?\b", {"charge"}),
        (r"\b(abcd)+x\b", {"abcd"}),  # a part that must happen once keeps its words
        (r"\b(abcd){2,}", {"abcd"}),
        (r"\bfoo(bar)?\b", {"foo"}),  # an optional part requires nothing
        (r"(?<!gift\s)\bvouchers?\b", {"voucher"}),  # a look-behind requires nothing
        (r"\b(a|)b", {"b"}),  # an empty alternative makes its branch require nothing
        (r"(?i:abc)d", {"d"}),  # a group that changes flags is not read
        (r"[a-z]+\d", None),
        (r"(?i)abc", None),  # case-insensitive: "ſ" matches "s", which no required word could see
        (r"ABC", None),
    ],
)
def test_required_words(pattern: str, words: set[str] | None) -> None:
    flags = re.IGNORECASE if pattern == "ABC" else 0
    expected = frozenset(words) if words is not None else None
    assert required_words(re.compile(pattern, flags)) == expected


@pytest.mark.parametrize(
    ("pattern", "pieces"),
    [
        (r"a|b(c|d)|e", ["a", "b(c|d)", "e"]),
        (r"a\|b|c", [r"a\|b", "c"]),  # an escaped bar is a character
        (r"[|(]x|y", ["[|(]x", "y"]),  # so is a bar or a parenthesis in a class
        (r"[]|]x|y", ["[]|]x", "y"]),  # "]" first in a class is one of its characters
        (r"[^]|]x|y", ["[^]|]x", "y"]),
        (r"(a)\1|b", [r"(a)\1|b"]),  # a back-reference: numbering would change
        (r"(?x) a | b", [r"(?x) a | b"]),  # verbose mode: whitespace and comments read differently
        (r"(?s)a.|b", [r"(?s)a.|b"]),  # global flags apply to every alternative
        (r"a(|b", [r"a(|b"]),  # not a pattern: left to the compiler's error
    ],
)
def test_alternatives(pattern: str, pieces: list[str]) -> None:
    assert alternatives(pattern) == pieces


@pytest.mark.parametrize(
    ("pattern", "reads"),
    [
        (r"\bbit\.ly/\S*", False),  # \S, \D, \W, \B are capitals of the syntax: the same on the lowered text
        (r"\b\D\w+\W", False),
        (r"caf\u00e9|[a-z0-9]+|\N{EM DASH}", False),
        (r"\b[A-Z]{2}\d", True),  # a capital letter the text must hold
        (r"(?:ab|(cd)+Ef)", True),  # inside a group, a repeat, an alternative
        (r"(?<!Q)x", True),  # or a look-around
        (r"\x41|\u00c9|\N{LATIN CAPITAL LETTER A}", True),  # or named by its code
        (r"[^A]", True),
        (r"\\S", True),  # a backslash, then a capital S
        (r"(?-i:abc)", True),  # case turned back on: "ABC" lowered would match
        (r"a(", True),  # not a pattern: left to the compiler's error, on the slow path meanwhile
    ],
)
def test_reads_case(pattern: str, reads: bool) -> None:
    assert reads_case(pattern) is reads


def test_only_the_street_names_keep_the_demo_lexicon_on_the_slow_path() -> None:
    """A flag with one pattern that reads case is searched whole, with re.IGNORECASE, on every message: the
    fraud flag's one `\\S` did that until 2026-12-05 and cost two thirds of the lexicon's time."""
    whole = [name for name, patterns in LEXICON.items() if patterns and compiled(patterns).flags & re.IGNORECASE]  # type: ignore[union-attr]
    assert whole == ["pii"]


def test_the_demo_lexicon_needs_words_for_most_of_its_patterns() -> None:
    """The prefilter only pays where patterns name words: most of the demo lexicon's pieces do."""
    pieces = [
        re.compile(piece)
        for patterns in LEXICON.values()
        if not compiled(patterns).flags & re.IGNORECASE  # type: ignore[union-attr]
        for pattern in patterns
        for piece in alternatives(pattern)
    ]
    with_words = [piece for piece in pieces if required_words(piece)]
    assert len(with_words) >= 0.95 * len(pieces)


def test_the_demo_lexicon_finds_what_one_alternation_finds_on_the_brand_messages() -> None:
    texts = [
        json.loads(line)["text"]
        for name in ("risk_test.jsonl", "routing_sample.jsonl")
        for line in (ROOT / "tests" / "data" / name).read_text().splitlines()
    ]
    texts += [text for spec in load_policy(ROOT / "policies").intents.intents.values() for text in spec.examples]
    flagged = 0
    for text in texts:
        found = SEARCH.first_matches(text)
        assert found == plain_first_matches(LEXICON, text), text
        flagged += bool(found)
    assert flagged >= 20  # the comparison saw matches, not only their absence


# Texts made of the lexicon's own words (so patterns nearly match), and of characters that lowering moves
# ("İ" lowers to two characters), that case-insensitivity folds ("ſ", "K") and that break words.
WORDS = sorted({word for pattern in LEXICON.values() for p in pattern for word in re.findall(r"[a-z']{2,}", p)})
PIECES = st.sampled_from(WORDS) | st.sampled_from(["İ", "ſ", "\u212a", "@", "-", "0", "4", "%", "07700 900123"])


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, min_size=1, max_size=12), st.lists(st.sampled_from([" ", "", "  ", "\n", ", "]), min_size=12))
def test_any_text_of_the_lexicons_words_gets_the_same_matches(pieces: list[str], gaps: list[str]) -> None:
    text = "".join(piece + gap for piece, gap in zip(pieces, gaps, strict=False))
    for variant in (text, text.upper(), text.capitalize()):
        assert SEARCH.first_matches(variant) == plain_first_matches(LEXICON, variant)


def test_a_flag_without_patterns_or_words_still_matches() -> None:
    patterns = FlagPatterns({"empty": [], "digits": [r"\d{3}"], "both": [r"\d{3}", "abc"]})
    assert patterns.first_matches("x 123 abc") == {"digits": "123", "both": "123"}
    assert patterns.first_matches("abc then 123") == {"digits": "123", "both": "abc"}  # the first to start wins


def test_a_long_literal_is_looked_for_by_its_beginning() -> None:
    """The trie of words is built recursively, a level a character: a brand's 3,000-character pattern must
    not exhaust the recursion limit, and its match is still found."""
    patterns = FlagPatterns({"long": ["x" * 3000 + "y"]})
    assert patterns.first_matches("a " + "x" * 3000 + "y") == {"long": "x" * 80}
    assert patterns.first_matches("a " + "x" * 3000) == {}


def regexes() -> st.SearchStrategy[str]:
    """Small lower-case regular expressions over a small alphabet (so random texts match them often), with
    the constructs the prefilter reads: literals, classes, groups, alternatives, optional and repeated parts,
    word boundaries and look-arounds."""
    atoms = st.sampled_from(["a", "b", "ab", "ba", "abc", "c", " ", "[ab]", ".", r"\s", r"\w"])
    zero_width = st.sampled_from([r"\b", "(?<!a)", "(?=b)", "(?!c)"])
    # Unbounded repeats only on single atoms: one around a group of them can backtrack for minutes.
    repeats = st.sampled_from(["", "", "?", "*", "+", "{2}", "{0,2}", "{1,3}", "??", "+?", "*+"])
    bounded = st.sampled_from(["", "", "?", "{2}", "{0,2}", "{1,2}", "??"])

    def sequence(element: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.lists(element | zero_width, min_size=1, max_size=3).map("".join)

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        alternatives = st.lists(sequence(inner), min_size=1, max_size=3).map("|".join)
        opening = st.sampled_from(["(", "(?:", "(?>"])
        return st.tuples(opening, alternatives, st.just(")"), bounded).map("".join)

    quantified = st.tuples(atoms, repeats).map("".join)
    return st.lists(sequence(st.recursive(quantified, extend, max_leaves=6)), min_size=1, max_size=3).map("|".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(regexes(), min_size=1, max_size=3), st.data())
def test_any_lexicon_finds_what_one_alternation_finds(patterns: list[str], data: st.DataObject) -> None:
    """The requirements are read right for any pattern, not only the demo lexicon's: texts drawn to match a
    random pattern (and random ones) get the same first matches through the prefilter as without it."""
    flags = {"first": patterns[:1], "rest": patterns[1:]}
    search = FlagPatterns(flags)
    texts = [data.draw(st.from_regex(re.compile(p), fullmatch=False), label="text") for p in patterns]
    texts.append(data.draw(st.text(alphabet="abcAB \n", max_size=30), label="noise"))
    for text in texts:
        assert search.first_matches(text) == plain_first_matches(flags, text), (patterns, text)


@pytest.mark.parametrize(
    ("piece", "written"),
    [
        (r"\d+\s?%\s+off", r"(?<!\d)\d+\s?%\s+off"),  # the demo lexicon's one such piece
        (r"(\w*)@", r"(?<!\w)(\w*)@"),  # a plain group is looked into
        (r"[^a\s]+?b", r"(?<![^a\s])[^a\s]+?b"),
        (r".++x", r"(?<!.).++x"),
        (r"a{2,}", r"(?<!a)a{2,}"),
        (r"\ba+", r"\ba+"),  # something before the repeat: its twin a character earlier need not match
        (r"a{1,9}b", r"a{1,9}b"),  # a bounded repeat: no twin beyond its bound
        (r"(?i)a+", r"(?i)a+"),  # global flags stay first
        (r"(?i:a+)b", r"(?i:a+)b"),
        (r"(ab)+", r"(ab)+"),  # a repeat of more than one character
        (r"(\d+)x\1", r"(\d+)x\1"),  # the twin's group would be a character longer: "12x2" matches from "2"
    ],
)
def test_a_piece_that_begins_with_an_unbounded_repeat_is_guarded(piece: str, written: str) -> None:
    assert guarded(piece) == written


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["a", "[ab]", "[^b]", r"\w", r"\S", ".", "[a-c\\d]", "-", r"\$"]),
    st.sampled_from(["*", "+", "{2,}", "+?", "*+"]),
    st.sampled_from(["b", "", r"\b", "c?%", "(?=a)", "a"]),
    st.lists(st.text(alphabet="aabbc-%$1 \n", max_size=12), min_size=1, max_size=3),
)
def test_the_guard_changes_no_match(atom: str, repeat: str, rest: str, texts: list[str]) -> None:
    """A search finds the same first match with the guard: a match never starts inside a run of the repeated
    character, where its twin a character earlier would have been found first. The logs' redaction, which
    replaces every match one after another, replaces the same ones."""
    piece = atom + repeat + rest
    assert guarded(piece) != piece
    redact = PiiRedactor(RiskLexicon(flags={"pii": RiskFlagSpec(priority=Priority.NORMAL, patterns=[piece])}))
    for text in texts:
        plain = re.search(piece, text, re.IGNORECASE)
        found = re.search(guarded(piece), text, re.IGNORECASE)
        assert (found and found.span()) == (plain and plain.span()), (piece, text)
        replaced = re.sub(piece, lambda m: "[pii]" if m.group() else "", text, flags=re.IGNORECASE)
        if all(m.group() for m in re.finditer(piece, text, re.IGNORECASE)):  # empty matches are not replaced
            assert redact(text) == replaced, (piece, text)
