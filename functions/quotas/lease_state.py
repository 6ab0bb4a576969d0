"""What one instance knows of its lease on one quota counter, and the writes it has yet to see
answered (``functions/quotas/leases.py`` works on these). No I/O here."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ..core.quota.counters import QuotaCounter


@dataclass(eq=False)
class Settle:
    """One settle write of ``holder``'s hold; ``seq`` names it when it is sent again."""

    holder: str
    seq: int
    release: float
    spend: float
    #: when it was first sent (monotonic; None until then): a hold it renewed runs from then
    sent_at: float | None = None


@dataclass(frozen=True, slots=True)
class Acquire:
    """A numbered block lease of ``holder``'s hold, sent at ``sent_at`` (monotonic)."""

    holder: str
    seq: int
    amount: float
    sent_at: float


@dataclass
class Lease:
    counter: QuotaCounter
    holder: str
    balance: float = 0.0
    in_flight: float = 0.0
    pending_release: float = 0.0
    pending_spend: float = 0.0
    seen_used: float = 0.0
    valid_until: float = 0.0
    renewed_at: float = 0.0
    exhausted_until: float = 0.0
    touched: bool = False
    #: when a request last took from or gave back to the lease (monotonic)
    touched_at: float = 0.0
    last_block: float = 0.0
    refilling: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: settle writes not yet known to be applied, oldest first (the first may have been sent)
    settles: list[Settle] = field(default_factory=list)
    #: one settle write in flight per counter, so the store sees each writer's numbers in order
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: a block lease sent without an answer (yet): it may have been applied
    unanswered: Acquire | None = None

    @property
    def held(self) -> float:
        return self.balance + self.in_flight + self.pending_release


@dataclass(frozen=True, slots=True)
class Reservation:
    lease: Lease
    holder: str
    amount: float
