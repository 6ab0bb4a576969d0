"""Backpressure: a bounded number in flight, a bounded wait, fast refusals past the queue."""

from __future__ import annotations

import asyncio

import pytest

from functions.core.config import GatewayConfig
from functions.core.errors import OverloadedError
from functions.gateway.admission import AdmissionGuard


def guard(in_flight: int, wait_ms: int, **kwargs) -> AdmissionGuard:
    return AdmissionGuard(GatewayConfig(**{"max-in-flight": in_flight, "max-wait-ms": wait_ms}), **kwargs)


def test_waiters_get_freed_slots_in_order_and_in_flight_never_exceeds_the_cap():
    admission = guard(2, 1000)
    order: list[int] = []
    peak = 0

    async def request(n: int) -> None:
        nonlocal peak
        await admission.admit(None)
        peak = max(peak, admission.in_flight)
        order.append(n)
        await asyncio.sleep(0.01)
        await admission.release(None)

    async def run():
        await asyncio.gather(*(request(n) for n in range(4)))

    asyncio.run(run())
    assert order == [0, 1, 2, 3] and peak == 2 and admission.in_flight == 0


def test_a_request_that_waits_past_max_wait_gets_503_with_retry_after():
    admission = guard(1, 20)

    async def run():
        await admission.admit(None)
        with pytest.raises(OverloadedError) as refused:
            await admission.admit(None)
        return refused.value

    error = asyncio.run(run())
    assert error.status == 503 and error.headers["retry-after"] == "1"
    assert admission.in_flight == 1  # the timed-out waiter took nothing


def test_past_the_queue_refusal_is_immediate_429():
    admission = guard(1, 10_000, max_queued=1)

    async def run():
        await admission.admit(None)
        waiting = asyncio.ensure_future(admission.admit(None))
        await asyncio.sleep(0)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(OverloadedError) as refused:
            await admission.admit(None)
        elapsed = loop.time() - started
        await admission.release(None)
        await waiting
        return refused.value, elapsed

    error, elapsed = asyncio.run(run())
    assert error.status == 429 and elapsed < 0.05
    assert admission.in_flight == 1


def test_a_cancelled_waiter_does_not_leak_a_slot():
    admission = guard(1, 10_000)

    async def run():
        await admission.admit(None)
        waiting = asyncio.ensure_future(admission.admit(None))
        await asyncio.sleep(0)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        await admission.release(None)
        assert admission.in_flight == 0
        await admission.admit(None)  # the slot is free again

    asyncio.run(run())
