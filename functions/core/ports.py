"""The small ports between the gateway's logic and the outside world.

Adapters in ``functions/adapters`` implement these; ``tests/fakes`` has an in-memory fake of
each. The pipeline only ever sees these protocols.

No I/O here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .chat import Completion, Embeddings, ProviderCall, StreamDelta
from .config import Tier
from .context import RequestContext
from .keys import ApiKeyRecord
from .route_table import RouteEntry


class ChatProvider(Protocol):
    """A model behind one tier. Errors raised are ``ProviderError`` subclasses, saying whether the
    model may have started generating. ``stream`` ends with one delta carrying the finish reason
    and the usage (None if the provider reported none: the gateway counts it), and raises when the
    provider's stream stopped before its end. The pipeline bounds every call with provider-timeout-s;
    a provider's own timeouts only back it up."""

    async def complete(self, call: ProviderCall) -> Completion: ...

    def stream(self, call: ProviderCall) -> AsyncIterator[StreamDelta]: ...

    async def embed(self, model: str, inputs: list[str], dimensions: int | None) -> Embeddings: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Target:
    """One place a request can be served: a tier, its provider and the model id there."""

    tier: Tier
    provider: ChatProvider
    model: str


class Router(Protocol):
    """Chooses where a request goes: the preferred target first, then fallbacks in order."""

    def targets(self, ctx: RequestContext) -> list[Target]: ...

    def report(self, target: Target, ok: bool) -> None:
        """Told after each attempt, so that circuit breakers and in-flight counts stay current."""


class Guard(Protocol):
    """A stage that may refuse a request before the provider is called.

    ``admit`` raises a ``TierupError`` to refuse; otherwise it may reserve something and keep
    it in ``ctx.state``. ``release`` is called exactly once for every admitted request, after
    the provider answered or failed, with ``ctx.usage`` set to the actual usage (or None).
    """

    name: str

    async def admit(self, ctx: RequestContext) -> None: ...

    async def release(self, ctx: RequestContext) -> None: ...


class UsageRecorder(Protocol):
    """Receives every request once it is over, admitted or refused (the usage ledger)."""

    def record(self, ctx: RequestContext) -> None: ...


class ResponseCache(Protocol):
    async def lookup(self, ctx: RequestContext) -> Completion | None: ...

    async def store(self, ctx: RequestContext, completion: Completion) -> None: ...


class Embedder(Protocol):
    """Text to unit vectors (the semantic cache's questions). Synchronous: run it off the loop."""

    name: str
    dimensions: int

    def embed(self, texts: list[str]) -> list[list[float]]: ...


@dataclass(frozen=True, slots=True)
class BucketItem:
    """One semantic-cache entry as listed in an LSH bucket: enough to rank it without its answer."""

    entry_key: str
    vector: bytes  # int8-quantised unit vector
    question: str
    expires_at: int


class CacheStore(Protocol):
    """The response cache's items (DynamoDB ``cache`` table). Synchronous: run it off the loop.

    Answers live under their entry key; semantic entries are also listed, with their vector, in
    one LSH bucket per table. Readers must ignore items whose ``expires_at`` has passed.
    """

    def get_answer(self, entry_key: str) -> tuple[bytes, str, int, float] | None:
        """(body, question, expires_at, wrong_at) of an entry, or None; ``wrong_at`` is the highest
        similarity at which the entry was seen answering a paraphrase wrongly (0.0: never)."""

    def mark_wrong(self, entry_key: str, similarity: float) -> None:
        """Raise the entry's ``wrong_at`` to ``similarity`` (never lower it; no-op if it is gone)."""

    def add_calibration(self, calibration_key: str, right: dict[int, float], wrong: dict[int, float]) -> None:
        """Add observations (counts per similarity bin) to a route's calibration."""

    def read_calibration(self, calibration_key: str) -> tuple[dict[int, float], dict[int, float]]:
        """A route's (right, wrong) counts per similarity bin (empty when none)."""

    def read_calibrations(self) -> dict[str, tuple[dict[int, float], dict[int, float]]]:
        """Every route's calibration by calibration key."""

    def put_answer(self, entry_key: str, body: bytes, question: str, expires_at: int, *,
                   scope: str, route: str) -> None: ...

    def put_bucket_items(self, bucket_keys: list[str], item: BucketItem, *, scope: str, route: str) -> None: ...

    def query_bucket(self, bucket_key: str, limit: int) -> list[BucketItem]:
        """The newest ``limit`` items of one bucket."""

    def add_stats(self, route: str, day: str, counts: dict[str, float]) -> None: ...

    def read_stats(self, route: str | None = None) -> dict[str, dict[str, float]]:
        """Counters per route (summed over days)."""

    def purge(self, scope: str | None = None, route: str | None = None, *, dry_run: bool = False) -> int:
        """Delete items (answers and bucket listings) of a tenant scope and/or route; return how
        many (with ``dry_run``, only count them)."""


