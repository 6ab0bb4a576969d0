"""botocore's errors, translated where a DynamoDB store calls it: ``StorageUnavailableError``
(``functions.adapters.storage_outage``), logged once per interval per store.

Stores handle the answers they expect themselves (a conditional check that failed is an answer,
not a failure); anything else botocore raises, a refused connection, a timeout, a 5xx,
throttling or a rejected request, leaves the store as this one error.
"""

from __future__ import annotations

import functools

from botocore.exceptions import BotoCoreError, ClientError

from ..storage_outage import storage_unavailable


def describe(exc: BaseException) -> str:
    """One line for the log: botocore's error code (or exception class) and its message."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'ClientError')}: {error.get('Message', '')}"[:300]
    return f"{type(exc).__name__}: {exc}"[:300]


def translates_storage_errors(store: str):
    """Method decorator: botocore errors leave as ``StorageUnavailableError`` (``from`` them)."""

    def wrap(method):
        @functools.wraps(method)
        def call(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except (BotoCoreError, ClientError) as exc:
                raise storage_unavailable(store, method.__name__, describe(exc)) from exc

        return call

    return wrap
