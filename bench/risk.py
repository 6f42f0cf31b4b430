"""The risk patterns' worst case: how long they take on the longest message there may be, made to backtrack.

    python bench/risk.py [--policies DIR] [--length 20000] [--top 5]

Python's engine tries a pattern at every position of a text, and a pattern that begins by repeating a class
of characters (`\\d+%`) or follows a word boundary inside a run of them (`\\b[\\w.]+@`) scans that run to its end
from each of those positions: seconds on one long message, spent on the event loop (the detector) and in the
logs (the redactor). The detector guards the first kind itself (prefilter.guarded); the second must be written
to start where its run starts (a look-behind, as the demo's e-mail pattern is).

Each text here is --length characters, the longest text a message may have, mostly one run. First, one or two
characters (letters, digits, space and the punctuation patterns use) repeated, then the words a flag's
patterns require, so all of them are searched through the run: it prints the median and the slowest flags,
each with the pattern that took longest. Then, for every repeat of every pattern, a text that leads a match
up to the repeat ("mocked" for `\\bmocked\\s+...`) and then a run of what the repeat takes: the slowest of
those, with the text before the run. Then how long the event loop waits while a text holding every word of
the lexicon is checked, on the loop and on a thread; then the logs' redactor on the first texts. Run it after
editing policies/risk.yaml: a figure in hundreds of milliseconds names a pattern to rewrite.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import re
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from re import _parser  # type: ignore[attr-defined]
from re._constants import ANY, ATOMIC_GROUP, BRANCH, IN, LITERAL, MAX_REPEAT, MIN_REPEAT, NOT_LITERAL, SUBPATTERN
from typing import Any

from bot.classify import INLINE_RISK
from bot.classify.prefilter import FlagPatterns, alternatives, required_words
from bot.classify.risk import PiiRedactor, RiskDetector
from bot.models import InboundMessage
from bot.policy.load import load_policy
from bot.policy.parsed import children, one_of

ROOT = Path(__file__).resolve().parent.parent
CHARACTERS = "a1 .-@+',/:%\n"
UNITS = [*CHARACTERS, *("".join(pair) for pair in itertools.permutations(CHARACTERS, 2))]


def words_of(patterns: Sequence[str]) -> str:
    """Every word the patterns' alternatives require, as one string that holds them all."""
    pieces = [piece for pattern in patterns for piece in alternatives(pattern)]
    return " ".join(sorted({word for piece in pieces for word in required_words(re.compile(piece)) or ()}))


