"""The gateway's spend-cap stage: reserve a request's estimated cost against every cap it counts
against (global, its route, its tenant; monthly and daily) before the provider is called, and
settle with the actual cost after. A cap without room refuses with a 503 naming the budget and
when it resets; crossing a threshold sends its alert; reaching a cap engages its kill switch.

Estimates: prompt tokens (the real tokenizer; tool schemas and images counted too) plus the request's ``max_tokens``, at the dearest
per-token price among the route's models (``functions.core.spend_caps.estimate_cost_usd``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..adapters.store_calls import call_store
from ..core.config import TierupConfig
from ..core.context import RequestContext
from ..core.errors import BudgetExceededError, StorageUnavailableError
from ..core.pricing import token_cost_usd
from ..core.spend_caps import SpendCap, caps_for_request, cost_at, iso_utc, route_price_per_token, scope_label
from ..core.tokens import count_request_tokens, count_tokens
from .budget_alerter import BudgetAlerter
from .spend_leases import SpendLeases

STATE_KEY = "budget"


def prompt_tokens_of(ctx: RequestContext) -> int:
    """Prompt tokens of a request, counted once and shared with other stages via ``ctx.state``."""
    cached = ctx.state.get("prompt_tokens")
    if cached is None:
        if ctx.chat is not None:
            chat = ctx.chat
            cached = count_request_tokens(chat.messages, chat.tools, chat.response_format)
        elif ctx.embedding is not None:
            cached = sum(count_tokens(text) for text in ctx.embedding.inputs)
        else:
            cached = 0
        ctx.state["prompt_tokens"] = cached
    return cached


def cap_refusal(cap: SpendCap, now: float) -> BudgetExceededError:
    return BudgetExceededError(
        f"budget exhausted: the {cap.describe()} has no room left for this request, so "
        f"{scope_label(cap.scope)} is refused until the period resets at {iso_utc(cap.ends_at)}",
        headers={"retry-after": str(max(1, int(cap.ends_at - now)))})


class SpendCapGuard:
    name = "budget"

    def __init__(self, config: TierupConfig, leases: SpendLeases, alerter: BudgetAlerter, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._leases = leases
        self._alerter = alerter
        self._clock = clock
        #: (route, tenant) -> (valid until, caps): resolving periods costs more than the rest of admit
        self._caps: dict[tuple[str, str], tuple[float, list[SpendCap]]] = {}
        self._prices: dict[str, tuple[float, float]] = {}

    def caps(self, route: str, tenant_id: str, now: float) -> list[SpendCap]:
        cached = self._caps.get((route, tenant_id))
        if cached is not None and now < cached[0]:
            return cached[1]
        caps = caps_for_request(self._config, route, tenant_id, now)
        if len(self._caps) > 10_000:  # many tenants: start over rather than grow without bound
            self._caps.clear()
        self._caps[(route, tenant_id)] = (min((cap.ends_at for cap in caps), default=now + 3600), caps)
        return caps

    def estimate(self, ctx: RequestContext) -> float:
        prices = self._prices.get(ctx.route_name)
        if prices is None:
            prices = self._prices[ctx.route_name] = route_price_per_token(self._config, ctx.route_name)
        return cost_at(prices, prompt_tokens_of(ctx), ctx.max_tokens if ctx.kind == "chat" else 0)

    async def admit(self, ctx: RequestContext) -> None:
        now = self._clock()
        caps = self.caps(ctx.route_name, ctx.tenant.tenant_id, now)
        if not caps:
            return
        amount = self.estimate(ctx)
        if amount <= 0:
            return  # nothing priced per token on this route: nothing to cap
        held: list[SpendCap] = []
        for cap in caps:
            reservation = await self._leases.reserve(cap, amount)
            if reservation.wrote:
                await self._announce(cap, reservation.total, reservation.reached)
            if not reservation.admitted:
                for other in held:
                    self._leases.credit(other, amount)
                raise cap_refusal(cap, now)
            held.append(cap)
        ctx.state[STATE_KEY] = (held, amount)

    async def _announce(self, cap: SpendCap, total: float, reached: bool) -> None:
        thresholds = self._alerter.crossed(cap, total, reached)
        if thresholds:
            try:  # bounded: a frozen store or topic must not hold the request (the alert carries on)
                await call_store(self._alerter.announce, cap, thresholds, total, store="alerts")
            except StorageUnavailableError:
                pass  # logged once per interval where it happened

    def actual_cost(self, ctx: RequestContext) -> float:
        """The model's cost, and the gateway's own (``[budgets] include-gateway-cost``)."""
        gateway = ctx.gateway_cost_usd if self._config.budgets.include_gateway_cost else 0.0
        if ctx.usage is None or ctx.cache_status.startswith("hit"):
            return gateway
        return token_cost_usd(self._config.pricing, ctx.tier, ctx.model, ctx.usage) + gateway

    async def release(self, ctx: RequestContext) -> None:
        held = ctx.state.pop(STATE_KEY, None)
        if held is None:
            return
        caps, amount = held
        unused = amount - self.actual_cost(ctx)
        for cap in caps:
            await self._leases.settle(cap, unused)

    async def settle_later(self, route: str, tenant_id: str, at: float, unused: float) -> None:
        """Settle, in the caps' shared counters, work whose estimate was counted at ``at`` in
        another process (a Bedrock batch job's answers arrive hours after it was submitted):
        ``unused`` = estimate - actual, as in ``release``."""
        for cap in self.caps(route, tenant_id, at):
            await self._leases.settle(cap, unused)
        await self._leases.hand_back()  # written now: the process that settles may not live long

