"""One background task that runs a step over and over, shared by the in-process batch pollers
(``QueuePoller``, ``BedrockJobPoller``) so start, stop and failure handling live in one place."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("tierup.batch")


class BackgroundLoop:
    """Calls ``step()`` until stopped, then sleeps ``pause_s(result)`` seconds (``result`` is None
    when the step raised). A failing step is logged and the loop goes on: each step is safe to run
    again, so the next one retries. Only cancellation (``stop``) ends it."""

    def __init__(self, step: Callable[[], Awaitable[object]], *, name: str, failure: str,
                 pause_s: Callable[[object], float]) -> None:
        self._step, self._name, self._failure, self._pause_s = step, name, failure, pause_s
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                result = await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(self._failure)
                result = None
            pause_s = self._pause_s(result)
            if pause_s > 0:
                await asyncio.sleep(pause_s)
