"""The interface every platform adapter implements."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from bot.models import InboundMessage, Reply

# The longest text each platform accepts in one reply (platform facts, not brand choices; persona.yaml may
# ask for shorter). Sources: ../docs of each API, summarised in README "Channels".
MAX_CHARS = {
    "x_mention": 280,
    "x_dm": 10_000,
    "messenger": 2_000,
    "instagram_comment": 2_200,
    "instagram_dm": 1_000,
    "whatsapp": 4_096,
    "telegram": 4_096,
    "chatwoot": 10_000,
    "generic": 4_096,
}


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
