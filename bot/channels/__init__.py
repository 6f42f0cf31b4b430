"""Platform adapters: each verifies, parses and sends for one channel; `build_channels` makes the registry."""

from __future__ import annotations

import aiohttp

from bot.channels.base import Channel
from bot.channels.generic import GenericChannel
from bot.channels.telegram import TelegramChannel
from bot.config import Settings

# What turns each channel on (a channel without its credentials is off; its webhook answers 404).
CREDENTIALS = {
    GenericChannel.name: "BOT_GENERIC_SECRET",
    TelegramChannel.name: "BOT_TELEGRAM_BOT_TOKEN and BOT_TELEGRAM_SECRET_TOKEN",
}


def build_channels(settings: Settings, session: aiohttp.ClientSession) -> dict[str, Channel]:
    """The channels this deployment has credentials for, by name; unconfigured ones are left out."""
    channels: dict[str, Channel] = {}
    if settings.generic_secret is not None:
        channels[GenericChannel.name] = GenericChannel.from_settings(settings, session)
    if settings.telegram_bot_token is not None:  # Settings holds its secret token too
        channels[TelegramChannel.name] = TelegramChannel.from_settings(settings, session)
    return channels