def run(unit: str, length: int, tail: str = "") -> str:
    """`unit` repeated, then " " and `tail`, `length` characters in all."""
    tail = f" {tail}" if tail else ""
    return (unit * (length // len(unit) + 1))[: length - len(tail)] + tail


def approaches(items: Sequence[Any], before: str = "") -> Iterator[tuple[str, str]]:
    """(a text that leads a match up to a repeat, a character the repeat takes) for every repeat of a parsed
    pattern. A long run of that character after the text makes the engine try every way the pattern could split
    the run: the check of patterns at load refuses the shapes known to be slow, and this times what is left."""
    for item in items:
        op, av = item
        if op in (MAX_REPEAT, MIN_REPEAT) and av[1] >= 2:
            yield before, witness(av[2]) or "a"
        for sequence in children(item):
            yield from approaches(sequence, before)
        before += witness([item])


def witness(items: Sequence[Any]) -> str:
    """A short text that parsed `items` match (a look-around or an anchor is taken to hold)."""
    text = ""
    for op, av in items:
        if op is LITERAL:
            text += chr(av)
        elif op in (NOT_LITERAL, ANY, IN):
            text += next((c for c in CHARACTERS + "ab" if re.fullmatch(one_of((op, av)) or ".", c)), "a")
        elif op is SUBPATTERN:
            text += witness(av[3])
        elif op is ATOMIC_GROUP:
            text += witness(av)
        elif op is BRANCH:
            text += witness(av[1][0])
        elif op in (MAX_REPEAT, MIN_REPEAT) or op.name == "POSSESSIVE_REPEAT":
            text += witness(av[2]) * av[0]
    return text


def seconds(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


async def longest_pause(work: Callable[[], Awaitable[object]]) -> float:
    """The event loop's longest wait for a turn while `work` runs, less the 1 ms a ticker sleeps between turns."""
    gaps, done = [0.0], asyncio.Event()

    async def tick() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last - 0.001)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.005)
    await work()
    done.set()
    await ticker
    return max(gaps)


async def pauses(detector: RiskDetector, text: str) -> tuple[float, float]:
    """The loop's longest pause with `text`'s flags found on the loop, and found on a thread (as the service
    does for a text longer than INLINE_RISK)."""

    async def inline() -> None:
        detector.detect(text)

    return await longest_pause(inline), await longest_pause(lambda: asyncio.to_thread(detector.detect, text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policies", type=Path, default=ROOT / "policies", help="the brand's policies/ directory")
    longest = InboundMessage.model_fields["text"].metadata[0].max_length
    parser.add_argument("--length", type=int, default=longest, help=f"characters a text (default {longest})")
    parser.add_argument("--top", type=int, default=5, help="slowest texts shown (default 5)")
    args = parser.parse_args()

    lexicon = load_policy(args.policies).risk
    flags = {name: spec.patterns for name, spec in lexicon.flags.items() if spec.patterns}
    print(f"{len(UNITS)} runs of one or two characters, {args.length} characters a text")
    timed = []
    for name, patterns in flags.items():
        search, tail = FlagPatterns({name: patterns}), words_of(patterns)
        for unit in UNITS:
            text = run(unit, args.length, tail)
            timed.append((seconds(lambda: search.first_matches(text)), name, unit))  # noqa: B023
    timed.sort(reverse=True)
    print(f"\ndetector, a flag's patterns on a text: median {statistics.median(t for t, *_ in timed) * 1000:.2f} ms")
    for taken, name, unit in timed[: args.top]:
        text = run(unit, args.length, words_of(flags[name]))
        pieces = {piece: FlagPatterns({name: [piece]}) for pattern in flags[name] for piece in alternatives(pattern)}
        slowest = max(pieces, key=lambda piece: seconds(lambda: pieces[piece].first_matches(text)))  # noqa: B023
        print(f"  {taken * 1000:9.1f} ms  {name:18} {unit!r:6}  {slowest[:70]}")

    reached = []
    for name, patterns in flags.items():
        for piece in (piece for pattern in patterns for piece in alternatives(pattern)):
            search = FlagPatterns({name: [piece]})
            for before, char in dict.fromkeys(approaches(_parser.parse(piece, 0))):
                text = before + run(char, args.length - len(before))
                reached.append((seconds(lambda: search.first_matches(text)), name, before, char, piece))  # noqa: B023
    reached.sort(reverse=True)
    median = statistics.median(t for t, *_ in reached) * 1000
    print(f"\neach repeat of each pattern reached, then a run of what it takes: {len(reached)} texts, {median:.2f} ms")
    for taken, name, before, char, piece in reached[: args.top]:
        print(f"  {taken * 1000:9.1f} ms  {name:18} {before[-20:]!r} + {char!r}  {piece[:60]}")

    detector = RiskDetector(lexicon)
    lexicon_words = " ".join(words_of(patterns) for patterns in flags.values())
    print("\nthe event loop's longest pause while a text holding every word of the lexicon is checked (a text over")
    print(f"{INLINE_RISK} characters is checked on a thread):")
    for length in (INLINE_RISK, args.length):
        on_loop, on_thread = asyncio.run(pauses(detector, run(lexicon_words + " ", length)))
        print(f"  {length:6} characters: on the loop {on_loop * 1000:6.1f} ms, on a thread {on_thread * 1000:6.1f} ms")

    redact = PiiRedactor(lexicon)
    texts = {unit: run(unit, args.length) for unit in UNITS}
    redacted = sorted(((seconds(lambda: redact(texts[unit])), unit) for unit in UNITS), reverse=True)  # noqa: B023
    print(f"\nlogs' redactor on a text: median {statistics.median(t for t, _ in redacted) * 1000:.2f} ms")
    for taken, unit in redacted[: args.top]:
        print(f"  {taken * 1000:9.1f} ms  {unit!r:6}")


if __name__ == "__main__":
    main()
