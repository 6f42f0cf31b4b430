"""A circuit breaker for the language model: when it keeps failing, stop waiting on it.

closed: calls go through; `failures` failures in a row open it.
open: calls are refused at once (the pipeline drafts offline or sends to review) for `cooldown` seconds,
  or as long as a 429's Retry-After asks, whichever is longer.
half-open: after the cool-down one probe call goes through; its success closes the circuit, its failure
  opens it again. Other calls are refused while the probe is out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self,
        failures: int,
        cooldown: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[State], None] | None = None,
    ) -> None:
        self._threshold = failures
        self._cooldown = cooldown
        self._clock = clock
        self._on_change = on_change
        self._failures = 0
        self._open_until = 0.0
        self._probing = False
        self.state = State.CLOSED

    def allow(self) -> bool:
        """Whether a call may go out now; in half-open, only the one probe may."""
        if self.state is State.OPEN and self._clock() >= self._open_until:
            self._move(State.HALF_OPEN)
        if self.state is State.HALF_OPEN:
            if self._probing:
                return False
            self._probing = True
        return self.state is not State.OPEN

    def success(self) -> None:
        self._failures = 0
        self._probing = False
        self._move(State.CLOSED)

    def failure(self, wait: float = 0.0) -> None:
        """A failed call; `wait` (a Retry-After) keeps the circuit open at least that long once it opens."""
        self._failures += 1
        self._probing = False
        tripped = self.state is State.HALF_OPEN or self._failures >= self._threshold
        if tripped or wait > 0:
            self._open_until = self._clock() + max(self._cooldown if tripped else 0.0, wait)
            self._move(State.OPEN)

    def _move(self, state: State) -> None:
        if state is not self.state:
            self.state = state
            if self._on_change is not None:
                self._on_change(state)
