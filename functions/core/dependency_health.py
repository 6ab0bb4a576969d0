"""What the gateway last heard from each dependency it calls (DynamoDB), for ``/health``.

Every call's outcome is noted (the AWS clients report it); a dependency whose latest call
failed or timed out counts as unavailable until a later call succeeds. No probing here and no
I/O: ``functions.gateway.health`` decides when to ask again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DependencyState:
    ok: bool
    #: monotonic time of the latest outcome
    at: float
    #: the latest failure, in one line (empty when ok)
    error: str = ""
    #: monotonic time since when the dependency has been failing (its first failure in a row)
    failing_since: float | None = None


class DependencyHealth:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._states: dict[str, DependencyState] = {}

    def succeeded(self, name: str) -> None:
        state = self._states.get(name)
        if state is not None and state.ok:
            # the hot path: one outcome per storage call, so no lock and no new object when nothing
            # changes but the time (a stale ``at`` only delays the next probe, never a report)
            return
        with self._lock:
            self._states[name] = DependencyState(ok=True, at=self._monotonic())

    def failed(self, name: str, error: str) -> None:
        now = self._monotonic()
        with self._lock:
            previous = self._states.get(name)
            since = previous.failing_since if previous is not None and not previous.ok else now
            self._states[name] = DependencyState(ok=False, at=now, error=error[:300], failing_since=since)

    def state(self, name: str) -> DependencyState | None:
        return self._states.get(name)

    def unavailable(self) -> dict[str, DependencyState]:
        """Dependencies whose latest call failed."""
        return {name: state for name, state in list(self._states.items()) if not state.ok}

    def names(self) -> list[str]:
        return sorted(self._states)
