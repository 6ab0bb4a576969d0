"""Each instance's view of its routes' calibrations (``max-wrong-hit-rate``): read from the store at
most every ``REFRESH_S`` per route, with this instance's own observations added at once and written
to the store in batches (one ``ADD`` per route every ``FLUSH_S``), so a busy route costs a bounded
number of writes whatever its traffic. The measured wrong share is published as a metric on every
refresh (``CacheWrongHitRate`` and its 95% bounds, per ``Route``).

The learning itself is core/cache/calibration.py; this module only moves counts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..adapters.store_calls import call_store
from ..core.cache.calibration import Calibration
from ..core.ports import CacheStore
from ..core.rate_limited_log import RateLimitedLog, trace_of
from .flush_timer import FlushTimer

log = logging.getLogger("tierup.cache")
_failures = RateLimitedLog(log)

#: a route's calibration is read from the store at most this often per instance
REFRESH_S = 30.0
#: observations are written to the store at most this often per instance
FLUSH_S = 10.0


def calibration_key(route: str, embedder_name: str) -> str:
    """Similarities are on the embedder's own scale: another embedder starts a new calibration."""
    return f"{route}#{embedder_name}"


@dataclass(slots=True)
class _Held:
    stored: Calibration
    read_at: float


class CalibrationBook:
    def __init__(self, store: CacheStore, clock=time.monotonic,
                 publish: Callable[[str, Calibration], None] | None = None) -> None:
        self._store = store
        self._clock = clock
        self._publish = publish
        self._held: dict[str, _Held] = {}
        #: observations not yet in the store (also counted in what ``current`` returns)
        self._pending: dict[str, Calibration] = {}
        self._flushes = FlushTimer(clock, FLUSH_S)

    async def current(self, key: str) -> Calibration:
        """The stored observations (refreshed when stale) plus this instance's unflushed ones."""
        held = self._held.get(key)
        now = self._clock()
        if held is None or now - held.read_at >= REFRESH_S:
            right, wrong = await call_store(self._store.read_calibration, key, store="cache")
            held = self._held[key] = _Held(Calibration(right, wrong), now)
            if self._publish is not None:
                self._publish(key, _with(held.stored, self._pending.get(key)))
        return _with(held.stored, self._pending.get(key))

    def observe(self, key: str, similarity: float, agreed: bool) -> None:
        self._pending.setdefault(key, Calibration()).observe(similarity, agreed)
        self._flushes.start_if_due(self.flush)

    async def flush(self) -> None:
        pending, self._pending = self._pending, {}
        self._flushes.began()
        for key, added in pending.items():
            try:
                await call_store(self._store.add_calibration, key, added.right, added.wrong, store="cache")
            except Exception as exc:
                _failures.warning("calibration", "cache calibration of %s was not saved", key, exc_info=trace_of(exc))
                continue
            held = self._held.get(key)
            if held is not None:  # what this instance wrote is now part of what it holds
                held.stored.merge(added)


def _with(stored: Calibration, pending: Calibration | None) -> Calibration:
    if pending is None:
        return stored
    combined = stored.copy()
    combined.merge(pending)
    return combined
