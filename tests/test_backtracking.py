"""A pattern that one crafted message could make backtrack for seconds is refused when the policy is read."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.policy.backtracking import problem
from bot.policy.load import load_policy
from tests.conftest import ROOT

REFUSED = [  # pattern, the repeat the message names
    (r"(\w+\s?)+!", r"\w+"),  # a repetition can end where the inner repeat could go on
    (r"(a+)+b", "a+"),
    (r"(a*)*b", "a*"),
    (r"(\s?\w+)+x", r"\w+"),  # ... or begin where it could have started
    (r"(x\w+)+y", r"\w+"),  # "xxxx" is one repetition or two
    (r"(\w+|\d)+!", r"\w+"),  # inside one alternative
    (r"(?:[\w\.\+\-]+\.)+x", r"[\w\.\+\-]+"),  # "a.a." is one repetition or two
    (r"(\w{1,3})+!", r"\w{1,3}"),
    (r"\b(mocked)\s+(me|us)?\s*(for)\b", r"\s+"),  # two repeats of spaces, only an optional word between
    (r"\d+[.,]?\d*%", r"\d+"),
    (r"(\w+)\s?\w+x", r"\w+"),  # the first repeat ends a group
    (r"\w+.*\w+x", r"\w+"),  # and then `.*` and `\w+`, named once the first pair is fixed
]

ACCEPTED = [
    r"(?:\s+\w+)*x",  # each repetition begins with what the inner repeat can't take
    r"(?:\w+\s+)*x",
    r"(?<![\w.+-])[\w.+-]+@[\w-]+(\.[\w-]+)+\b",  # the demo brand's e-mail address
    r"(\w+\s+){0,2}x",
    r"(\w++\s?)+!",  # possessive: takes the whole run, never gives it back
    r"(?>\w+\s?)+!",  # atomic, the same
    r"(?:ab+)+c",  # b+ can't take the "a" that starts the next repetition
    r"\b(sue|suing)\b.{0,40}\blawyer",  # bounded
    r"\d+\s?%",
    r"\w+\s+\w+",
    r"[a-z]+\d+[a-z]+",
    r"\bmocked\s+((me|us)\s+)?for\b",  # the demo's rewrite of the shape above
    r"(.|\n)*x",  # `.` is everything but a newline
    r"(\w|\d)+!",  # the parser makes these alternatives one class, [\w\d]
    r"(cat|car)+!",  # the parser takes "ca" out, then makes one class of t and r
]


@pytest.mark.parametrize(("pattern", "repeat"), REFUSED)
def test_a_pattern_that_can_split_a_text_many_ways_is_refused_with_a_way_out(pattern: str, repeat: str) -> None:
    reason = problem(pattern)
    assert reason is not None and f"`{repeat}`" in reason
    # The message's own remedy, made possessive, is accepted (and still compiles).
    possessive = re.search(r"possessive \(`(.+?)`\)", reason)
    assert possessive is not None and possessive.group(1) == repeat + "+"
    fixed = pattern.replace(repeat, possessive.group(1), 1)
    re.compile(fixed)
    left = problem(fixed)
    assert left is None if ".*" not in pattern else left is not None and left.startswith("`.*` and `\\w+`")


@pytest.mark.parametrize("pattern", ACCEPTED)
def test_a_pattern_with_one_way_to_match_is_accepted(pattern: str) -> None:
    assert problem(pattern) is None


def test_the_policy_names_the_file_line_and_pattern_that_could_stall_it(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    risk = tmp_path / "policies" / "risk.yaml"
    lines = risk.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if "overdos(e|ed|ing)" in line)
    lines[at] = lines[at][: lines[at].index("-")] + r"- '(\w+\s?)+!'"
    risk.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as raised:
        load_policy(tmp_path / "policies")
    message = str(raised.value)
    assert message.startswith(f"{risk}:{at + 1}: flags.crisis.patterns.")
    assert r"could stall the service on one crafted message: `\w+` inside a repeated group" in message


@pytest.mark.parametrize(
    ("pattern", "alternatives", "one_class"),
    [(r"(.|\s)+!", r"`.` and `\s`", r"[\s\S]+!"), (r"(?:x(.|[^\n]))+!", r"`.` and `[^\n]`", r"(?:x.)+!")],
)
def test_alternatives_of_a_repeated_group_that_match_the_same_character_are_refused(
    pattern: str, alternatives: str, one_class: str
) -> None:
    reason = problem(pattern)
    assert reason is not None and f"the alternatives {alternatives} of a repeated group" in reason
    assert problem(one_class) is None


def test_a_pattern_too_deeply_nested_to_check_is_refused_not_crashed_on() -> None:
    pattern = "(" * 400 + "a" + ")" * 400
    re.compile(pattern)  # Python's engine takes it
    assert (problem(pattern) or "").startswith("it is nested too deeply to be checked")
