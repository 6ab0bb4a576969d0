"""A blocking iterator (boto3's event streams) read on its own thread and consumed as an async one.

boto3 is synchronous: reading a ``ConverseStream`` answer blocks on the network between events.
``iterate_in_thread`` opens and reads the stream on a dedicated daemon thread and hands each
item to the event loop through a bounded buffer, so the loop never blocks and a slow client
holds back the reader instead of growing memory. Closing the async generator early (the
client went away) stops the reader and closes the stream, which also wakes a reader blocked
on the socket.

It must never call the blocking iterator on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")

#: items read ahead of the consumer; past it the reader waits (backpressure on a slow client)
DEFAULT_MAX_BUFFERED = 64
#: how often a reader waiting for buffer room checks whether the consumer has gone
ROOM_POLL_S = 0.05

_ITEM, _END, _ERROR = "item", "end", "error"


async def iterate_in_thread(open_iterable: Callable[[], Iterable[T]], *,
                            close: Callable[[Iterable[T]], None] | None = None,
                            max_buffered: int = DEFAULT_MAX_BUFFERED,
                            thread_name: str = "stream-reader") -> AsyncIterator[T]:
    """Yield the items of ``open_iterable()``, which is called and read on a new thread.

    ``close(iterable)`` is called once reading stops for any reason (the end, an error, the
    consumer leaving); it must be safe to call twice and from the loop's thread. An exception
    raised by ``open_iterable`` or by the iteration is re-raised here, in the consumer.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    room = threading.Semaphore(max_buffered)
    stopped = threading.Event()
    opened: list[Iterable[T]] = []

    def hand_over(kind: str, value) -> bool:
        while not room.acquire(timeout=ROOM_POLL_S):
            if stopped.is_set():
                return False
        if stopped.is_set():
            return False
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
        except RuntimeError:  # the loop is closed: nobody is listening any more
            return False
        return True

    def close_quietly(iterable: Iterable[T]) -> None:
        if close is not None:
            try:
                close(iterable)
            except Exception:  # closing is best effort; the stream is being abandoned anyway
                pass

    def read() -> None:
        iterable = None
        try:
            iterable = open_iterable()
            opened.append(iterable)
            if stopped.is_set():  # the consumer left while the stream was being opened
                return
            for item in iterable:
                if stopped.is_set() or not hand_over(_ITEM, item):
                    return
            hand_over(_END, None)
        except BaseException as exc:  # handed to the consumer, who decides what it means
            if not stopped.is_set():
                hand_over(_ERROR, exc)
        finally:
            if iterable is not None:
                close_quietly(iterable)

    threading.Thread(target=read, name=thread_name, daemon=True).start()
    try:
        while True:
            kind, value = await queue.get()
            room.release()
            if kind == _END:
                return
            if kind == _ERROR:
                raise value
            yield value
    finally:
        stopped.set()
        # A reader blocked on the socket only wakes when the stream is closed under it.
        for iterable in opened:
            close_quietly(iterable)
