"""Spend reserved against shared caps without a DynamoDB round trip per request: each instance
leases dollar blocks from the cap's shared counter and hands them out to requests locally.

    shared counter  C = settled cost + reservations in flight + unspent leases (all instances)

A block is added to C only if C stays within the cap (``CounterStore.try_add``), so C never
passes the cap through reservations. Its size is ``lease-fraction`` of the room left when it
was taken, at most ``lease-max-usd`` and at least what the request needs, so blocks shrink to
one request's estimate near the cap, where every reservation becomes one conditional write.
On settling, an estimate's unused part returns to the local lease; a cost above the estimate is
added to C at once. Hence:

* spend beyond a cap is at most the sum of (actual - estimate) over requests in flight when it is
  reached; the estimate (prompt + max_tokens at the dearest price of the route) is an upper bound
  except for tokenizer differences of a few percent of the prompt;
* the cap may be declared reached early by at most the unspent leases, at most
  ``instances x lease-max-usd`` (leases are handed back when an instance shuts down).

When the counter store cannot answer (down, or no answer within its deadline), the caps fail
closed: a request the local lease cannot cover is refused with a 503 ``storage_unavailable``
(what the lease already holds was taken from the cap, so spending it stays within the cap); a
cost above its estimate that cannot be added stays owed on the lease and is counted later.

Every write to a shared counter is numbered (``WriteBatch``: this instance, a sequence) and a
lease's writes go one at a time (its lock). A write that got no answer (a timeout, a reset) may
have been applied all the same: it stays the lease's ``unanswered`` write and is sent again,
exactly as it was and under its own number, before the lease's next write; the store applies a
number once. So a cost owed is added once, and a block whose answer was lost joins the balance
when its copy is answered "applied" instead of staying counted in C with no lease holding it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..adapters.store_calls import call_store
from ..core.config.budgets import BudgetsConfig
from ..core.ports import CounterStore, WriteBatch
from ..core.rate_limited_log import RateLimitedLog, trace_of
from ..core.spend_caps import SpendCap

log = logging.getLogger("tierup.budgets")
_failures = RateLimitedLog(log)

#: a cap found full is not asked again for this long (refunds or a raised cap may make room)
EXHAUSTED_RECHECK_S = 5.0
#: a cap counts as reached when less than this share of it is left
REACHED_SLACK = 0.01


@dataclass(frozen=True, slots=True)
class CounterWrite:
    """``amount`` added to a cap's counter: within ``limit`` (a new block) or, without, as is."""

    seq: int
    amount: float
    limit: float | None = None


@dataclass
class Lease:
    balance: float = 0.0
    #: the shared counter's total at this instance's last write
    seen_total: float = 0.0
    exhausted_until: float = 0.0
    #: held while writing to the counter: one write at a time, so the store sees their numbers in order
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: a write sent without an answer (yet): it may have been applied
    unanswered: CounterWrite | None = None


@dataclass(frozen=True, slots=True)
class Reservation:
    admitted: bool
    #: the shared counter's total as last seen (after this instance's write, if one was made)
    total: float
    #: True when this reservation made a write (so the total is fresh: time to check thresholds)
    wrote: bool = False
    #: the cap has no room left for requests like this one
    reached: bool = False


