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
        #: (key, writer) -> the last write seq applied
        self.marks: dict[tuple[str, str], int] = {}

    def _applied(self, key: str, batch) -> bool:
        return batch is not None and self.marks.get((key, batch.writer), 0) >= batch.seq

    def _add(self, key: str, total: float, expires_at: int, batch) -> None:
        self.values[key] = (total, expires_at)
        if batch is not None:
            self.marks[(key, batch.writer)] = batch.seq

    def _current(self, key: str) -> float:
        value, expires_at = self.values.get(key, (0.0, 0))
        return value if expires_at > self._clock() else 0.0

    def try_add(self, key: str, amount: float, limit: float, expires_at: int, batch=None) -> tuple[bool, float]:
        with self._lock:
            self.writes += 1
            current = self._current(key)
            if self._applied(key, batch):
                return True, current
            if current + amount > limit:
                return False, current
            self._add(key, current + amount, expires_at, batch)
            return True, current + amount

    def add(self, key: str, amount: float, expires_at: int, batch=None) -> float:
        with self._lock:
            self.writes += 1
            if self._applied(key, batch):
                return self._current(key)
            total = self._current(key) + amount
            self._add(key, total, expires_at, batch)
            return total

    def read(self, keys: list[str]) -> dict[str, float]:
        with self._lock:
            return {key: self._current(key) for key in keys}
