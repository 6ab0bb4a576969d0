"""When an instance writes what it has summed in memory (cache stats, calibration observations):
at most once every ``every_s``, in the background, so that counting costs no write per request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


class FlushTimer:
    def __init__(self, clock: Callable[[], float], every_s: float) -> None:
        self._clock = clock
        self._every_s = every_s
        self._last = clock()
        #: running flushes: the event loop holds tasks only weakly, so one not kept here may vanish
        self._tasks: set[asyncio.Task] = set()

    def start_if_due(self, flush: Callable[[], Awaitable[None]]) -> None:
        """Start ``flush()`` in the background when ``every_s`` has passed since the last one began."""
        if self._clock() - self._last >= self._every_s:
            task = asyncio.get_running_loop().create_task(flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def began(self) -> None:
        """A flush begins now (called by the flush itself, which may also run on demand)."""
        self._last = self._clock()
