"""The interface every platform adapter implements."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from bot.models import InboundMessage, Reply

# The longest reply each platform accepts, as reply_length() measures it (platform facts, not brand choices;
# persona.yaml may ask for shorter): the platforms' API references for posts, send-message and comment text.
MAX_CHARS = {
    "x_mention": 280,  # weighted: see reply_length()
    "x_reply": 280,
    "x_dm": 10_000,
    "messenger": 2_000,
    "instagram_comment": 2_200,
    "instagram_dm": 1_000,  # bytes of UTF-8
    "whatsapp": 4_096,
    "telegram": 4_096,
    "chatwoot": 150_000,
    "generic": 4_096,
}
_URL = re.compile(r"https?://\S+")  # bare domains are counted as text: longer or equal, never less
_X_LIGHT = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))  # code points X counts once; others twice


def max_chars(channel: str) -> int:
    """The platform's limit; an unknown channel gets the strictest one."""
    return MAX_CHARS.get(channel, min(MAX_CHARS.values()))


def reply_length(channel: str, text: str) -> int:
    """A reply's length as its platform counts it: X weighs posts (a link is 23, CJK and emoji count 2), an
    Instagram DM is limited in bytes, everything else in characters."""
    if channel in ("x_mention", "x_reply"):
        text = unicodedata.normalize("NFC", text)
        links = _URL.findall(text)
        text = _URL.sub("", text)
        weight = sum(1 if any(lo <= ord(c) <= hi for lo, hi in _X_LIGHT) else 2 for c in text)
        return weight + 23 * len(links)
    if channel == "instagram_dm":
        return len(text.encode())
    return len(text)


class Channel(Protocol):
    """verify() on the raw bytes first, then parse(); send() delivers one reply or raises ChannelError."""

    name: str

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """True only if the body was signed by the platform (constant-time comparison)."""
        ...

    def parse(self, body: bytes, received_at: datetime) -> list[InboundMessage]:
        """The messages in a verified body; raises BadRequest naming what is wrong."""
        ...

    async def send(self, reply: Reply) -> None:
        """Deliver a reply; raises ChannelError(retryable=...) on failure."""
        ...
