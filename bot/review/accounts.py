"""`python -m bot users add | list | remove`: reviewer accounts from the command line, against BOT_REDIS_URL or
serve's embedded Redis (see bot.review.connect)."""

from __future__ import annotations

import argparse
import asyncio
import re

from bot.config import Settings
from bot.errors import ConfigError
from bot.review.connect import service_redis
from bot.review.users import NAME, Role, UserExists, UserStore


def manage_users(settings: Settings, args: argparse.Namespace) -> int:
    if args.users_command == "add" and not re.fullmatch(NAME, args.name):
        raise ConfigError(f"user name {args.name!r}: lower case letters, digits, . _ - (2 to 32), a letter first")
    return asyncio.run(_manage_users(settings, args))


async def _manage_users(settings: Settings, args: argparse.Namespace) -> int:
    async with service_redis(settings) as redis:
        store = UserStore(redis, settings.redis_prefix)
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
