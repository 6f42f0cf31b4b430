"""`python -m bot users add | list | remove`: reviewer accounts from the command line."""

from __future__ import annotations

import argparse
import asyncio
import re

from redis.asyncio import Redis

from bot.config import Settings
from bot.embedded import EmbeddedRedis
from bot.errors import ConfigError
from bot.review.users import NAME, Role, UserExists, UserStore


def manage_users(settings: Settings, args: argparse.Namespace) -> int:
    if args.users_command == "add" and not re.fullmatch(NAME, args.name):
        raise ConfigError(f"user name {args.name!r}: lower case letters, digits, . _ - (2 to 32), a letter first")
    return asyncio.run(_manage_users(settings, args))


async def _manage_users(settings: Settings, args: argparse.Namespace) -> int:
    """Against BOT_REDIS_URL, or serve's embedded Redis (started for the moment if serve isn't running)."""
    embedded = None
    url = settings.redis_url
    if url is None:
        embedded = EmbeddedRedis(settings.data_dir / "redis")
        url = embedded.url if await embedded.answers() else await embedded.start()
    redis = Redis.from_url(url, decode_responses=True)
    store = UserStore(redis, settings.redis_prefix)
    try:
        if args.users_command == "add":
            try:
                user, password, token = await store.add(args.name, Role(args.role))
            except UserExists as error:
                raise ConfigError(f"user {error} exists already") from error
            print(f"created {user.role.value} {user.name}; shown once, hand them over safely:")
            print(f"  password:  {password}")
            print(f"  API token: {token}")
        elif args.users_command == "list":
            for user in await store.all():
                print(f"{user.name}\t{user.role.value}\tsince {user.created_at:%Y-%m-%d}")
        elif not await store.remove(args.name):
            raise ConfigError(f"no user {args.name!r}")
        else:
            print(f"removed {args.name}")
        return 0
    finally:
        await redis.aclose()
        if embedded is not None:  # stop() leaves a server it didn't start (a running serve's) alone
            await embedded.stop()
