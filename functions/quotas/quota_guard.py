"""The gateway's quota stage: hold each request to its tenant's plan.

Admission: a request that can never fit the plan is a 400; its ``max_tokens`` is clamped to the
plan's output ceiling when it asked for none; then its estimate (prompt tokens by the real
tokenizer plus ``max_tokens``, and their dearest price on the route) is reserved on every limit
the plan sets, through ``QuotaLeases``: the concurrency slot first, then the other limits
together. The first limit without room refuses with a 429 naming it, and every reservation
already taken is given back in full (a refused request holds and spends nothing). Release: each reservation settles with
what the provider reported (a cache hit settles no tokens; a concurrency slot is given back).

Every response carries the ``x-ratelimit-*`` headers of the per-minute limits the plan sets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ..core.config import TierupConfig
from ..core.context import RequestContext
from ..core.pricing import token_cost_usd
from ..core.quota.counters import (MONTHLY_BUDGET_USD, Demand, QuotaCounter, actual_demand, counters_for,
                                   estimated_demand)
from ..core.quota.headers import quota_refusal, rate_limit_headers
from ..core.quota.plan_fit import check_fits, output_ceiling
from ..core.spend_caps import estimate_cost_usd
from ..guardrails.spend_cap_guard import prompt_tokens_of
from .leases import QuotaLeases, Reservation

STATE_KEY = "quota"


class QuotaGuard:
    name = "quota"

    def __init__(self, config: TierupConfig, leases: QuotaLeases | None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._leases = leases
        self._clock = clock

    def _headers(self, ctx: RequestContext, counters: list[QuotaCounter], now: float) -> None:
        assert self._leases is not None
        for counter in counters:
            ctx.response_headers.update(rate_limit_headers(counter, self._leases.remaining(counter), now))

    async def admit(self, ctx: RequestContext) -> None:
        plan = ctx.tenant.plan
        if ctx.kind == "chat":
            assert ctx.chat is not None
            ctx.max_tokens = output_ceiling(plan, ctx.chat.requested_max_tokens, ctx.max_tokens)
        output = ctx.max_tokens if ctx.kind == "chat" else 0
        prompt = prompt_tokens_of(ctx)
        now = self._clock()
        counters = counters_for(plan, ctx.tenant.tenant_id, now) if self._leases is not None else []
        if counters:
            self._headers(ctx, counters, now)
        check_fits(plan, prompt, output, prompt_param="messages" if ctx.kind == "chat" else "input")
        if not counters:
            return
        usd = 0.0
        if any(c.name == MONTHLY_BUDGET_USD for c in counters):
            usd = estimate_cost_usd(self._config, ctx.route_name, prompt, output)
        demand = estimated_demand(prompt, output, usd)
        wanted = [(counter, demand.on(counter)) for counter in counters]
        wanted = [(counter, amount) for counter, amount in wanted if amount > 0]  # $0: nothing priced
        # The concurrency slot first, alone: in a burst it is the limit that refuses, and a
        # request it refuses must never have held per-minute quota meanwhile (that quota, held for
        # an instant by requests about to be refused, refused others as "per minute exceeded").
        slots = [(counter, amount) for counter, amount in wanted if not counter.spends]
        held: list[Reservation] = []
        for group in (slots, [(counter, amount) for counter, amount in wanted if counter.spends]):
            refused = await self._reserve_all(group, held)
            if refused is not None:
                for reservation in held:  # given back in full: a refused request spent nothing
                    await self._leases.settle(reservation, 0.0)
                self._headers(ctx, counters, now)
                raise quota_refusal(*refused, now)
        self._headers(ctx, counters, now)
        ctx.state[STATE_KEY] = held

    async def _reserve_all(self, wanted: list[tuple[QuotaCounter, float]],
                           held: list[Reservation]) -> tuple[QuotaCounter, float] | None:
        """Reserve every (counter, amount) of ``wanted`` into ``held``; the first that has no
        room, or None. From this instance's leases first (no I/O: the usual case); the rest all
        at once, so a request that must go to DynamoDB waits for the slowest limit, not their sum."""
        assert self._leases is not None
        taken = [self._leases.reserve_locally(counter, amount) for counter, amount in wanted]
        missing = [index for index, reservation in enumerate(taken) if reservation is None]
        if missing:
            fetched = await asyncio.gather(*(self._leases.reserve(*wanted[index]) for index in missing))
            for index, reservation in zip(missing, fetched):
                taken[index] = reservation
        held.extend(reservation for reservation in taken if reservation is not None)
        return next((want for want, reservation in zip(wanted, taken) if reservation is None), None)

    def _actual_cost(self, ctx: RequestContext) -> float:
        if ctx.usage is None or ctx.cache_status.startswith("hit"):
            return 0.0
        return token_cost_usd(self._config.pricing, ctx.tier, ctx.model, ctx.usage)

    async def settle_later(self, plan, tenant_id: str, at: float, unused_tokens: float, unused_usd: float) -> None:
        """Settle, in the shared counters, work whose estimate was counted at ``at`` in another
        process (a Bedrock batch job's lines): ``unused_*`` = estimate - actual, as in
        ``release``. Windows already over are left as they are (nothing they could refuse now)."""
        if self._leases is None:
            return
        now = self._clock()
        unused = Demand(requests=0.0, tokens=unused_tokens, usd=unused_usd, slots=0.0)
        for counter in counters_for(plan, tenant_id, at):
            if counter.spends and counter.resets_at is not None and counter.resets_at > now:
                await self._leases.settle_later(counter, unused.on(counter))

    async def release(self, ctx: RequestContext) -> None:
        held: list[Reservation] | None = ctx.state.pop(STATE_KEY, None)
        if not held:
            return
        assert self._leases is not None
        served_by_provider = ctx.usage is not None and not ctx.cache_status.startswith("hit")
        actual = actual_demand(ctx.usage if served_by_provider else None, self._actual_cost(ctx))
        for reservation in held:
            await self._leases.settle(reservation, actual.on(reservation.lease.counter))
