"""``GET /health``: is this instance up, and do the stores it depends on answer?

    200 {"status": "ok", "dependencies": {"dynamodb": "ok"}}
    503 {"status": "degraded", "dependencies": {"dynamodb": {"status": "unavailable",
         "error": "...", "failing_for_s": 12.3}}}

Passive first: the AWS clients report every DynamoDB call's outcome (``DependencyHealth``), so a
store that stopped answering shows here as soon as a request or a background flush met it,
without a probe per health check. While the latest outcome is a failure, a health check asks
again with one bounded probe (at most one at a time, at most every ``PROBE_EVERY_S``), so a
recovered store shows even without traffic. With no outcome yet (a fresh instance), nothing is
probed and the answer is 200: the Lambda Web Adapter's readiness check must let an instance
start, and then answer 503 ``storage_unavailable`` itself, whatever the store does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson

from ..adapters.store_calls import call_store
from ..core.dependency_health import DependencyHealth

#: a failing dependency is probed again at most this often
PROBE_EVERY_S = 2.0
#: how long a health check waits for its probe
PROBE_DEADLINE_S = 1.0


class HealthCheck:
    def __init__(self, health: DependencyHealth | None = None, probe: Callable[[], object] | None = None, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._health = health
        self._probe = probe
        self._monotonic = monotonic
        self._probed_at = float("-inf")
        self._probing: asyncio.Task | None = None

    async def _probe_once(self) -> None:
        try:
            await call_store(self._probe, store="health", deadline_s=PROBE_DEADLINE_S)
        except Exception:  # the outcome is recorded by the client (or is the timeout: still failing)
            pass

    async def report(self) -> tuple[int, bytes]:
        if self._health is None:
            return 200, b'{"status":"ok"}'
        if self._health.unavailable() and self._probe is not None:
            if self._probing is None or self._probing.done():
                if self._monotonic() - self._probed_at >= PROBE_EVERY_S:
                    self._probed_at = self._monotonic()
                    self._probing = asyncio.ensure_future(self._probe_once())
            if self._probing is not None and not self._probing.done():
                await asyncio.wait({self._probing}, timeout=PROBE_DEADLINE_S)
        now = self._monotonic()
        dependencies: dict[str, object] = {}
        for name in self._health.names():
            state = self._health.state(name)
            if state is None or state.ok:
                dependencies[name] = "ok"
            else:
                dependencies[name] = {"status": "unavailable", "error": state.error,
                                      "failing_for_s": round(now - (state.failing_since or now), 1)}
        degraded = any(value != "ok" for value in dependencies.values())
        body = {"status": "degraded" if degraded else "ok", "dependencies": dependencies}
        return (503 if degraded else 200), orjson.dumps(body)
