"""`python -m bot brake on | off | list`: the incident brake from the command line, against BOT_REDIS_URL or
serve's embedded Redis (see bot.review.connect), for an admin at the service's terminal."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
from datetime import UTC, datetime

from bot.config import Settings
from bot.errors import ConfigError
from bot.incident import IncidentStore
from bot.policy.incident import by_hand, topics
from bot.policy.load import load_policy
from bot.review.connect import service_redis


def manage_brake(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_manage_brake(settings, args))


def _who() -> str:
    """The audit log's name for an admin at the terminal: the CLI has no desk account."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name for this uid (a container): still say it came from here
        return "cli"


async def _manage_brake(settings: Settings, args: argparse.Namespace) -> int:
    policy = load_policy(settings.policies_dir)
    incident = None
    if args.brake_command == "on":
        action = args.action or ("holding" if args.holding is not None else "review")
        try:
            incident = by_hand(args.topic, action, args.holding, args.reason, _who(), datetime.now(UTC), topics(policy))
        except ValueError as error:
            raise ConfigError(str(error)) from error
    async with service_redis(settings) as redis:
        store = IncidentStore(redis, settings.redis_prefix)
        if incident is not None:
            before = await store.pull(incident)
            print(f"{'changed' if before else 'raised'} incident on {incident.topic}: {_describe(incident.stored())}")
        elif args.brake_command == "off":
            cleared = await store.clear(args.topic, _who(), policy.decision.incident.window_minutes * 60)
            if cleared is None:
                raise ConfigError(f"no incident holds {args.topic!r}")
            print(f"cleared incident on {args.topic}")
        else:
            held = await store.active()
            print("incidents: none" if not held else "incidents:")
            for topic, found in held.items():
                print(f"  {topic}: {_describe(found.stored())}")
    return 0


def _describe(stored: str) -> str:
    return ", ".join(f"{key}={value}" for key, value in json.loads(stored).items())
