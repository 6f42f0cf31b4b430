"""The service's Redis for the one-shot commands (`users`, `export-feedback`): BOT_REDIS_URL, or serve's embedded
Redis, started for the moment if serve isn't running."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.config import Settings
from bot.embedded import EmbeddedRedis
from bot.errors import ConfigError


@asynccontextmanager
async def service_redis(settings: Settings) -> AsyncIterator[Redis]:
    """A client of the configured Redis, or of serve's embedded one; an unreachable server is a ConfigError."""
    embedded = None
    url = settings.redis_url
    try:
        if url is None:
            embedded = EmbeddedRedis(settings.data_dir / "redis")
            url = embedded.url if await embedded.answers() else await embedded.start()
        redis = Redis.from_url(url, decode_responses=True)
        try:
            try:
                await redis.ping()
            except (RedisError, OSError) as error:  # say what is wrong instead of a traceback
                raise ConfigError(f"cannot use Redis (BOT_REDIS_URL): {error}") from error
            yield redis
        finally:
            await redis.aclose()
    finally:
        if embedded is not None:  # stop() leaves a server it didn't start (a running serve's) alone
            await embedded.stop()
