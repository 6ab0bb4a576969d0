"""An in-memory CounterStore: the same contract as the DynamoDB one, without I/O."""

from __future__ import annotations

import threading
import time


class FakeCounterStore:
    def __init__(self, clock=time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.values: dict[str, tuple[float, int]] = {}
        self.writes = 0

    def _current(self, key: str) -> float:
        value, expires_at = self.values.get(key, (0.0, 0))
        return value if expires_at > self._clock() else 0.0

    def try_add(self, key: str, amount: float, limit: float, expires_at: int) -> tuple[bool, float]:
        with self._lock:
            self.writes += 1
            current = self._current(key)
            if current + amount > limit:
                return False, current
            self.values[key] = (current + amount, expires_at)
            return True, current + amount

    def add(self, key: str, amount: float, expires_at: int) -> float:
        with self._lock:
            self.writes += 1
            total = self._current(key) + amount
            self.values[key] = (total, expires_at)
            return total

    def read(self, keys: list[str]) -> dict[str, float]:
        with self._lock:
            return {key: self._current(key) for key in keys}
