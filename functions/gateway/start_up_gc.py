"""The cyclic garbage collector held off while the gateway starts.

Start-up allocates hundreds of thousands of objects that live as long as the process (modules,
classes, pydantic schemas, botocore's service models, the tokenizer's ranks), and nearly no
garbage. Each allocation burst sets off a collection that walks them all again and frees almost
nothing: about 60 ms of a full vCPU before the first ``/health`` answer, ten times that on a
small Lambda's share of one. So collections wait while the app is built (``asgi.py``: frozen
after it) and while start-up runs (``app.py``: collected once and frozen at its end). Never on
the request path: each pause ends with the block it wraps, leaving the collector as it found it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collections_paused() -> Iterator[None]:
    """No automatic collection inside the block; the collector's previous state after it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
