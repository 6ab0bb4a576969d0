"""How a store outage leaves an adapter: ``StorageUnavailableError`` (a 503 with
``code: storage_unavailable`` and Retry-After), logged once per interval per store, never once
per request. Imports nothing heavy: the request path uses it without loading botocore."""

from __future__ import annotations

import logging

from ..core.errors import StorageUnavailableError
from ..core.rate_limited_log import RateLimitedLog

outage_log = RateLimitedLog(logging.getLogger("tierup.storage"))


def storage_unavailable(store: str, operation: str, summary: str) -> StorageUnavailableError:
    outage_log.warning(store, "storage unavailable: %s %s failed: %s", store, operation, summary)
    return StorageUnavailableError(f"the gateway's {store} store is unavailable; try again shortly")
