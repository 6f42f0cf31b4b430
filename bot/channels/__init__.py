"""Platform adapters: one module per platform, each registering its class with `@registered` (base.py).

Adding a channel: write a module here whose class implements `Channel` and `ChannelType`, decorate it with
`@registered`, add its settings to config.py, and import the module below.
"""

from __future__ import annotations

import aiohttp

from bot.channels import chatwoot, generic, instagram, messenger, telegram, whatsapp, x  # noqa: F401  (importing a module registers its channel)
from bot.channels.base import REGISTRY, Channel
from bot.config import Settings


def build_channels(settings: Settings, session: aiohttp.ClientSession) -> dict[str, Channel]:
    """The channels this deployment has credentials for, by webhook name; unconfigured ones are left out."""
    return {name: kind.from_settings(settings, session) for name, kind in REGISTRY.items() if kind.configured(settings)}


def off_channels(settings: Settings) -> dict[str, str]:
    """The channels left off, each with the settings that would turn it on (said at start)."""
    return {name: kind.credentials for name, kind in REGISTRY.items() if not kind.configured(settings)}


def by_surface(channels: dict[str, Channel]) -> dict[str, Channel]:
    """Which channel sends a reply to a message of each surface (InboundMessage.channel)."""
    return {surface: channel for channel in channels.values() for surface in channel.surfaces}
