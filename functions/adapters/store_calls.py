"""A blocking store call made from the event loop, with a deadline.

Stores are synchronous (boto3); the request path runs them in a worker thread. botocore's own
timeouts bound a call (``functions.adapters.aws``), and this deadline bounds it again from the
event loop, whatever the thread is stuck on: the request is answered (503 storage_unavailable)
when the deadline passes, even if the thread is still waiting. Use it for every store call a
request awaits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from .aws import STORAGE_CALL_BOUND_S
from .storage_outage import storage_unavailable

T = TypeVar("T")

#: a request waits at most this long for one store call (botocore gives up a little earlier)
STORAGE_DEADLINE_S = STORAGE_CALL_BOUND_S + 0.5


async def call_store(function: Callable[..., T], *args, store: str, deadline_s: float = STORAGE_DEADLINE_S) -> T:
    """``function(*args)`` in a worker thread; ``StorageUnavailableError`` past the deadline."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(function, *args), deadline_s)
    except TimeoutError:
        name = getattr(function, "__name__", "call")
        raise storage_unavailable(store, name, f"no answer within {deadline_s:g}s") from None