class KeyStore(Protocol):
    """API keys by SHA-256 hash. Synchronous: adapters run it off the event loop."""

    def get(self, key_hash: str) -> ApiKeyRecord | None: ...

    def put(self, record: ApiKeyRecord) -> None: ...

    def revoke(self, key_id: str) -> int:
        """Revoke every key whose id (hash prefix) is ``key_id``; return how many."""

    def list(self, tenant_id: str | None = None) -> list[ApiKeyRecord]: ...


class ResponseStore(Protocol):
    """Stored Responses (``previous_response_id``, ``GET /v1/responses/{id}``), always looked up
    with the tenant's id: another tenant's response is never found. Synchronous: adapters run it
    off the event loop. ``get`` returns None for an expired response too."""

    def get(self, tenant_id: str, response_id: str) -> "StoredResponse | None": ...

    def put(self, stored: "StoredResponse") -> None: ...

    def delete(self, tenant_id: str, response_id: str) -> bool:
        """True if the tenant had that response."""


# -- shared between quotas, budgets and the traffic policy -------------------------------------


@dataclass(frozen=True, slots=True)
class MinuteUsage:
    """One minute of one scope's usage (a route or a tenant), as the ledger aggregates it."""

    minute: int  # epoch seconds // 60
    scope: str  # "route:chat" or "tenant:acme"
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float = 0.0
    refused: int = 0
    #: requests served per tier, e.g. {"serverless": 10, "reserved": 50}
    by_tier: dict | None = None
    #: what serving them (refusals included) cost the gateway itself: Lambda, DynamoDB, logs
    gateway_cost_usd: float = 0.0
    #: the share of ``cost_usd`` that is GPU time (written by the traffic policy)
    gpu_cost_usd: float = 0.0
    #: routes only: arrivals per 10 seconds of the minute, {second // 10: [requests, prompt, completion]};
    #: the traffic policy's live signals (what the last seconds brought, before the minute is over)
    by_10s: dict | None = None


@dataclass(frozen=True, slots=True)
class WriteBatch:
    """Writes named so that one sent again is recognised: ``writer`` is one instance's ledger,
    quota leases or spend leases (letters and digits), ``seq`` increases with each new batch or
    write it forms. A store applies a batch to an item at most once, and ignores one older than
    the last it applied from the same writer."""

    writer: str
    seq: int


class UsageAggregates(Protocol):
    """Per-minute usage aggregates, read by the traffic policy and the budget guardrails.

    ``add`` adds rows; given the same ``batch`` again (a retry after an error or a timeout, when
    the first attempt may have been applied in part or in full) it adds each row at most once.
    """

    def add(self, rows: list[MinuteUsage], batch: WriteBatch | None = None) -> None: ...

    def minutes(self, scope: str, since_minute: int, until_minute: int) -> list[MinuteUsage]: ...


class CounterStore(Protocol):
    """Numeric counters with limits, updated atomically (DynamoDB conditional writes).

    ``try_add`` adds ``amount`` only if the total stays within ``limit`` and returns
    ``(admitted, total_after_or_current)``; ``add`` adds unconditionally (settling, refunds).
    Counters expire at ``expires_at`` (epoch seconds); an expired counter reads as 0. Given the
    same ``batch`` again, a write already applied is not applied again and answers "admitted".
    """

    def try_add(self, key: str, amount: float, limit: float, expires_at: int,
                batch: WriteBatch | None = None) -> tuple[bool, float]: ...

    def add(self, key: str, amount: float, expires_at: int, batch: WriteBatch | None = None) -> float: ...

    def read(self, keys: list[str]) -> dict[str, float]: ...


@dataclass(frozen=True, slots=True)
class HeldCounter:
    """A quota counter as stored: ``used`` = ``settled`` + ``forfeited`` + every holder's hold
    (less debts settled after a forfeit)."""

    used: float = 0.0
    settled: float = 0.0
    #: holds of dead holders, counted as spent (their requests' usage is unknown)
    forfeited: float = 0.0
    #: holder id -> (amount held, hold expiry in epoch seconds)
    holds: dict | None = None


class QuotaHoldStore(Protocol):
    """Quota counters whose reservations are held per holder (a gateway instance) until an expiry
    the holder renews, so that a dead holder's reservations can be reclaimed exactly once.

    ``acquire`` adds ``amount`` to ``used`` and to the holder's hold only if ``used`` stays within
    ``limit``: ``(admitted, used_after_or_current)``. ``settle`` releases ``release`` of the hold
    and charges ``spend`` as settled (``used`` moves by ``spend - release``); if the hold was
    reclaimed meanwhile, only what ``spend`` exceeds ``release`` by is added to ``used``.
    ``reclaim_expired`` removes holds whose expiry passed: with ``refund`` their total leaves
    ``used`` (a slot, never spent); without it the hold counts as spent (``forfeited``), because a
    dead holder's requests may have been billed. It returns what it took out of ``used``.
    A ``settle`` given the same ``batch`` again is not applied again (in either form); nor is an
    ``acquire``, which answers "admitted" then (acquires are numbered apart from settles).
    Synchronous: run it off the event loop.
    """

    def acquire(self, key: str, holder: str, amount: float, limit: float, hold_until: float,
                expires_at: int, batch: WriteBatch | None = None) -> tuple[bool, float]: ...

    def settle(self, key: str, holder: str, release: float, spend: float, hold_until: float,
               expires_at: int, batch: WriteBatch | None = None) -> float: ...

    def reclaim_expired(self, key: str, now: float, *, refund: bool) -> float: ...

    def read_counters(self, keys: list[str]) -> dict[str, HeldCounter]: ...


