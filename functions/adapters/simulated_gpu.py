"""A simulated GPU control for ``tierup dev``: replicas that take their GPU type's warm-up to start.

There is no Modal locally, so the policy loop of ``tierup dev`` drives this instead: asking for
``N`` replicas starts the missing ones, each ready ``warmup-s`` (``[pricing.gpus.X]``) later on
the loop's clock; asking for fewer stops the youngest at once. The reserved tier's requests are
answered by the simulated provider, as every tier is in ``tierup dev``.

Only for the local demo; on AWS the policy Lambda uses the Modal adapter.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..core.config import TierupConfig


class SimulatedGpuControl:
    def __init__(self, config: TierupConfig, clock: Callable[[], float]) -> None:
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        #: per route, when each of its containers becomes ready (oldest first)
        self._ready_at: dict[str, list[float]] = {}

    def warmup_s(self, route: str) -> float:
        gpu = self._config.pricing.gpus.get(self._config.routes[route].gpu)
        return gpu.warmup_s if gpu else 0.0

    def set_min_replicas(self, route: str, replicas: int) -> None:
        with self._lock:
            containers = self._ready_at.setdefault(route, [])
            ready_at = self._clock() + self.warmup_s(route)
            containers.extend([ready_at] * max(0, replicas - len(containers)))
            del containers[replicas:]

    def ready_replicas(self, route: str) -> int:
        now = self._clock()
        with self._lock:
            return sum(1 for at in self._ready_at.get(route, []) if at <= now)

    def min_replicas(self, route: str) -> int:
        with self._lock:
            return len(self._ready_at.get(route, []))
