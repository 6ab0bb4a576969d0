"""Quota leases: reserve against shared counters without a DynamoDB write per request.

Each instance leases blocks of a counter (``QuotaHoldStore.acquire``: conditional, so the shared
``used`` never passes the limit) under its own holder id, and hands them to requests locally:

    shared used = settled + every instance's hold
    one hold    = unspent balance + reservations in flight + settled-but-not-yet-flushed

A request's unused estimate goes back to the local balance; usage above the estimate takes from
the balance, and what the balance cannot cover is charged at the next flush (the one way ``used``
can pass a limit: by providers answering more than estimated, bounded by the tokenizer error).
Every ``flush-interval-s`` the settled amounts are written, holds are renewed, and balances that
sat idle for a whole interval are handed back (so an idle instance strands nothing for long).

A holder that stops renewing (its instance crashed, or froze between Lambda invocations) has its
hold reclaimed by the next instance refused on that counter once ``lease-ttl-s`` has passed; the
holder itself stops trusting its balance a safety margin before that, and carries on under a new
holder id, so a reclaimed hold is never spent twice. A reclaimed concurrency slot is refunded
(slots are never spent); any other reclaimed hold counts as spent ("forfeited"): its requests
may have reached the provider and been billed, and its settled usage may not have been flushed,
so refunding it could admit past the limit. What is forfeited is at most one lease block plus
the dead instance's reservations in flight, and it frees when its window ends.

Settles are written in the background flush (far from a limit) or by the request itself (near
one), one at a time per counter, in order, each numbered (``WriteBatch``: this instance, a
sequence). A settle that failed, perhaps after DynamoDB applied it (a timeout loses the answer,
not the write), stays first in its lease's queue and is sent again exactly as it was, under its
own number, before anything newer; the store applies a number once, so ``settled`` and ``used``
count it once. Amounts settled meanwhile join a newer write, never one already sent.

Block leases are numbered too (apart from settles, which may be in flight beside them) and go
one at a time per counter (its lock). One whose answer was lost is sent again as it was by the
next reserve that reaches the store or the next flush: applied earlier, it answers "admitted" and
the block joins the balance rather than sit in the hold unknown to this instance. (A request's
own acquire near the limit is not numbered: those run at once, and a later number applied first
would pass for an earlier one.)

Where every request flushes before its response completes (``per_request_flush``: on Lambda,
one request at a time per instance, frozen between them) three things change, so that a busy
instance does not write each counter twice a request:

* a settle that would not move ``used`` (the request spent no more than its reservation, which
  the hold already counts) is not written on its own: the amounts wait in the lease until a
  write is due anyway (a renewal, usage past a reservation, a balance handed back, the window's
  end, shutdown). Until then the hold counts them as used, and if the instance dies they are
  reclaimed with it as spent: no limit is ever passed, and the usage itself is recorded in the
  ledger, apart;
* a hold is renewed once half as old as the holder trusts it (6.5 s of the default 13), not a
  third of ``lease-ttl-s``: every request's flush is a chance to renew it, besides the
  background's;
* a balance counts as idle once untouched for that renewal period, not for a flush interval:
  the instance's next request is usually the one that uses it, and a balance handed back in the
  middle of a stream is leased again by the request after it.

With ``leasing=False`` every reservation is one conditional write and every settle one write
(the classic reserve-then-settle, but for settles made while one is written, which go together
in the next), for comparison in ``bench/quota_contention.py``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from functools import partial

from ..adapters.store_calls import call_store
from ..core.config import QuotaConfig
from ..core.ports import QuotaHoldStore, WriteBatch
from ..core.quota.counters import QuotaCounter
from ..core.quota.lease_sizing import lease_block
from ..core.rate_limited_log import RateLimitedLog, trace_of
from .lease_state import Acquire, Lease, Reservation, Settle

log = logging.getLogger("tierup.quotas")
_failures = RateLimitedLog(log)

#: the holder stops trusting its lease this long before others may reclaim it (clock skew, latency)
SAFETY_MARGIN_S = 2.0
#: the limit a settle made later acquires under: it only moves what was counted already
UNLIMITED = 1e18
#: a lease is topped up in the background when its balance falls below this share of its last
#: block, so that requests far from the limit never wait on DynamoDB
REFILL_AT = 0.5


class QuotaLeases:
    def __init__(self, store: QuotaHoldStore, config: QuotaConfig, *, leasing: bool = True,
                 per_request_flush: bool = False, instance_id: str | None = None,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        #: keep settles that would not move ``used`` until a write is due anyway (see above)
        self._defer_counted = per_request_flush
        self._fraction = config.lease_fraction
        self._ttl = config.lease_ttl_s
        self._margin = min(SAFETY_MARGIN_S, config.lease_ttl_s / 3)
        #: a hold is renewed once this old: a third of the TTL (two more tries before others may
        #: reclaim it); flushed per request, half the time the holder trusts it (one more try
        #: before it stops trusting it, and each request's flush and the background's are tries)
        self._renew_after = (self._ttl - self._margin) / 2 if per_request_flush else self._ttl / 3
        #: how long a balance goes untouched before it is handed back (0: a whole flush interval)
        self._idle_after = self._renew_after if per_request_flush else 0.0
        self._recheck = config.refusal_recheck_s
        self.leasing = leasing
        self._instance = instance_id or secrets.token_hex(5)
        self._epoch = 0
        self._seq = 0
        self._clock = clock
        self._monotonic = monotonic
        self._leases: dict[str, Lease] = {}
        self._refills: set[asyncio.Task] = set()

    def _new_holder(self) -> str:
        self._epoch += 1
        return f"{self._instance}g{self._epoch}"

    def lease_for(self, counter: QuotaCounter) -> Lease:
        lease = self._leases.get(counter.key)
        if lease is None:
            lease = self._leases[counter.key] = Lease(counter, self._new_holder())
        return lease

    def remaining(self, counter: QuotaCounter) -> float:
        """What this instance can still admit: the room left as last seen plus its own balance
        (which ``seen_used`` already counts), never below 0 or above the limit."""
        lease = self._leases.get(counter.key)
        if lease is None:
            return counter.limit
        return min(max(counter.limit - lease.seen_used, 0.0) + lease.balance, counter.limit)

    # -- reserve ------------------------------------------------------------------------------

    def reserve_locally(self, counter: QuotaCounter, amount: float) -> Reservation | None:
        """A reservation from this instance's balance, without I/O; None if the balance lacks it."""
        lease = self.lease_for(counter)
        if self.leasing and lease.balance >= amount and self._monotonic() < lease.valid_until:
            return self._take(lease, amount, 0.0)
        return None

    async def reserve(self, counter: QuotaCounter, amount: float) -> Reservation | None:
        """A reservation of ``amount``, or None when the limit has no room for it."""
        local = self.reserve_locally(counter, amount)
        if local is not None:
            return local
        lease = self.lease_for(counter)
        if self._monotonic() < lease.exhausted_until:
            return None
        if self.leasing:
            async with lease.lock:  # one block lease at a time per counter: no over-leasing
                await self._resend_acquire(lease)
                if self._monotonic() >= lease.valid_until and lease.balance > 0:
                    await self._roll_over(lease, wait=False)
                if lease.balance >= amount:
                    return self._take(lease, amount, 0.0)
                needed = amount - lease.balance
                block = lease_block(counter.limit, lease.seen_used, needed, self._fraction,
                                    integral=counter.integral)
                if block > needed:
                    started = self._monotonic()
                    admitted, used = await self._acquire(lease, block, numbered=True)
                    lease.seen_used = used
                    if admitted:
                        self._renewed(lease, started, block)
                        return self._take(lease, amount, block)
        # Near the limit (or without leasing): each request's own conditional write, concurrently.
        return await self._reserve_exactly(lease, amount)

    async def _reserve_exactly(self, lease: Lease, amount: float) -> Reservation | None:
        counter = lease.counter
        started = self._monotonic()
        admitted, used = await self._acquire(lease, amount)
        if not admitted and await call_store(partial(self._store.reclaim_expired, refund=not counter.spends),
                                             counter.key, self._clock(), store="quota"):
            admitted, used = await self._acquire(lease, amount)
        lease.seen_used = used
        if not admitted:
            lease.exhausted_until = self._monotonic() + self._recheck
            return None
        self._renewed(lease, started, amount)
        return self._take(lease, amount, amount)

    def _renewed(self, lease: Lease, started: float, block: float) -> None:
        lease.valid_until = started + self._ttl - self._margin
        lease.renewed_at = started
        lease.last_block = block

    async def _acquire(self, lease: Lease, block: float, *, numbered: bool = False) -> tuple[bool, float]:
        """Lease ``block``; ``numbered`` (hold ``lease.lock``): as an acquire sent again if its
        answer is lost."""
        if not numbered:
            return await self._send_acquire(lease, lease.holder, block, None)
        self._seq += 1
        lease.unanswered = Acquire(lease.holder, self._seq, block, self._monotonic())
        return await self._send_acquire(lease, lease.holder, block, lease.unanswered)

    async def _send_acquire(self, lease: Lease, holder: str, amount: float,
                            numbered: Acquire | None) -> tuple[bool, float]:
        counter = lease.counter
        batch = WriteBatch(self._instance, numbered.seq) if numbered else None
        answer = await call_store(self._store.acquire, counter.key, holder, amount, counter.limit,
                                  self._clock() + self._ttl, counter.expires_at, batch, store="quota")
        if numbered is not None:
            lease.unanswered = None
        return answer

    async def _resend_acquire(self, lease: Lease) -> None:
        """Send the lease's unanswered acquire again, as it was (hold ``lease.lock``); a block it
        leased (then or now) joins the balance, or goes back from the hold it was leased for if
        the lease rolled over to a new holder meanwhile."""
        lost = lease.unanswered
        if lost is None:
            return
        admitted, lease.seen_used = await self._send_acquire(lease, lost.holder, lost.amount, lost)
        if not admitted:
            return
        if lost.holder != lease.holder:
            self._queue_settle(lease, lost.holder, lost.amount, 0.0)
            return
        lease.balance += lost.amount
        if lost.sent_at > lease.renewed_at:  # the hold runs from the first copy at the latest
            self._renewed(lease, lost.sent_at, lost.amount)

    def _take(self, lease: Lease, amount: float, leased: float) -> Reservation:
        lease.balance += leased - amount
        lease.in_flight += amount
        lease.touched = True
        lease.touched_at = self._monotonic()
        if self.leasing and not lease.refilling and lease.balance < REFILL_AT * lease.last_block \
                and lease.last_block >= 2 * amount:  # far from the limit: top up before it runs out
            lease.refilling = True
            task = asyncio.get_running_loop().create_task(self._refill(lease))
            self._refills.add(task)
            task.add_done_callback(self._refills.discard)
        return Reservation(lease, lease.holder, amount)

    async def _refill(self, lease: Lease) -> None:
        counter = lease.counter
        try:
            async with lease.lock:
                await self._resend_acquire(lease)  # before a newer number, or the lost one is forgotten
                if lease.balance >= REFILL_AT * lease.last_block or self._monotonic() >= lease.valid_until:
                    return
                block = lease_block(counter.limit, lease.seen_used, 0.0, self._fraction, integral=counter.integral)
                if block <= 0:
                    return
                started = self._monotonic()
                admitted, used = await self._acquire(lease, block, numbered=True)
                lease.seen_used = used
                if admitted:
                    lease.balance += block
                    lease.last_block = block
                    lease.renewed_at = started
                    lease.valid_until = started + self._ttl - self._margin
        except Exception as exc:  # a failed top-up only means the next request leases for itself
            _failures.warning("top-up", "could not top up the lease on %s", counter.key, exc_info=trace_of(exc))
        finally:
            lease.refilling = False

    async def _roll_over(self, lease: Lease, *, wait: bool = True) -> None:
        """The lease went unrenewed too long and may have been reclaimed: stop trusting its
        balance, settle what is pending under the old holder and carry on under a new one."""
        old = lease.holder
        release, spend = lease.balance + lease.pending_release, lease.pending_spend
        lease.holder = self._new_holder()
        lease.balance = lease.pending_release = lease.pending_spend = 0.0
        if release or spend:
            await self._send_or_keep(lease, self._queue_settle(lease, old, release, spend), wait=wait)

    def _queue_settle(self, lease: Lease, holder: str, release: float, spend: float) -> Settle:
        """Queue a settle of ``holder``'s hold, joining the last queued one if it was never sent."""
        last = lease.settles[-1] if lease.settles else None
        if last is not None and last.sent_at is None and last.holder == holder:
            last.release += release
            last.spend += spend
            return last
        self._seq += 1
        lease.settles.append(Settle(holder, self._seq, release, spend))
        return lease.settles[-1]

    async def _send_settles(self, lease: Lease, through: Settle) -> None:
        """Send the lease's queued settles in order until ``through`` is written, then those queued
        meanwhile by requests that did not wait for it (once: a steady stream of them must not
        hold this caller). A failure leaves the failed one first in the queue, to be sent again
        as it is (it may have been applied)."""
        async with lease.write_lock:
            await self._send_through(lease, through)
            if lease.settles:
                await self._send_through(lease, lease.settles[-1])

    async def _send_through(self, lease: Lease, through: Settle) -> None:
        counter = lease.counter
        while through in lease.settles:
            settle = lease.settles[0]
            if settle.sent_at is None:
                settle.sent_at = self._monotonic()
            lease.seen_used = await call_store(
                self._store.settle, counter.key, settle.holder, settle.release, settle.spend,
                self._clock() + self._ttl, counter.expires_at, WriteBatch(self._instance, settle.seq), store="quota")
            lease.settles.pop(0)

    async def _send_or_keep(self, lease: Lease, through: Settle, *, wait: bool = True) -> bool:
        """``_send_settles``, or False with the failure logged: they stay queued for the next
        flush. Without ``wait`` (on a request's path) a write in flight is not waited for: the
        request's settle is left to its sender rather than queue behind it (and, in an outage,
        behind every other request's attempt in turn)."""
        if not wait and lease.write_lock.locked():
            return False  # sent by the write in flight once it is done (or by the next flush)
        try:
            await self._send_settles(lease, through)
        except Exception as exc:
            _failures.warning("flush", "could not flush quota counter %s; retrying next flush", lease.counter.key,
                              exc_info=trace_of(exc))
            return False
        return True

    # -- settle -------------------------------------------------------------------------------

    async def settle(self, reservation: Reservation, actual: float) -> None:
        """The request is over and used ``actual`` of what it reserved (0 for a concurrency slot,
        or for a reservation given back because another limit refused the request). Never fails:
        what cannot be written now is written by a later flush."""
        lease = reservation.lease
        amount = reservation.amount
        lease.in_flight -= amount
        if not self.leasing or reservation.holder != lease.holder or lease.last_block <= amount:
            # Near the limit (leases of one request's need) the unused part goes straight back to
            # the shared counter, where any instance can use it, rather than idle here a while.
            # If it cannot be written now, it stays queued and the next flush sends it.
            await self._send_or_keep(lease, self._queue_settle(lease, reservation.holder, amount, actual), wait=False)
            return
        if actual <= amount:
            lease.balance += amount - actual
            lease.pending_release += actual
        else:  # the provider answered more than estimated: cover it from the balance if it can
            covered = min(actual - amount, lease.balance)
            lease.balance -= covered
            lease.pending_release += amount + covered
        lease.pending_spend += actual
        lease.touched = True
        lease.touched_at = self._monotonic()

    async def settle_later(self, counter: QuotaCounter, unused: float) -> None:
        """Take ``unused`` (estimate - actual; negative: owed) off a counter, for work whose
        estimate another process counted (a Bedrock batch job's lines, whose answers are read
        hours later): a hold of ``|unused|`` under a fresh holder id, settled at once with
        ``-unused`` spent, so the counter ends ``unused`` lower. A process that dies between the
        two leaves the hold, reclaimed as spent: too much counted, never too little."""
        if not unused:
            return
        holder, held = self._new_holder(), abs(unused)
        until = self._clock() + self._ttl
        await call_store(self._store.acquire, counter.key, holder, held, UNLIMITED, until, counter.expires_at,
                         store="quota")
        await call_store(self._store.settle, counter.key, holder, held, -unused, until, counter.expires_at,
                         store="quota")

    # -- background ---------------------------------------------------------------------------

    async def flush(self, *, final: bool = False) -> None:
        """Write settled usage, renew holds and hand back idle balances (all of them if ``final``)."""
        if final and self._refills:
            await asyncio.gather(*self._refills, return_exceptions=True)
        now = self._clock()
        for key, lease in list(self._leases.items()):
            if lease.unanswered is not None:
                async with lease.lock:
                    try:
                        await self._resend_acquire(lease)
                    except Exception as exc:
                        _failures.warning("lease", "could not send a lost lease on %s again; retrying next flush",
                                          lease.counter.key, exc_info=trace_of(exc))
            if lease.balance > 0 and self._monotonic() >= lease.valid_until:
                async with lease.lock:  # renewing now could revive a hold already reclaimed
                    if lease.balance > 0 and self._monotonic() >= lease.valid_until:
                        await self._roll_over(lease)
            over = lease.counter.resets_at is not None and lease.counter.resets_at <= now
            idle = not lease.touched and self._monotonic() - lease.touched_at >= self._idle_after
            give_back = lease.balance if (final or over or idle) else 0.0
            release, spend = lease.pending_release + give_back, lease.pending_spend
            renew = lease.held > 0 and self._monotonic() - lease.renewed_at > self._renew_after
            lease.touched = False
            counted_already = self._defer_counted and release == spend and not (final or over or renew)
            if (release or spend or renew) and not counted_already:
                lease.balance -= give_back
                lease.pending_release = lease.pending_spend = 0.0
                self._queue_settle(lease, lease.holder, release, spend)
            if lease.settles:
                last = lease.settles[-1]
                if await self._send_or_keep(lease, last) and last.holder == lease.holder:
                    lease.renewed_at = last.sent_at
                    lease.valid_until = last.sent_at + self._ttl - self._margin
            if over and lease.held == 0 and not lease.settles:
                del self._leases[key]

    def stranded(self) -> dict[str, float]:
        """Unspent balances this instance holds, per limit name (quota others cannot use now)."""
        totals: dict[str, float] = {}
        for lease in self._leases.values():
            totals[lease.counter.name] = totals.get(lease.counter.name, 0.0) + lease.balance
        return totals
