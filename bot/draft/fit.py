"""Making a draft fit its channel, whichever drafter wrote it. Pure functions of text.

A public reply that repeats a customer's card number, or is cut off mid-word on X, is worse than a late
one: these run on every draft, and report what they could not fix so the draft goes to a person.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？])")
_EMOJI = re.compile(
    "(?:[\U0001f1e6-\U0001f1ff]{2}|[\U0001f300-\U0001faff\u2600-\u27bf\u2b50\u2b55\u2764])"
    "[\ufe0f\U0001f3fb-\U0001f3ff]*(?:\u200d[\U0001f300-\U0001faff\u2600-\u27bf][\ufe0f]?)*"
)
# Personal data a reply must never echo (the customer's own, from their message).
_PERSONAL = {
    "email": re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    "card": re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)"),
    "phone": re.compile(r"(?<![\w+])\+?\d[\d ()-]{7,}\d(?!\d)"),
    "postcode": re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b", re.IGNORECASE),
}


def sentences(text: str) -> list[str]:
    """The text's sentences, each with the space after it: joined, they give the text back."""
    cuts = [match.end() for match in _SENTENCE_END.finditer(text)]
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True) if a < b]


def _normal(kind: str, value: str) -> str:
    return value.lower() if kind == "email" else re.sub(r"[^0-9A-Za-z]", "", value).upper()


def personal_data(text: str) -> set[tuple[str, str]]:
    """(kind, normalised value) of every e-mail, card or phone number and postcode in the text."""
    return {(kind, _normal(kind, m)) for kind, pattern in _PERSONAL.items() for m in pattern.findall(text)}


def drop_repeated_personal_data(reply: str, message: str) -> tuple[str, list[str]]:
    """The reply without the sentences that repeat the message's personal data, and the kinds removed."""
    theirs = personal_data(message)
    if not theirs:
        return reply, []
    kept, removed = [], []
    for sentence in sentences(reply):
        repeated = personal_data(sentence) & theirs
        if repeated:
            removed += sorted(kind for kind, _ in repeated)
        else:
            kept.append(sentence)
    return "".join(kept).strip(), removed


def limit_emoji(text: str, allowed: int) -> str:
    """Keep the first `allowed` emoji; drop the rest (and the space before each)."""
    count = 0

    def keep_first(match: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return match.group(0) if count <= allowed else ""

    return re.sub(r" {2,}", " ", _EMOJI.sub(keep_first, text)).replace(" .", ".").strip()


def fit_length(text: str, limit: int, sign_off: str, length: Callable[[str], int] = len) -> tuple[str, bool]:
    """Cut to `limit` (as `length` measures) at a sentence boundary, keeping the sign-off at the end. The flag
    is True when even the first sentence was too long and had to be cut mid-sentence (a person should look)."""
    body = text.strip()
    suffix = ""
    if sign_off and body.endswith(sign_off):
        body, suffix = body[: -len(sign_off)].rstrip(), " " + sign_off
    if length(body + suffix) <= limit:
        return (body + suffix).strip(), False
    kept = ""
    for sentence in sentences(body):
        if length((kept + sentence).rstrip() + suffix) > limit:
            break
        kept += sentence
    if kept.strip():
        return kept.rstrip() + suffix, False
    cut = body[:limit]  # every character weighs at least 1
    while cut and length(cut + "…" + suffix) > limit:
        shorter = cut.rsplit(" ", 1)[0]
        cut = shorter if shorter != cut else cut[:-1]  # at a word where there are words
    return cut.rstrip(" ,;:–-") + "…" + suffix, True
