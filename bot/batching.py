"""Micro-batching: calls that arrive while a run is in flight go together into the next run.

Two of the service's costs are per call rather than per item: a model forward pass, and a Redis round trip
made through redis-py (tens of microseconds of Python a command). Under load, callers queue up behind the
current run and the next run takes them all, so the cost is shared; with one caller, it runs at once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Out = TypeVar("Out")
Part = TypeVar("Part")


class MicroBatcher(Generic[Item, Out, Part]):
    """`run` does the work for a list of items; `part(out, start, stop)` is one caller's share of its result."""

    def __init__(
        self,
        run: Callable[[list[Item]], Awaitable[Out]],
        part: Callable[[Out, int, int], Part],
        max_items: int,
        name: str,
    ) -> None:
        self._run = run
        self._part = part
        self._max_items = max_items
        self._name = name
        self._queue: deque[tuple[list[Item], asyncio.Future[Part]]] = deque()
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, items: Sequence[Item]) -> Part:
        """This caller's share of the run that takes its items; the run's exception if it fails."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Part] = loop.create_future()
        self._queue.append((list(items), future))
        if self._runner is None or self._runner.done() or self._runner.get_loop() is not loop:
            self._runner = loop.create_task(self._drain(), name=self._name)
        return await future

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let the callers of this loop tick join the first run
        while self._queue:
            taken: list[tuple[list[Item], asyncio.Future[Part]]] = []
            size = 0
            while self._queue and (not taken or size + len(self._queue[0][0]) <= self._max_items):
                taken.append(self._queue.popleft())
                size += len(taken[-1][0])
            try:
                out = await self._run([item for items, _ in taken for item in items])
            except Exception as error:  # every caller of this run gets the failure; the next run goes on
                for _, future in taken:
                    if not future.done():
                        future.set_exception(error)
                continue
            offset = 0
            for items, future in taken:
                if not future.done():  # its caller may have been cancelled meanwhile
                    future.set_result(self._part(out, offset, offset + len(items)))
                offset += len(items)
