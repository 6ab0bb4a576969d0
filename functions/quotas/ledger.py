"""The usage ledger as the gateway's recorder: every request, admitted or refused, is one entry.

``record`` only appends to a buffer (no I/O on the request path). ``flush``, run in the
background every ``flush-interval-s`` and once more at shutdown, hands the entries to each sink:
their per-minute aggregates (route and tenant), their per-request records and their EMF
metrics. Each sink keeps what it could not write for its next flush, so none is lost while the
instance lives, and only that sink tries again: one sink failing never makes the others write the
same entries twice. Metrics are the exception: what could not be emitted is dropped, not retried.

Entries reach a sink in batches, and a batch that failed is retried as it was, under its own
``WriteBatch`` id, before anything newer: the aggregates skip what an earlier attempt applied
(a retry never adds twice), and record pages are keyed by their first entry (a retry overwrites
them). New entries join a batch only while it has never been tried. A sink that keeps failing
is logged once per interval, not once per flush.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.context import RequestContext
from ..core.ports import WriteBatch
from ..core.rate_limited_log import RateLimitedLog, trace_of
from ..core.usage_ledger import LedgerEntry, aggregate, entry_from

log = logging.getLogger("tierup.ledger")
_failures = RateLimitedLog(log)

#: entries a sink keeps while it cannot write, before the oldest are dropped (and logged)
MAX_BUFFERED = 200_000


@dataclass
class _Batch:
    seq: int
    entries: list[LedgerEntry]
    #: written at least once (so possibly applied in part): it must be retried exactly as it is
    tried: bool = False


@dataclass
class _Sink:
    name: str
    write: Callable[[WriteBatch, list[LedgerEntry]], None]
    retry: bool = True
    pending: list[_Batch] = field(default_factory=list)

    def queue(self, seq: int, entries: list[LedgerEntry]) -> None:
        if self.pending and not self.pending[-1].tried:
            self.pending[-1].entries.extend(entries)
        else:
            self.pending.append(_Batch(seq, list(entries)))

    def write_pending(self, writer: str) -> None:
        """Write the pending batches in order; on failure keep the failed one and those after it
        (or drop it, for a sink that does not retry)."""
        while self.pending:
            batch = self.pending[0]
            batch.tried = True
            try:
                self.write(WriteBatch(writer, batch.seq), batch.entries)
            except Exception as exc:
                trace = trace_of(exc)
                if self.retry:
                    _failures.warning(self.name, "could not write %s of %d ledger entries (%s); retrying next flush",
                                      self.name, self.buffered(), exc, exc_info=trace)
                    self._bound()
                    return
                _failures.warning(self.name, "dropped %s of %d ledger entries (%s)", self.name,
                                  len(batch.entries), exc, exc_info=trace)
            self.pending.pop(0)

    def buffered(self) -> int:
        return sum(len(batch.entries) for batch in self.pending)

    def _bound(self) -> None:
        dropped = self.buffered() - MAX_BUFFERED
        if dropped > 0:  # from the batch never tried if there is one: a tried one stays as it was
            del self.pending[-1].entries[:dropped]
            log.error("dropped %s of the %d oldest ledger entries", self.name, dropped)


class UsageLedger:
    def __init__(self, aggregates, records=None, metrics=None, *, writer: str | None = None) -> None:
        self._sinks = [_Sink("aggregates", lambda batch, entries: aggregates.add(aggregate(entries), batch))]
        if records is not None:
            self._sinks.append(_Sink("records", lambda batch, entries: records.put_many(entries)))
        if metrics is not None:
            self._sinks.append(_Sink("metrics", lambda batch, entries: metrics.emit(entries), retry=False))
        self._buffer: list[LedgerEntry] = []
        self._lock = asyncio.Lock()
        #: names this ledger's batches (one per instance: a new process is a new writer)
        self._writer = writer or secrets.token_hex(6)
        self._seq = 0

    def record(self, ctx: RequestContext) -> None:
        self._buffer.append(entry_from(ctx))

    async def flush(self) -> None:
        async with self._lock:
            entries, self._buffer = self._buffer, []
            if entries:
                self._seq += 1
                for sink in self._sinks:
                    sink.queue(self._seq, entries)
            if any(sink.pending for sink in self._sinks):
                await asyncio.to_thread(self._write)

    def _write(self) -> None:
        for sink in self._sinks:
            if sink.pending:
                sink.write_pending(self._writer)
