"""The quota stage on in-memory counters: a refusal by one limit gives back what the others
reserved, settling refunds the unused estimate, cache hits settle no tokens, headers are set."""

from __future__ import annotations

import asyncio

import pytest

from functions.core.chat import ChatRequest, Usage
from functions.core.config import PlanConfig, QuotaConfig
from functions.core.context import RequestContext, Tenant
from functions.core.errors import RateLimitError
from functions.core.quota.counters import counters_for
from functions.quotas.leases import QuotaLeases
from functions.quotas.quota_guard import QuotaGuard
from tests.fakes.quota_hold_store import FakeQuotaHoldStore
from tests.support import make_config

CONFIG = make_config()
NOW = 1_795_436_537.0


def ctx(plan: PlanConfig, max_tokens: int | None = 100) -> RequestContext:
    body = {"model": "chat", "messages": [{"role": "user", "content": "hello there"}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    chat = ChatRequest.model_validate(body)
    return RequestContext(request_id="r", route_name="chat", route=CONFIG.routes["chat"], kind="chat",
                          tenant=Tenant("acme", "p", plan), chat=chat, max_tokens=max_tokens or 512)


def guard(store: FakeQuotaHoldStore) -> QuotaGuard:
    leases = QuotaLeases(store, QuotaConfig(), clock=lambda: NOW)
    return QuotaGuard(CONFIG, leases, clock=lambda: NOW)


def used(store: FakeQuotaHoldStore, plan: PlanConfig) -> dict[str, float]:
    return {c.name: store.items[c.key]["used"] for c in counters_for(plan, "acme", NOW) if c.key in store.items}


def test_a_refusal_by_one_limit_gives_back_what_the_others_reserved():
    plan = PlanConfig(**{"requests-per-minute": 100, "tokens-per-minute": 150})
    store = FakeQuotaHoldStore()
    quota = guard(store)

    async def run():
        first = ctx(plan)
        await quota.admit(first)  # ~110 tokens of 150 reserved
        with pytest.raises(RateLimitError) as refused:
            await quota.admit(ctx(plan))
        return first, refused.value

    first, refusal = asyncio.run(run())
    assert refusal.code == "tokens_per_minute_exceeded"
    assert quota._leases.remaining(counters_for(plan, "acme", NOW)[0]) == 99  # the 2nd request's 1 came back
    assert first.response_headers["x-ratelimit-limit-tokens"] == "150"


def test_settling_refunds_the_unused_estimate_and_cache_hits_settle_no_tokens():
    plan = PlanConfig(**{"tokens-per-minute": 100_000})
    store = FakeQuotaHoldStore()
    quota = guard(store)

    async def run():
        served, hit = ctx(plan), ctx(plan)
        await quota.admit(served)
        await quota.admit(hit)
        served.usage, served.model = Usage(prompt_tokens=12, completion_tokens=3), "m"
        hit.usage, hit.cache_status = Usage(prompt_tokens=12, completion_tokens=3), "hit-exact"
        await quota.release(served)
        await quota.release(hit)
        await quota._leases.flush(final=True)

    asyncio.run(run())
    key = counters_for(plan, "acme", NOW)[0].key
    assert store.items[key]["settled"] == 15 and store.items[key]["used"] == 15


def test_no_max_tokens_is_clamped_to_the_plan_and_reserved_as_such():
    plan = PlanConfig(**{"tokens-per-minute": 100_000, "max-output-tokens": 64})
    request = ctx(plan, max_tokens=None)
    asyncio.run(guard(FakeQuotaHoldStore()).admit(request))
    assert request.max_tokens == 64


def test_a_request_refused_by_the_concurrency_limit_never_touches_the_per_minute_limits():
    plan = PlanConfig(**{"requests-per-minute": 20, "tokens-per-minute": 100_000, "max-concurrent": 2})
    store = FakeQuotaHoldStore()
    quota = guard(store)

    async def run():
        admitted = [ctx(plan), ctx(plan)]
        for request in admitted:
            await quota.admit(request)
        before = {key: dict(item) for key, item in store.items.items()}
        # a burst of 30 at once, more than the minute's 20 requests: only the slots may refuse
        refusals = await asyncio.gather(*(quota.admit(ctx(plan)) for _ in range(30)), return_exceptions=True)
        return before, [(r.code, r.headers["retry-after"]) for r in refusals if isinstance(r, RateLimitError)]

    before, codes = asyncio.run(run())
    assert len(codes) == 30 and set(codes) == {("concurrency_limit_exceeded", "1")}
    per_minute = [c for c in counters_for(plan, "acme", NOW) if c.spends]
    assert {c.key: store.items[c.key]["used"] for c in per_minute} == {c.key: before[c.key]["used"] for c in per_minute}