class SpendLeases:
    def __init__(self, counters: CounterStore, budgets: BudgetsConfig, *, writer: str | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._counters = counters
        #: names this instance's writes (letters and digits); a new process is a new writer
        self._writer = writer or secrets.token_hex(6)
        self._seq = 0
        self._fraction = budgets.lease_fraction
        self._max_block = budgets.lease_max_usd
        self._monotonic = monotonic
        self._leases: dict[str, Lease] = {}
        self._caps: dict[str, SpendCap] = {}

    def _lease(self, cap: SpendCap) -> Lease:
        lease = self._leases.get(cap.counter_key)
        if lease is None:
            self._forget_ended(cap.starts_at)
            lease = self._leases[cap.counter_key] = Lease()
            self._caps[cap.counter_key] = cap
        return lease

    def _forget_ended(self, now: float) -> None:
        """Drop leases of periods over by ``now``: their counters no longer cap anything."""
        for key, cap in list(self._caps.items()):
            if cap.ends_at <= now:
                del self._caps[key]
                del self._leases[key]

    def block_size(self, cap: SpendCap, lease: Lease, needed: float) -> float:
        room = max(cap.limit_usd - lease.seen_total, 0.0)
        return max(min(self._fraction * room, self._max_block), needed)

    async def _send(self, cap: SpendCap, lease: Lease, write: CounterWrite) -> tuple[bool, float]:
        """Send ``write`` (hold ``lease.lock``): ``(admitted, total)``."""
        lease.unanswered = write
        batch = WriteBatch(self._writer, write.seq)
        if write.limit is None:
            admitted, total = True, await call_store(self._counters.add, cap.counter_key, write.amount,
                                                     cap.expires_at, batch, store="spend")
        else:
            admitted, total = await call_store(self._counters.try_add, cap.counter_key, write.amount, write.limit,
                                               cap.expires_at, batch, store="spend")
        lease.unanswered = None
        lease.seen_total = total
        return admitted, total

    async def _write(self, cap: SpendCap, lease: Lease, amount: float, limit: float | None = None) -> tuple[bool, float]:
        self._seq += 1
        return await self._send(cap, lease, CounterWrite(self._seq, amount, limit))

    async def _resend_unanswered(self, cap: SpendCap, lease: Lease) -> None:
        """Send the lease's unanswered write again, as it was (hold ``lease.lock``); a block it
        added (then or now) joins the balance."""
        write = lease.unanswered
        if write is not None:
            admitted, _ = await self._send(cap, lease, write)
            if admitted and write.limit is not None:
                lease.balance += write.amount

    async def reserve(self, cap: SpendCap, amount: float) -> Reservation:
        lease = self._lease(cap)
        if lease.balance >= amount:
            lease.balance -= amount
            return Reservation(True, lease.seen_total)
        if self._monotonic() < lease.exhausted_until:
            return Reservation(False, lease.seen_total, reached=True)
        async with lease.lock:
            await self._resend_unanswered(cap, lease)
            total, wrote = lease.seen_total, False
            # A loop, because requests settling while the counter is written may draw the balance
            # down (a cost above its estimate): the request is admitted only once fully covered.
            while lease.balance < amount:
                needed = amount - max(lease.balance, 0.0)
                block = self.block_size(cap, lease, needed)
                admitted, total = await self._write(cap, lease, block, cap.limit_usd)
                if not admitted and block > needed:  # no room for a block: maybe for this request alone
                    block = needed
                    admitted, total = await self._write(cap, lease, block, cap.limit_usd)
                wrote = True
                if not admitted:
                    reached = cap.limit_usd - total <= max(REACHED_SLACK * cap.limit_usd, amount)
                    if reached:
                        lease.exhausted_until = self._monotonic() + EXHAUSTED_RECHECK_S
                    return Reservation(False, total, wrote=True, reached=reached)
                lease.balance += block
            lease.balance -= amount
            return Reservation(True, total, wrote=wrote)

    def credit(self, cap: SpendCap, amount: float) -> None:
        """Give back a reservation that was not used (another cap refused the request)."""
        self._lease(cap).balance += amount

    async def settle(self, cap: SpendCap, unused: float) -> None:
        """``unused`` = estimate - actual cost: positive goes back to the lease, negative is owed
        and added to the counter. Never fails: a store outage delays the count, never loses it."""
        lease = self._lease(cap)
        lease.balance += unused
        if lease.balance >= 0:
            return
        async with lease.lock:
            try:
                await self._resend_unanswered(cap, lease)
                if lease.balance < 0:  # not covered by a block taken meanwhile
                    owed, lease.balance = -lease.balance, 0.0
                    await self._write(cap, lease, owed)
            except Exception as exc:
                # Still owed: as a negative balance (charged with this lease's next block) if it
                # was never sent, or as the unanswered write, sent again first by the next one.
                _failures.warning("settle", "could not count a cost above its estimate on %s; counted later",
                                  cap.counter_key, exc_info=trace_of(exc))

    def outstanding(self) -> float:
        return sum(lease.balance for lease in self._leases.values())

    async def hand_back(self) -> None:
        """Return every unspent lease to its shared counter, and charge what is still owed (at
        shutdown), after any write still unanswered."""
        for key, lease in list(self._leases.items()):
            cap = self._caps[key]
            async with lease.lock:
                try:
                    await self._resend_unanswered(cap, lease)
                    if lease.balance:
                        await self._write(cap, lease, -lease.balance)
                        lease.balance = 0.0
                except Exception:
                    log.exception("could not hand back a lease of $%.6f on %s", lease.balance, key)
