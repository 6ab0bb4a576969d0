"""Which shared counters a tenant's plan enforces, over which windows, and how much one request
draws on each: an estimate when it is admitted, its actual usage when it settles.

    requests-per-minute   1 per request                      window: the UTC minute
    tokens-per-minute     prompt + max_tokens, then actual   window: the UTC minute
    tokens-per-day        prompt + max_tokens, then actual   window: the UTC day
    monthly-budget-usd    estimated $, then actual $         window: the UTC month
    max-concurrent        1 while in flight, then 0          no window (held, never spent)

A counter's key names its tenant, limit and window (``quota#acme#tpm#29410433``), so a new window
starts a new counter at zero and old ones expire by TTL.

No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from ..chat import Usage
from ..config import PlanConfig
from ..spend_caps import period_bounds

REQUESTS_PER_MINUTE = "requests-per-minute"
TOKENS_PER_MINUTE = "tokens-per-minute"
TOKENS_PER_DAY = "tokens-per-day"
MONTHLY_BUDGET_USD = "monthly-budget-usd"
MAX_CONCURRENT = "max-concurrent"

_SHORT = {REQUESTS_PER_MINUTE: "rpm", TOKENS_PER_MINUTE: "tpm", TOKENS_PER_DAY: "tpd",
          MONTHLY_BUDGET_USD: "usd", MAX_CONCURRENT: "conc"}
#: counter items outlive their window by this long, so `tierup usage` can still show them
_GRACE_S = {REQUESTS_PER_MINUTE: 300, TOKENS_PER_MINUTE: 300, TOKENS_PER_DAY: 2 * 86400,
            MONTHLY_BUDGET_USD: 40 * 86400}
#: the concurrency counter never ends by window; its item lives while it is used
CONCURRENCY_ITEM_TTL_S = 7 * 86400


@dataclass(frozen=True, slots=True)
class QuotaCounter:
    """One limit of one tenant in one window."""

    name: str
    tenant_id: str
    limit: float
    #: the window's label (``""`` for the concurrency counter)
    window: str
    #: epoch seconds when the window ends (None: no window)
    resets_at: float | None
    #: TTL of the counter's item (epoch seconds)
    expires_at: int

    @property
    def key(self) -> str:
        return f"quota#{self.tenant_id}#{_SHORT[self.name]}#{self.window}"

    @property
    def integral(self) -> bool:
        """Counts whole units (requests, tokens, slots), so leases are whole numbers too."""
        return self.name != MONTHLY_BUDGET_USD

    @property
    def spends(self) -> bool:
        """False for the concurrency counter: a slot is held, then given back, never spent."""
        return self.name != MAX_CONCURRENT

    def reset_in(self, now: float) -> float:
        return max(0.0, self.resets_at - now) if self.resets_at is not None else 0.0


def minute_window(now: float) -> tuple[str, float]:
    minute = int(now // 60)
    return str(minute), (minute + 1) * 60.0


def counters_for(plan: PlanConfig, tenant_id: str, now: float) -> list[QuotaCounter]:
    """Every counter the plan limits, for the windows containing ``now``."""
    found: list[QuotaCounter] = []
    minute, minute_end = minute_window(now)
    day, _, day_end = period_bounds("daily", now)
    month, _, month_end = period_bounds("monthly", now)
    windowed = ((REQUESTS_PER_MINUTE, plan.requests_per_minute, minute, minute_end),
                (TOKENS_PER_MINUTE, plan.tokens_per_minute, minute, minute_end),
                (TOKENS_PER_DAY, plan.tokens_per_day, day, day_end),
                (MONTHLY_BUDGET_USD, plan.monthly_budget_usd, month, month_end))
    for name, limit, window, ends in windowed:
        if limit is not None:
            found.append(QuotaCounter(name, tenant_id, float(limit), window, ends, int(ends + _GRACE_S[name])))
    if plan.max_concurrent is not None:
        found.append(QuotaCounter(MAX_CONCURRENT, tenant_id, float(plan.max_concurrent), "", None,
                                  int(now + CONCURRENCY_ITEM_TTL_S)))
    return found


@dataclass(frozen=True, slots=True)
class Demand:
    """What one request draws on each kind of limit."""

    requests: float = 1.0
    tokens: float = 0.0
    usd: float = 0.0
    slots: float = 1.0

    def on(self, counter: QuotaCounter) -> float:
        if counter.name == REQUESTS_PER_MINUTE:
            return self.requests
        if counter.name in (TOKENS_PER_MINUTE, TOKENS_PER_DAY):
            return self.tokens
        if counter.name == MONTHLY_BUDGET_USD:
            return self.usd
        return self.slots


def estimated_demand(prompt_tokens: int, max_output_tokens: int, estimated_usd: float) -> Demand:
    """At admission: the prompt as counted plus every output token the request may produce."""
    return Demand(tokens=float(prompt_tokens + max_output_tokens), usd=estimated_usd)


def actual_demand(usage: Usage | None, cost_usd: float) -> Demand:
    """At settling: what the provider reported (nothing, for a request that got no answer). A
    request that reached the provider still counts as one request; its slot is given back."""
    tokens = float(usage.prompt_tokens + usage.completion_tokens) if usage is not None else 0.0
    return Demand(requests=1.0, tokens=tokens, usd=cost_usd, slots=0.0)


def day_label(now: float) -> str:
    return datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y-%m-%d")
