"""A fake of the GpuControl port: replicas become ready ``warmup_s`` after they are asked for."""

from __future__ import annotations


class FakeGpuControl:
    def __init__(self, clock, warmup_s: float = 0.0) -> None:
        self._clock = clock
        self._warmup_s = warmup_s
        self.min_replicas: dict[str, int] = {}
        self.calls: list[tuple[str, int]] = []
        self._ready_at: dict[str, list[float]] = {}

    def set_min_replicas(self, route: str, replicas: int) -> None:
        self.calls.append((route, replicas))
        self.min_replicas[route] = replicas
        ready = self._ready_at.setdefault(route, [])
        now = self._clock()
        while len(ready) < replicas:
            ready.append(now + self._warmup_s)
        del ready[replicas:]

    def ready_replicas(self, route: str) -> int:
        now = self._clock()
        return sum(1 for at in self._ready_at.get(route, []) if at <= now)

    def lose_replicas(self, route: str, count: int, back_in_s: float | None = None) -> None:
        """``count`` ready replicas stop answering; with ``back_in_s`` they restart (as Modal
        restarts containers to keep ``min_containers``), else they are gone."""
        ready = self._ready_at.get(route, [])
        now = self._clock()
        for index in range(min(count, len(ready))):
            ready[-1 - index] = now + back_in_s if back_in_s is not None else float("inf")

    def redeploy(self) -> None:
        """What ``modal deploy`` does: every function's min_containers back to the deployed 0.
        Running containers stay until they idle out, so readiness does not change at once."""
        for route in self.min_replicas:
            self.min_replicas[route] = 0
