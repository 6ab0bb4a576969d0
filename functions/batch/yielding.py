"""The in-process batch worker gives way to the gateway's own requests.

In ``tierup dev`` (``TIERUP_BATCH_WORKER=in-process``) batch lines run on the gateway's event loop
and CPU: every step of a line (parsing, pricing, its store calls) is a step an interactive request
may wait behind, and one event loop cannot preempt it. So the worker yields instead: it runs
``line-concurrency`` lines at once only while the instance serves no interactive request, and one
line at a time while it does, looking again after a short pause that doubles while it waits. A
batch still drains under steady traffic, at full speed in the gaps.

The count it reads is the admission guard's (every request in flight at this instance) less the
batch lines it admitted (``BatchAdmission`` wraps the guard in the worker's pipeline only). On AWS
the worker is a function of its own, with its own CPU (``functions/batch_handler.py``), and the
queue poller's process serves no interactive request: there the count is always zero. Capacity
shared with users beyond the CPU, a route's reserved GPUs, is guarded per line by ``BatchRouter``
(``routing.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import asynccontextmanager

from ..core.context import RequestContext

#: first and longest pause of a line waiting for its turn
MIN_WAIT_S = 0.02
MAX_WAIT_S = 0.5


class BatchAdmission:
    """The gateway's admission guard as the worker's pipeline passes it: the same slots, and a count
    of the batch lines holding one."""

    name = "admission"

    def __init__(self, inner) -> None:
        self._inner = inner
        self.admitted = 0

    @property
    def in_flight(self) -> int:
        return self._inner.in_flight

    async def admit(self, ctx: RequestContext) -> None:
        await self._inner.admit(ctx)
        self.admitted += 1

    async def release(self, ctx: RequestContext) -> None:
        self.admitted -= 1
        await self._inner.release(ctx)

    def interactive(self) -> int:
        """Requests in flight at this instance that are not batch lines."""
        return max(0, self._inner.in_flight - self.admitted)


class InteractiveFirst:
    def __init__(self, interactive: Callable[[], int], *, busy_lines: int = 1) -> None:
        """``interactive()``: the interactive requests in flight at this instance."""
        self._interactive = interactive
        self._busy_lines = busy_lines
        self._running = 0

    @asynccontextmanager
    async def turn(self, limit: int):
        """Hold a line until it may run: while fewer than ``limit`` lines run and the instance is
        otherwise idle, or fewer than ``busy_lines`` while it serves interactive requests."""
        pause = MIN_WAIT_S
        while self._running >= (limit if self._interactive() == 0 else self._busy_lines):
            await asyncio.sleep(pause)
            pause = min(MAX_WAIT_S, pause * 2)
        self._running += 1
        try:
            yield
        finally:
            self._running -= 1
