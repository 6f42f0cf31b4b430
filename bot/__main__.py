"""Command line: `python -m bot serve | web | worker`."""

from __future__ import annotations

import argparse
import logging
import sys

from aiohttp import web
from pydantic import ValidationError
from redis.exceptions import RedisError

from bot.app import create_app
from bot.config import Settings, describe_errors
from bot.errors import ConfigError

COMMANDS = {
    "serve": "run the web server, the workers and the sender in one process (embedded Redis by default)",
    "web": "run only the webhooks, review API and metrics (needs BOT_REDIS_URL)",
    "worker": "run only a worker and a sender, with /metrics and health on --port (needs BOT_REDIS_URL)",
}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m bot", description="24/7 AI auto-responder for social media.")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        command = commands.add_parser(name, help=help_text, description=help_text)
        command.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
        command.add_argument(
            "--port",
            type=int,
            default=8081 if name == "worker" else 8080,
            help="port to listen on (default %(default)s)",
        )
    return root


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("aiohttp.access", "httpx", "httpx2", "openai._base_client"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        print("invalid settings:", *describe_errors(error), sep="\n  ", file=sys.stderr)
        return 2
    if args.command != "serve" and settings.redis_url is None:
        print(
            f"{args.command}: set BOT_REDIS_URL to the Redis shared by web and worker processes "
            "(only `serve` can use the embedded Redis)",
            file=sys.stderr,
        )
        return 2
    configure_logging(settings.log_level)
    try:
        app = create_app(settings, webhooks=args.command != "worker", workers=args.command != "web")
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    logging.getLogger("bot").info("starting command=%s host=%s port=%d", args.command, args.host, args.port)
    try:
        web.run_app(
            app,
            host=args.host,
            port=args.port,
            print=None,
            access_log=None,
            shutdown_timeout=settings.shutdown_timeout_s,
        )
    except RedisError as error:  # at start: say what is wrong instead of a traceback
        print(f"cannot use Redis (BOT_REDIS_URL): {error}", file=sys.stderr)
        return 1
    except OSError as error:  # the port is taken, or the address is not ours
        print(f"cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
