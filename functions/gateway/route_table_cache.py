"""The gateway's copy of the route table, refreshed in the background every few seconds.

The request path only ever reads the in-memory copy (``get``): no DynamoDB call is made for a
request. A refresh that fails keeps the last good copy (a route stays where it was, which is
safe: spill and fallback still protect it) and is retried at the next interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from ..core.errors import StorageUnavailableError
from ..core.ports import RouteTableStore
from ..core.rate_limited_log import RateLimitedLog
from ..core.route_table import RouteEntry

log = logging.getLogger("tierup.gateway.route_table")
_failures = RateLimitedLog(log)


class RouteTableCache:
    def __init__(self, store: RouteTableStore, refresh_s: float) -> None:
        self._store = store
        self._refresh_s = refresh_s
        self._entries: dict[str, RouteEntry] = {}
        self._task: asyncio.Task | None = None
        #: monotonic time of the last successful refresh (None: never loaded)
        self.loaded_at: float | None = None

    def get(self, route: str) -> RouteEntry | None:
        return self._entries.get(route)

    def refresh(self) -> bool:
        """Read the whole table (synchronous: call it off the event loop). True on success."""
        try:
            entries = self._store.read_routes()
        except StorageUnavailableError:  # already logged, once per interval, where it happened
            return False
        except Exception:
            _failures.warning("refresh", "route table refresh failed; keeping the last good copy", exc_info=True)
            return False
        self._entries = entries  # one reference swap: readers see the old or the new table whole
        self.loaded_at = time.monotonic()
        return True

    async def start(self) -> None:
        """Load once before the gateway takes traffic, then keep refreshing in the background."""
        await asyncio.to_thread(self.refresh)
        self._task = asyncio.create_task(self._refresh_forever(), name="route-table-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            await asyncio.to_thread(self.refresh)