class GpuControl(Protocol):
    """Control of the Modal GPU functions (one per route). Synchronous; run off the event loop."""

    def set_min_replicas(self, route: str, replicas: int) -> None:
        """Keep at least ``replicas`` containers warm (Modal ``update_autoscaler(min_containers=)``)."""

    def ready_replicas(self, route: str) -> int:
        """Replicas up and answering the health probe now."""


class GpuSpendLedger(Protocol):
    """Where GPU time is recorded as spend (DynamoDB ``usage`` table), once per interval.

    Each route has a billing cursor: the first minute not billed yet. ``record`` moves it from
    ``charge.from_minute`` to ``charge.to_minute`` and, in the same atomic write, adds the charge
    to the spend counters (``amounts``: key -> (USD, expiry), the counters the budget caps read)
    and to the route's per-minute usage aggregates. It returns False, writing nothing, when the
    cursor is not at ``from_minute`` (another run billed the interval): a re-run never bills twice.
    Synchronous: run it off the event loop.
    """

    def billed_until(self, route: str) -> int | None:
        """The route's first unbilled minute; None before its first charge."""

    def record(self, charge: "GpuCharge", amounts: dict[str, tuple[float, int]]) -> bool: ...


class RouteTableStore(Protocol):
    """The route table (where each route's traffic goes), written by the promotion executor and
    read, cached, by the gateway's router. Synchronous; run off the event loop."""

    def read_routes(self) -> dict[str, RouteEntry]: ...

    def write_route(self, entry: RouteEntry) -> None: ...


class PolicyJournal(Protocol):
    """What the traffic policy remembers between runs, and the record of every decision."""

    def load_states(self) -> dict[str, dict]:
        """Each route's ``RoutePolicyState`` as a plain dict (``dataclasses.asdict``)."""

    def save_state(self, route: str, state: dict) -> None: ...

    def record_decision(self, route: str, at_s: float, record: dict) -> None:
        """Keep one decision (reason, projected savings, plan, outcome) for later reading."""

    def recent_decisions(self, route: str, limit: int = 20) -> list[dict]:
        """The route's latest decisions, newest first."""



class RunLease(Protocol):
    """At most one holder of a named job at a time, for a bounded time: a holder that dies keeps
    the lease only until it expires, then the next run takes it over. Synchronous."""

    def acquire(self, holder: str, now_s: float, hold_until_s: float) -> bool:
        """Take the lease until ``hold_until_s`` if it is free or expired; False if another holds it."""

    def release(self, holder: str) -> None:
        """Give the lease back early, if ``holder`` still holds it."""

# -- budget guardrails ---------------------------------------------------------------------------

if TYPE_CHECKING:
    from .stored_responses import StoredResponse
    from .gpu_spend import GpuCharge
    from .killswitch import AuditEntry, KillSwitchFlag


class GuardrailStore(Protocol):
    """Kill-switch flags, once-only markers and the audit trail (DynamoDB ``state`` table).

    Synchronous: run it off the event loop.
    """

    def flags(self) -> list["KillSwitchFlag"]: ...

    def put_flag(self, flag: "KillSwitchFlag") -> None: ...

    def add_applied(self, scope: str, step_id: str) -> None:
        """Record on a scope's flag that one of its steps is done."""

    def delete_flag(self, scope: str) -> bool: ...

    def mark_once(self, marker: str, expires_at: int) -> bool:
        """True for exactly one caller per marker across every instance (a conditional put)."""

    def unmark(self, marker: str) -> None:
        """Undo ``mark_once`` (what it guarded failed, so another caller may try again)."""

    def append_audit(self, entry: "AuditEntry") -> None: ...

    def audit_trail(self, limit: int = 50) -> list["AuditEntry"]:
        """The newest entries first."""


class AlertPublisher(Protocol):
    """Publishes one alert (SNS topic: email subscribers read ``body``; attributes are for code)."""

    def publish(self, subject: str, body: str, attributes: dict[str, str]) -> None: ...


class ConcurrencyControl(Protocol):
    """A Lambda function's reserved concurrency (the gateway's hard stop)."""

    def reserved_concurrency(self, function: str) -> int | None:
        """None when the function has no reserved concurrency."""

    def set_reserved_concurrency(self, function: str, value: int | None) -> None:
        """``None`` removes the reservation."""
