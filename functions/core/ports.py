"""The small ports between the gateway's logic and the outside world.

Adapters in ``functions/adapters`` implement these; ``tests/fakes`` has an in-memory fake of
each. The pipeline only ever sees these protocols.

No I/O here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from .chat import Completion, Embeddings, ProviderCall, StreamDelta
from .config import Tier
from .context import RequestContext
from .keys import ApiKeyRecord


class ChatProvider(Protocol):
    """A model behind one tier. Errors raised are ``ProviderError`` subclasses."""

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


class KeyStore(Protocol):
    """API keys by SHA-256 hash. Synchronous: adapters run it off the event loop."""

    def get(self, key_hash: str) -> ApiKeyRecord | None: ...

    def put(self, record: ApiKeyRecord) -> None: ...

    def revoke(self, key_id: str) -> int:
        """Revoke every key whose id (hash prefix) is ``key_id``; return how many."""

    def list(self, tenant_id: str | None = None) -> list[ApiKeyRecord]: ...


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


class UsageAggregates(Protocol):
    """Per-minute usage aggregates, read by the traffic policy and the budget guardrails."""

    def minutes(self, scope: str, since_minute: int, until_minute: int) -> list[MinuteUsage]: ...


class CounterStore(Protocol):
    """Numeric counters with limits, updated atomically (DynamoDB conditional writes).

    ``try_add`` adds ``amount`` only if the total stays within ``limit`` and returns
    ``(admitted, total_after_or_current)``; ``add`` adds unconditionally (settling, refunds).
    Counters expire at ``expires_at`` (epoch seconds); an expired counter reads as 0.
    """

    def try_add(self, key: str, amount: float, limit: float, expires_at: int) -> tuple[bool, float]: ...

    def add(self, key: str, amount: float, expires_at: int) -> float: ...

    def read(self, keys: list[str]) -> dict[str, float]: ...


class GpuControl(Protocol):
    """Control of the Modal GPU functions (one per route). Synchronous; run off the event loop."""

    def set_min_replicas(self, route: str, replicas: int) -> None:
        """Keep at least ``replicas`` containers warm (Modal ``update_autoscaler(min_containers=)``)."""

    def ready_replicas(self, route: str) -> int:
        """Replicas up and answering the health probe now."""
