"""Backpressure: a per-instance cap on requests in flight, with a bounded wait.

Up to ``max-in-flight`` requests run at once; the next ``max-in-flight`` wait, first come first
served, for at most ``max-wait-ms`` (then 503 + Retry-After); past that queue a request is
refused at once with 429 + Retry-After. All of it is in-process: a refusal touches neither the
provider nor DynamoDB. A finishing request hands its slot straight to the oldest waiter.
"""

from __future__ import annotations

import asyncio
import collections

from ..core.config import GatewayConfig
from ..core.context import RequestContext
from ..core.errors import OverloadedError


class AdmissionGuard:
    name = "admission"

    def __init__(self, config: GatewayConfig, *, max_queued: int | None = None) -> None:
        self._limit = config.max_in_flight
        self._wait_s = config.max_wait_ms / 1000.0
        self._max_queued = config.max_in_flight if max_queued is None else max_queued
        self._in_flight = 0
        self._waiters: collections.deque[asyncio.Future] = collections.deque()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def admit(self, ctx: RequestContext) -> None:
        if self._in_flight < self._limit and not self._waiters:
            self._in_flight += 1
            return
        if len(self._waiters) >= self._max_queued or self._wait_s <= 0:
            raise OverloadedError(f"the gateway is at capacity ({self._limit} requests in flight and "
                                  f"{len(self._waiters)} waiting); retry shortly", status=429,
                                  retry_after_s=max(1.0, self._wait_s))
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self._wait_s)
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self._hand_on()  # the slot arrived just as this request gave up: pass it on
            else:
                waiter.cancel()
                self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise OverloadedError(f"the gateway is at capacity: no slot freed within "
                                      f"{self._wait_s * 1000:.0f} ms (max-wait-ms)", status=503,
                                      retry_after_s=1.0) from None
            raise

    def _hand_on(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on: in_flight is unchanged
                return
        self._in_flight -= 1

    async def release(self, ctx: RequestContext) -> None:
        self._hand_on()
