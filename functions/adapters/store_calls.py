"""A blocking store call made from the event loop, with a deadline, failing fast in an outage.

Stores are synchronous (boto3); the request path runs them in a worker thread. botocore's own
timeouts bound a call (``functions.adapters.aws``), and this deadline bounds it again from the
event loop, whatever the thread is stuck on: the request is answered (503 storage_unavailable)
when the deadline passes, even if the thread is still waiting. Use it for every store call a
request awaits.

A deadline alone is not enough: a request may make several store calls in a row, or wait on a
lease's lock while another request's call runs out its deadline, and each such wait would add
one more deadline. So once a store's call has failed, every call to that store in the
next ``FAIL_FAST_S`` fails at once; the first call after that tries the store again. In an outage a request therefore
waits for at most about one deadline.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from typing import TypeVar

from ..core.errors import StorageUnavailableError
from .aws import STORAGE_CALL_BOUND_S
from .storage_outage import storage_unavailable

T = TypeVar("T")

#: a request waits at most this long for one store call (botocore gives up a little earlier)
STORAGE_DEADLINE_S = STORAGE_CALL_BOUND_S + 0.5
#: after a failed store call, store calls fail at once for this long
FAIL_FAST_S = 1.0


#: store adapter (the object whose method is called) -> when its calls may try the store again
_failing_until: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _store_of(function: Callable) -> object:
    """The adapter a store method belongs to (its class, for an adapter that cannot be hashed)."""
    adapter = getattr(function, "__self__", function)
    try:
        hash(adapter)
    except TypeError:
        return type(adapter)
    return adapter


async def call_store(function: Callable[..., T], *args, store: str, deadline_s: float = STORAGE_DEADLINE_S) -> T:
    """``function(*args)`` in a worker thread; ``StorageUnavailableError`` past the deadline, or
    at once while a recent failure says the store is not answering."""
    name = getattr(function, "__name__", "call")
    adapter = _store_of(function)
    if time.monotonic() < _failing_until.get(adapter, 0.0):
        raise storage_unavailable(store, name, "its last call failed moments ago")
    try:
        return await asyncio.wait_for(asyncio.to_thread(function, *args), deadline_s)
    except TimeoutError:
        _failing_until[adapter] = time.monotonic() + FAIL_FAST_S
        raise storage_unavailable(store, name, f"no answer within {deadline_s:g}s") from None
    except StorageUnavailableError:
        _failing_until[adapter] = time.monotonic() + FAIL_FAST_S
        raise
