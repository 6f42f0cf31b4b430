"""The interface every platform adapter implements."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from bot.models import InboundMessage, Reply


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
