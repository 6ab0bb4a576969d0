"""The usage ledger as the gateway's recorder: every request, admitted or refused, is one entry.

``record`` only appends to a buffer (no I/O on the request path). ``flush``, run in the
background every ``flush-interval-s`` and once more at shutdown, writes the entries' per-minute
aggregates (route and tenant), their per-request records and their EMF metrics. A failed flush
keeps its entries for the next one, so none is lost while the instance lives.
"""

from __future__ import annotations

import asyncio
import logging

from ..core.context import RequestContext
from ..core.usage_ledger import LedgerEntry, aggregate, entry_from

log = logging.getLogger("tierup.ledger")

#: entries kept while DynamoDB cannot be written, before the oldest are dropped (and logged)
MAX_BUFFERED = 200_000


class UsageLedger:
    def __init__(self, aggregates, records=None, metrics=None) -> None:
        self._aggregates = aggregates
        self._records = records
        self._metrics = metrics
        self._buffer: list[LedgerEntry] = []
        self._lock = asyncio.Lock()

    def record(self, ctx: RequestContext) -> None:
        self._buffer.append(entry_from(ctx))

    async def flush(self) -> None:
        async with self._lock:
            entries, self._buffer = self._buffer, []
            if not entries:
                return
            try:
                await asyncio.to_thread(self._write, entries)
            except Exception:
                log.exception("could not write %d ledger entries; retrying next flush", len(entries))
                self._buffer[:0] = entries
                if len(self._buffer) > MAX_BUFFERED:
                    dropped = len(self._buffer) - MAX_BUFFERED
                    del self._buffer[:dropped]
                    log.error("dropped the %d oldest ledger entries", dropped)

    def _write(self, entries: list[LedgerEntry]) -> None:
        self._aggregates.add(aggregate(entries))
        if self._records is not None:
            self._records.put_many(entries)
        if self._metrics is not None:
            self._metrics.emit(entries)
