"""A store that stops answering costs a request about one deadline, however many store calls or
lock waits stand between it and its answer."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from functions.adapters import store_calls
from functions.adapters.store_calls import call_store
from functions.core.errors import StorageUnavailableError


class FrozenStore:
    def __init__(self) -> None:
        self.calls = 0
        self.thawed = threading.Event()

    def write(self) -> str:
        self.calls += 1
        if not self.thawed.is_set():
            self.thawed.wait(5)
        return "written"


def test_calls_after_a_failure_fail_at_once_then_the_store_is_tried_again(monkeypatch):
    monkeypatch.setattr(store_calls, "FAIL_FAST_S", 0.3)
    store = FrozenStore()

    async def requests() -> list[float]:
        lock = asyncio.Lock()  # as a lease's lock: each request makes its store call holding it

        async def one() -> float:
            started = time.monotonic()
            with pytest.raises(StorageUnavailableError):
                async with lock:
                    await call_store(store.write, store="quota", deadline_s=0.2)
            return time.monotonic() - started

        return await asyncio.gather(*(one() for _ in range(8)))

    waits = asyncio.run(requests())
    assert store.calls == 1  # the other seven did not wait a deadline each behind the lock
    assert max(waits) < 0.2 + 0.15
    store.thawed.set()
    time.sleep(0.35)
    assert asyncio.run(call_store(store.write, store="quota", deadline_s=0.2)) == "written"


def test_one_store_failing_does_not_fail_another(monkeypatch):
    monkeypatch.setattr(store_calls, "FAIL_FAST_S", 5.0)
    frozen, healthy = FrozenStore(), FrozenStore()
    healthy.thawed.set()
    with pytest.raises(StorageUnavailableError):
        asyncio.run(call_store(frozen.write, store="quota", deadline_s=0.05))
    assert asyncio.run(call_store(healthy.write, store="spend", deadline_s=0.5)) == "written"
    frozen.thawed.set()
