"""The usage ledger's records and their per-minute aggregates, as plain values.

One ``LedgerEntry`` per request, admitted or refused; aggregates add entries up per minute for
each route (``route:NAME``) and each tenant (``tenant:ID``). ``requests`` counts requests that
got an answer (from a provider or the cache), ``refused`` those refused by a limit, budget or
backpressure; tokens are what the provider reported (cache hits report theirs as cached), or,
where it reported none or the answer was cut short, what the gateway counted (``estimated``).

No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .context import RequestContext
from .gateway_cost import GatewayUnits
from .ports import MinuteUsage


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    request_id: str
    at: float
    tenant_id: str
    route: str
    tier: str | None
    outcome: str
    status: int
    error_code: str | None
    cache_status: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost_usd: float
    latency_ms: float
    #: the tokens were counted by the gateway, not reported by the provider (last: older pages lack it)
    estimated: bool = False
    #: prompt tokens written to the provider's prompt cache (``cached_tokens``: those read from it)
    cache_write_tokens: int = 0
    #: what serving it cost the gateway itself (Lambda, DynamoDB, logs: ``functions.core.gateway_cost``)
    #: and the units priced, as counted (the shared work of flushes lands on the next entry made)
    gateway_cost_usd: float = 0.0
    gateway_invocations: int = 0
    gateway_gb_seconds: float = 0.0
    read_units: float = 0.0
    write_units: float = 0.0
    log_bytes: int = 0
    egress_bytes: int = 0

    @property
    def minute(self) -> int:
        return int(self.at // 60)

    @property
    def answered(self) -> bool:
        return self.outcome == "ok"

    @property
    def provider_tokens(self) -> tuple[int, int]:
        """(prompt, completion) tokens a provider reported for this request (0 for cache hits)."""
        if self.cache_status.startswith("hit") or (self.tier is None and self.cache_status == "miss"):
            return 0, 0
        return self.prompt_tokens, self.completion_tokens


def entry_from(ctx: RequestContext) -> LedgerEntry:
    usage = ctx.usage
    units = ctx.gateway_units or GatewayUnits()
    return LedgerEntry(
        request_id=ctx.request_id, at=ctx.started_epoch, tenant_id=ctx.tenant.tenant_id, route=ctx.route_name,
        tier=ctx.tier, outcome=ctx.outcome, status=ctx.status, error_code=ctx.error_code,
        cache_status=ctx.cache_status, prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
        cached_tokens=usage.cached_tokens if usage else 0, cost_usd=ctx.cost_usd, latency_ms=ctx.latency_ms,
        estimated=usage.estimated if usage else False, cache_write_tokens=usage.cache_write_tokens if usage else 0,
        gateway_cost_usd=ctx.gateway_cost_usd,
        gateway_invocations=units.invocations, gateway_gb_seconds=units.gb_seconds, read_units=units.read_units,
        write_units=units.write_units, log_bytes=units.log_bytes, egress_bytes=units.egress_bytes)


@dataclass(frozen=True, slots=True)
class CostSplit:
    """Spend by what was paid for: model tokens, GPU time, the gateway's own AWS bill."""

    model_usd: float = 0.0
    gpu_usd: float = 0.0
    gateway_usd: float = 0.0

    @property
    def total_usd(self) -> float:
        return self.model_usd + self.gpu_usd + self.gateway_usd


def format_usd(value: float) -> str:
    """Dollars as a person reads them: cents above a dollar, millionths below (one request's cost)."""
    return f"${value:,.2f}" if value >= 1 else f"${value:.6f}"


def cost_split(rows: list[MinuteUsage]) -> CostSplit:
    """Per-minute aggregates' spend split: ``cost_usd`` holds model and GPU, ``gpu_cost_usd`` the GPU's."""
    gpu = sum(row.gpu_cost_usd for row in rows)
    return CostSplit(model_usd=max(0.0, sum(row.cost_usd for row in rows) - gpu), gpu_usd=gpu,
                     gateway_usd=sum(row.gateway_cost_usd for row in rows))


def aggregate(entries: list[LedgerEntry]) -> list[MinuteUsage]:
    """Per-minute totals for every route and tenant the entries touch."""
    rows: dict[tuple[str, int], dict] = {}
    for entry in entries:
        prompt, completion = entry.provider_tokens
        for scope in (f"route:{entry.route}", f"tenant:{entry.tenant_id}"):
            row = rows.setdefault((scope, entry.minute), {"requests": 0, "prompt_tokens": 0,
                                                          "completion_tokens": 0, "cached_tokens": 0,
                                                          "cost_usd": 0.0, "refused": 0, "by_tier": {},
                                                          "gateway_cost_usd": 0.0})
            row["gateway_cost_usd"] += entry.gateway_cost_usd  # a refusal costs the gateway too
            if entry.outcome == "refused":
                row["refused"] += 1
                continue
            if entry.answered:
                row["requests"] += 1
            row["prompt_tokens"] += prompt
            row["completion_tokens"] += completion
            row["cached_tokens"] += entry.cached_tokens if entry.cache_status.startswith("hit") else 0
            row["cost_usd"] += entry.cost_usd
            if entry.tier is not None and entry.answered:
                row["by_tier"][entry.tier] = row["by_tier"].get(entry.tier, 0) + 1
            if entry.answered and scope.startswith("route:"):
                tenth = row.setdefault("by_10s", {}).setdefault(int(entry.at % 60 // 10), [0, 0, 0])
                tenth[0] += 1
                tenth[1] += prompt
                tenth[2] += completion
    return [MinuteUsage(minute=minute, scope=scope, **row) for (scope, minute), row in rows.items()]
