"""Platform adapters: each verifies, parses and sends for one channel; `build_channels` makes the registry."""

from __future__ import annotations

import aiohttp

from bot.channels.base import Channel
from bot.channels.generic import GenericChannel
from bot.config import Settings


def build_channels(settings: Settings, session: aiohttp.ClientSession) -> dict[str, Channel]:
    """The channels this deployment has credentials for, by name; unconfigured ones are left out."""
    channels: dict[str, Channel] = {}
    if settings.generic_secret is not None:
        channels[GenericChannel.name] = GenericChannel.from_settings(settings, session)
    return channels
