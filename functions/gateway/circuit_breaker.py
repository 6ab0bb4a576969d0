"""A circuit breaker per tier and route: stop sending traffic where it keeps failing.

    closed ──N consecutive failures──> open ──cool-off over──> half-open ──trial ok──> closed
                                         ^                         │
                                         └──────trial failed───────┘

In half-open, one trial request is let through at a time; the others keep going elsewhere.
The clock is injected (``time.monotonic`` by default) so tests can drive it. No I/O here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

BreakerState = Literal["closed", "open", "half-open"]


class CircuitBreaker:
    def __init__(self, failures_to_open: int, cooloff_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = failures_to_open
        self._cooloff_s = cooloff_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        #: when the half-open trial was let through; a trial never reported frees its slot after a cool-off
        self._trial_at: float | None = None

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._clock() - self._opened_at >= self._cooloff_s else "open"

    def allow(self) -> bool:
        """May a request be sent now? In half-open, claims the single trial slot."""
        state = self.state
        if state == "closed":
            return True
        if state == "half-open":
            now = self._clock()
            if self._trial_at is None or now - self._trial_at >= self._cooloff_s:
                self._trial_at = now
                return True
        return False

    def record(self, ok: bool) -> None:
        self._trial_at = None
        if ok:
            self._failures = 0
            self._opened_at = None
            return
        self._failures += 1
        if self._opened_at is not None or self._failures >= self._threshold:
            # A failed trial re-opens for a full cool-off.
            self._opened_at = self._clock()
