"""`python -m bot channels register NAME --url URL`: tell a platform where to deliver (Telegram's setWebhook)."""

from __future__ import annotations

import argparse
import asyncio

import aiohttp

from bot.channels.telegram import TelegramChannel
from bot.config import Settings
from bot.errors import ChannelError, ConfigError

REGISTRABLE = ["telegram"]  # the platforms whose webhook is set through their API (Meta and X: in their consoles)


def register_channel(settings: Settings, args: argparse.Namespace) -> int:
    if settings.telegram_bot_token is None:
        raise ConfigError("set BOT_TELEGRAM_BOT_TOKEN and BOT_TELEGRAM_SECRET_TOKEN first")
    if not args.url.startswith("https://"):
        raise ConfigError(f"--url must be an https:// address Telegram can reach, not {args.url!r}")
    print(asyncio.run(_register(settings, args.url)))
    return 0


async def _register(settings: Settings, url: str) -> str:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        try:
            return await TelegramChannel.from_settings(settings, session).register(url)
        except ChannelError as error:
            raise ConfigError(f"setWebhook failed: {error}") from error
