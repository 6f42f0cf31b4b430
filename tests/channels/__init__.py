"""Tests of the platform adapters, each against the platform's published examples and a fake of its API."""

from __future__ import annotations

from collections.abc import Mapping

from bot.channels.base import Channel
from bot.errors import Unauthentic


def authentic(channel: Channel, headers: Mapping[str, str], body: bytes) -> bool:
    """Whether the channel accepts a delivery as the platform's (verify() raises Unauthentic otherwise)."""
    try:
        channel.verify(headers, body)
    except Unauthentic:
        return False
    return True
