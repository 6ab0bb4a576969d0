"""A blocking iterator read on its own thread: order, errors, backpressure, early close."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from functions.adapters.thread_stream import iterate_in_thread


class CountingSource:
    """Yields 0..n-1 and records how far it was read and whether it was closed."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.read = 0
        self.closed = threading.Event()
        self.reader_thread: str | None = None

    def __iter__(self):
        self.reader_thread = threading.current_thread().name
        for i in range(self.n):
            self.read = i + 1
            yield i

    def close(self) -> None:
        self.closed.set()


def test_items_arrive_in_order_read_off_the_loop_thread_and_the_source_is_closed():
    source = CountingSource(500)

    async def run():
        return [item async for item in iterate_in_thread(lambda: source, close=CountingSource.close,
                                                         thread_name="reader-under-test")]

    assert asyncio.run(run()) == list(range(500))
    assert source.reader_thread == "reader-under-test"
    assert source.closed.wait(timeout=2)


def test_errors_from_opening_or_reading_reach_the_consumer():
    def broken():
        yield 1
        raise ValueError("bad frame")

    async def run(opener):
        return [item async for item in iterate_in_thread(opener)]

    with pytest.raises(ValueError, match="bad frame"):
        asyncio.run(run(broken))
    with pytest.raises(KeyError):
        asyncio.run(run(lambda: {}["missing"]))


def test_a_slow_consumer_holds_the_reader_back_to_the_buffer_size():
    source = CountingSource(10_000)

    async def run():
        stream = iterate_in_thread(lambda: source, close=CountingSource.close, max_buffered=8)
        assert await anext(stream) == 0
        await asyncio.sleep(0.3)  # the reader runs ahead only as far as the buffer allows
        read_ahead = source.read
        await stream.aclose()
        return read_ahead

    assert asyncio.run(run()) <= 1 + 8 + 1
    assert source.closed.wait(timeout=2)  # the reader, waiting for room, noticed the consumer left


def test_leaving_early_closes_a_source_that_is_blocked_waiting_for_data():
    released = threading.Event()

    class QuietSource:
        def __init__(self) -> None:
            self.closed = threading.Event()

        def __iter__(self):
            yield "first"
            self.closed.wait(timeout=10)  # a model that went quiet
            released.set()
            raise ConnectionError("closed under the reader")

        def close(self) -> None:
            self.closed.set()

    source = QuietSource()

    async def run():
        stream = iterate_in_thread(lambda: source, close=QuietSource.close)
        first = await anext(stream)
        started = time.monotonic()
        await stream.aclose()
        return first, time.monotonic() - started

    first, close_s = asyncio.run(run())
    assert first == "first"
    assert close_s < 1.0  # closing never waits for the reader
    assert released.wait(timeout=2)
