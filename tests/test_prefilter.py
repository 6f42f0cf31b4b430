"""The risk patterns' prefilter: the words a pattern can't match without, the split into alternatives, and the
whole of it against the plain search it stands in for (one alternation of a flag's patterns) on texts built
from the demo lexicon's own words, where a wrong requirement would show."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.classify.prefilter import EVIDENCE, FlagPatterns, alternatives, compiled, required_words
from bot.policy.load import load_policy

ROOT = Path(__file__).resolve().parent.parent
LEXICON = {name: spec.patterns for name, spec in load_policy(ROOT / "policies").risk.flags.items()}
SEARCH = FlagPatterns(LEXICON)


def plain_first_matches(flags: dict[str, list[str]], text: str) -> dict[str, str]:
    """What the prefilter stands in for: each flag's patterns as one alternation, searched over the whole text."""
    found = {}
    lowered = text.lower()
    for name, patterns in flags.items():
        pattern = compiled(patterns)
        if pattern is None:
            continue
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
