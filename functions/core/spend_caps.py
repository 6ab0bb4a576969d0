"""Spend caps as plain data: which caps a request counts against, their budget periods, and
the estimated cost a request reserves before the provider is called.

A cap's counter key names its scope and period (``spend#route:chat#2026-11``), so a new period
starts a new counter at zero and old counters simply expire.

No I/O here.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from .config import PER_TOKEN_TIERS, TierupConfig
from .config.budgets import BudgetAction
from .pricing import token_price

Period = Literal["monthly", "daily"]

#: counters outlive their period by this long, so `tierup budgets` can still show last period
COUNTER_GRACE_S = 40 * 86400


def period_bounds(period: Period, now: float) -> tuple[str, float, float]:
    """The period containing ``now`` (UTC): its label, start and end as epoch seconds."""
    moment = datetime.fromtimestamp(now, tz=timezone.utc)
    if period == "monthly":
        start = datetime(moment.year, moment.month, 1, tzinfo=timezone.utc)
        days = calendar.monthrange(moment.year, moment.month)[1]
        label = f"{moment.year:04d}-{moment.month:02d}"
        return label, start.timestamp(), start.timestamp() + days * 86400
    start = datetime(moment.year, moment.month, moment.day, tzinfo=timezone.utc)
    label = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    return label, start.timestamp(), start.timestamp() + 86400


def iso_utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def scope_label(scope: str) -> str:
    """``route:chat`` -> ``route 'chat'``: how a person reads a scope."""
    if scope == "global":
        return "the whole gateway"
    kind, _, name = scope.partition(":")
    return f"{kind} {name!r}"


@dataclass(frozen=True, slots=True)
class SpendCap:
    """One cap in one period: e.g. route ``chat``, monthly, 500 USD, refuse at 100%."""

    scope: str
    period: Period
    limit_usd: float
    action: BudgetAction
    #: the period's label, start and end (epoch seconds) when this cap was resolved
    label: str
    starts_at: float
    ends_at: float

    @property
    def counter_key(self) -> str:
        return f"spend#{self.scope}#{self.label}"

    @property
    def name(self) -> str:
        """How messages name the budget: ``route:chat monthly``."""
        return f"{self.scope} {self.period}"

    @property
    def expires_at(self) -> int:
        return int(self.ends_at + COUNTER_GRACE_S)

    def projected_usd(self, spent_usd: float, now: float) -> float:
        """Spend at the end of the period if it goes on at the rate so far (linear)."""
        elapsed = max(now - self.starts_at, 60.0)  # no wild projections in the first minute
        return spent_usd * (self.ends_at - self.starts_at) / elapsed

    def describe(self) -> str:
        return f"{self.name} cap of ${self.limit_usd:,.2f}"


def caps_for_scope(config: TierupConfig, scope: str, now: float) -> list[SpendCap]:
    cap = config.budgets.cap_for(scope)
    if cap is None:
        return []
    found = []
    for period, limit in (("monthly", cap.monthly_usd), ("daily", cap.daily_usd)):
        if limit is not None:
            label, start, end = period_bounds(period, now)
            found.append(SpendCap(scope, period, limit, cap.action, label, start, end))
    return found


def request_scopes(route: str, tenant_id: str) -> tuple[str, str, str]:
    """Every scope a request belongs to, broadest first."""
    return ("global", f"route:{route}", f"tenant:{tenant_id}")


def caps_for_request(config: TierupConfig, route: str, tenant_id: str, now: float) -> list[SpendCap]:
    caps: list[SpendCap] = []
    for scope in request_scopes(route, tenant_id):
        caps.extend(caps_for_scope(config, scope, now))
    return caps


def configured_scopes(config: TierupConfig) -> list[str]:
    budgets = config.budgets
    return (["global"] + [f"route:{name}" for name in budgets.routes]
            + [f"tenant:{tenant}" for tenant in budgets.tenants])


def all_caps(config: TierupConfig, now: float) -> list[SpendCap]:
    caps: list[SpendCap] = []
    for scope in configured_scopes(config):
        caps.extend(caps_for_scope(config, scope, now))
    return caps


def route_price_per_token(config: TierupConfig, route: str) -> tuple[float, float]:
    """USD per (input, output) token: the dearest per-token price among the route's models.

    The tier a request will use is not known before routing; the dearest per-token model is an
    upper bound (GPU tiers bill by the second, not per token: the traffic policy charges their
    GPU time to the same caps), so a reservation never undercounts; nor does a prompt that turns
    out to be a prompt-cache write, dearer than plain input. An unpriced model raises.
    """
    spec = config.routes[route]
    input_price = output_price = 0.0
    for tier in PER_TOKEN_TIERS:
        price = token_price(config.pricing, tier, spec.model_for(tier)) if spec.model_for(tier) else None
        if price is not None:
            input_price = max(input_price, price.dearest_input_per_mtok / 1_000_000)
            output_price = max(output_price, price.output_per_mtok / 1_000_000)
    return input_price, output_price


def cost_at(prices: tuple[float, float], prompt_tokens: int, max_output_tokens: int) -> float:
    """What a request may cost at most at (input, output) USD per token: its prompt plus ``max_tokens``."""
    return prompt_tokens * prices[0] + max_output_tokens * prices[1]


def estimate_cost_usd(config: TierupConfig, route: str, prompt_tokens: int, max_output_tokens: int) -> float:
    return cost_at(route_price_per_token(config, route), prompt_tokens, max_output_tokens)
