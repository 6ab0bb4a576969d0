"""Log a recurring failure once per interval, not once per occurrence.

A store that is down fails every request and every background flush; a log line (or a
traceback) for each would bury the one line that matters and cost more than the outage. The
first occurrence of each kind is logged at once; later ones within ``interval_s`` are counted
and reported with the next line of that kind. Thread-safe: adapters run in worker threads.

Logging only; no other I/O here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .errors import StorageUnavailableError

#: how often a failure of one kind is logged while it keeps recurring
DEFAULT_INTERVAL_S = 10.0


def trace_of(exc: BaseException) -> BaseException | None:
    """``exc_info`` for a failure: none for a store outage (logged, once per interval, where it
    happened: its traceback says nothing new), the exception itself for anything else (a bug)."""
    return None if isinstance(exc, StorageUnavailableError) else exc


class RateLimitedLog:
    def __init__(self, logger: logging.Logger, interval_s: float = DEFAULT_INTERVAL_S, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._interval = interval_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        #: kind -> (when last logged, occurrences not logged since)
        self._kinds: dict[str, tuple[float, int]] = {}

    def _due(self, kind: str) -> int | None:
        """None while the kind was logged within the interval, else how many went unlogged."""
        now = self._monotonic()
        with self._lock:
            last, suppressed = self._kinds.get(kind, (float("-inf"), 0))
            if now - last < self._interval:
                self._kinds[kind] = (last, suppressed + 1)
                return None
            if len(self._kinds) > 1000:  # kinds come from code paths, but never grow without bound
                self._kinds.clear()
            self._kinds[kind] = (now, 0)
            return suppressed

    def log(self, level: int, kind: str, message: str, *args, exc_info=None) -> bool:
        """Log ``message % args`` unless ``kind`` was logged within the interval; True if logged."""
        suppressed = self._due(kind)
        if suppressed is None:
            return False
        if suppressed:
            message += " (and %d more like it in the last %gs)"
            args = (*args, suppressed, self._interval)
        self._logger.log(level, message, *args, exc_info=exc_info)
        return True

    def warning(self, kind: str, message: str, *args, exc_info=None) -> bool:
        return self.log(logging.WARNING, kind, message, *args, exc_info=exc_info)

    def error(self, kind: str, message: str, *args, exc_info=None) -> bool:
        return self.log(logging.ERROR, kind, message, *args, exc_info=exc_info)
