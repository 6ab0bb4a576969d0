"""The usage ledger as the gateway's recorder: every request, admitted or refused, is one entry.

``record`` only appends to a buffer (no I/O on the request path). ``flush``, run in the
background every ``flush-interval-s`` and once more at shutdown, hands the entries to each sink:
their per-minute aggregates (route and tenant), their per-request records and their EMF
metrics. Each sink keeps what it could not write for its next flush, so none is lost while the
instance lives, and only that sink tries again: one sink failing never makes the others write the
same entries twice. Metrics are the exception: what could not be emitted is dropped, not retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.context import RequestContext
from ..core.usage_ledger import LedgerEntry, aggregate, entry_from

log = logging.getLogger("tierup.ledger")

#: entries a sink keeps while it cannot write, before the oldest are dropped (and logged)
MAX_BUFFERED = 200_000


@dataclass
class _Sink:
    name: str
    write: Callable[[list[LedgerEntry]], None]
    retry: bool = True
    pending: list[LedgerEntry] = field(default_factory=list)

    def write_pending(self) -> None:
        """Write what is pending; on failure keep it (or drop it, for a sink that does not retry)."""
        entries, self.pending = self.pending, []
        try:
            self.write(entries)
        except Exception:
            if not self.retry:
                log.exception("dropped %s of %d ledger entries", self.name, len(entries))
                return
            log.exception("could not write %s of %d ledger entries; retrying next flush", self.name, len(entries))
            self.pending[:0] = entries
            if len(self.pending) > MAX_BUFFERED:
                dropped = len(self.pending) - MAX_BUFFERED
                del self.pending[:dropped]
                log.error("dropped %s of the %d oldest ledger entries", self.name, dropped)


class UsageLedger:
    def __init__(self, aggregates, records=None, metrics=None) -> None:
        self._sinks = [_Sink("aggregates", lambda entries: aggregates.add(aggregate(entries)))]
        if records is not None:
            self._sinks.append(_Sink("records", records.put_many))
        if metrics is not None:
            self._sinks.append(_Sink("metrics", metrics.emit, retry=False))
        self._buffer: list[LedgerEntry] = []
        self._lock = asyncio.Lock()

    def record(self, ctx: RequestContext) -> None:
        self._buffer.append(entry_from(ctx))

    async def flush(self) -> None:
        async with self._lock:
            entries, self._buffer = self._buffer, []
            for sink in self._sinks:
                sink.pending.extend(entries)
            if any(sink.pending for sink in self._sinks):
                await asyncio.to_thread(self._write)

    def _write(self) -> None:
        for sink in self._sinks:
            if sink.pending:
                sink.write_pending()
