"""Policies change while the service runs: on SIGHUP, or when a file in policies/ changes, they are read
again. A valid edit applies to the next batch; an invalid one is reported (file, place, reason) and the
running policy stays, so a typo never takes the bot down or leaves it without rules."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from pathlib import Path

from bot.errors import ConfigError
from bot.metrics import Metrics
from bot.policy.load import load_policy
from bot.policy.schema import BrandPolicy

logger = logging.getLogger(__name__)
# What asyncio raises where it can't handle signals (off the main thread, or not on Unix): then SIGHUP
# simply doesn't reload, and the file check still does.
_NO_SIGNALS = (NotImplementedError, RuntimeError, ValueError)


class PolicyWatcher:
    def __init__(
        self, directory: Path, apply: Callable[[BrandPolicy], None], metrics: Metrics, interval: float = 2.0
    ) -> None:
        self.directory = directory
        self.apply = apply
        self.metrics = metrics
        self.interval = interval
        self.asked = asyncio.Event()
        self._seen = self._fingerprint()

    def _fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        seen = []
        for path in sorted(self.directory.glob("*.yaml")):
            with contextlib.suppress(FileNotFoundError):  # removed between listing and looking: not there
                stat = path.stat()
                seen.append((path.name, stat.st_mtime_ns, stat.st_size))
        return tuple(seen)

    async def run(self, stopping: asyncio.Event) -> None:
        """Check every `interval` seconds, or at once on SIGHUP, until `stopping` is set."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(*_NO_SIGNALS):
            loop.add_signal_handler(signal.SIGHUP, self.asked.set)
        try:
            while not stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.asked.wait(), self.interval)
                seen = self._fingerprint()
                if self.asked.is_set() or seen != self._seen:
                    self.asked.clear()
                    self._seen = seen
                    await self.reload()
        finally:
            with contextlib.suppress(*_NO_SIGNALS):
                loop.remove_signal_handler(signal.SIGHUP)

    async def reload(self) -> bool:
        try:
            policy = await asyncio.to_thread(load_policy, self.directory)
        except (ConfigError, OSError) as error:  # a bad edit or an unreadable file: the running policy stays
            self.metrics.policy_reloads.labels("rejected").inc()
            logger.error("policy reload rejected, the running policy stays: %s", error)
            return False
        self.apply(policy)
        self.metrics.policy_reloads.labels("applied").inc()
        logger.info("policy reloaded from %s", self.directory)
        return True
