"""The response cache's per-route counters (hits, misses, savings, calibration), summed in each
instance's memory and added to the store in batches, so that counting costs no write per request."""

from __future__ import annotations

import logging
import time

from ..adapters.store_calls import call_store
from ..core.ports import CacheStore
from ..core.rate_limited_log import RateLimitedLog, trace_of
from .flush_timer import FlushTimer

log = logging.getLogger("tierup.cache")
_failures = RateLimitedLog(log)

#: per-instance hit/miss counters are written to the store at most this often
STATS_FLUSH_S = 10.0


class StatsCounter:
    """Hit/miss/saved counters per route, summed in memory and added to the store in batches."""

    def __init__(self, store: CacheStore, clock=time.time) -> None:
        self._store = store
        self._clock = clock
        self._pending: dict[str, dict[str, float]] = {}
        self._flushes = FlushTimer(clock, STATS_FLUSH_S)

    def count(self, route: str, status: str, saved_tokens: int = 0, saved_usd: float = 0.0) -> None:
        name = status.replace("-", "_")
        self.add(route, {name: 1, "tokens_saved": saved_tokens, "usd_saved": saved_usd})

    def add(self, route: str, counts: dict[str, float]) -> None:
        row = self._pending.setdefault(route, {})
        for name, value in counts.items():
            if value:
                row[name] = row.get(name, 0) + value
        self._flushes.start_if_due(self.flush)

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        self._flushes.began()
        day = time.strftime("%Y-%m-%d", time.gmtime(self._clock()))
        for route, counts in pending.items():
            try:
                await call_store(self._store.add_stats, route, day, counts, store="cache")
            except Exception as exc:
                _failures.warning("stats", "cache stats for route %s were not saved", route, exc_info=trace_of(exc))
