"""The spend-cap stage: concurrent requests cannot push spend past a cap by more than what is
in flight; leases keep DynamoDB off most requests; one alert per threshold across instances;
100% engages the kill switch."""

from __future__ import annotations

import asyncio
import random

import pytest

from functions.core.chat import ChatRequest, Usage
from functions.core.context import RequestContext, Tenant
from functions.core.errors import BudgetExceededError
from functions.guardrails.budget_alerter import BudgetAlerter
from functions.guardrails.kill_switch_guard import KillSwitchGuard
from functions.guardrails.killswitch_executor import KillSwitch
from functions.guardrails.spend_cap_guard import SpendCapGuard
from functions.guardrails.spend_leases import SpendLeases
from tests.fakes.counter_store import FakeCounterStore
from tests.fakes.guardrails import FakeGuardrailStore, ListPublisher
from tests.support import make_config

MODEL = "us.meta.llama3-1-8b-instruct-v1:0"  # the example's chat route (a US inference profile)
#: $1 per 1000 tokens in and out, so costs are easy to read; the chat route caps at $1/day
OVERRIDES = {
    "pricing": {"models": {MODEL: {"input-per-mtok": 1000.0, "output-per-mtok": 1000.0},
                           "gpt-4o-mini": {"input-per-mtok": 1000.0, "output-per-mtok": 1000.0}}},
    "budgets": {"global": {"monthly-usd": 1000.0}, "routes": {"chat": {"daily-usd": 1.0, "action": "refuse"}},
                "thresholds": [0.5, 0.8, 1.0]},
}


class Instance:
    """One gateway instance's budget stages, sharing the counters and state store with others."""

    def __init__(self, config, counters, store, publisher):
        flags = KillSwitchGuard(store, config.budgets.flag_refresh_s)
        self.flags = flags
        self.leases = SpendLeases(counters, config.budgets)
        alerter = BudgetAlerter(config.budgets, store, publisher, KillSwitch(config, store),
                                on_engaged=flags.note_engaged)
        self.guard = SpendCapGuard(config, self.leases, alerter)


def _ctx(max_tokens=10, text="hi") -> RequestContext:
    chat = ChatRequest.model_validate({"model": "chat", "messages": [{"role": "user", "content": text}]})
    config = make_config()
    return RequestContext(request_id="r", route_name="chat", route=config.routes["chat"], kind="chat",
                          tenant=Tenant("acme", "pro", config.plans["pro"]), chat=chat, max_tokens=max_tokens)


async def _serve(instance: Instance, ctx: RequestContext, completion_tokens: int, delay: float) -> float:
    """Admit, 'call the provider', settle; return the actual cost (0 if refused)."""
    await instance.guard.admit(ctx)
    try:
        await asyncio.sleep(delay)
        ctx.tier, ctx.model = "serverless", MODEL
        ctx.usage = Usage(prompt_tokens=ctx.state["prompt_tokens"], completion_tokens=completion_tokens)
        return instance.guard.actual_cost(ctx)
    finally:
        await instance.guard.release(ctx)


def _run_load(instances, clients: int, requests_each: int):
    async def client(index: int):
        rng = random.Random(index)
        spent, refused = 0.0, 0
        for _ in range(requests_each):
            instance = instances[rng.randrange(len(instances))]
            try:
                spent += await _serve(instance, _ctx(), rng.randint(1, 10), rng.random() * 0.002)
            except BudgetExceededError:
                refused += 1
        return spent, refused

    async def main():
        return await asyncio.gather(*(client(i) for i in range(clients)))

    results = asyncio.run(main())
    return sum(s for s, _ in results), sum(r for _, r in results)


@pytest.mark.parametrize("clients", [8, 64])
def test_concurrent_clients_across_instances_never_overspend_the_cap(clients):
    config = make_config(OVERRIDES)
    counters, store, publisher = FakeCounterStore(), FakeGuardrailStore(), ListPublisher()
    instances = [Instance(config, counters, store, publisher) for _ in range(3)]
    spent, refused = _run_load(instances, clients, 400 // clients + 20)
    assert refused > 0
    assert spent <= 1.0 + 1e-9  # the estimate bounds the actual cost: no spend past the cap at all
    assert spent > 0.5  # and most of the cap was usable
    subjects = [subject for subject, _, _ in publisher.sent if "route:chat daily" in subject]
    assert len(subjects) == 3  # 50%, 80%, reached: once each across the three instances
    assert sum("REACHED" in s for s in subjects) == 1
    assert store.flag_items["route:chat"].budget == "route:chat daily cap of $1.00"


def test_leases_keep_counter_writes_far_below_one_per_request():
    config = make_config({**OVERRIDES, "budgets": {"global": {"monthly-usd": 1000.0}, "lease-max-usd": 1.0}})
    counters = FakeCounterStore()
    instance = Instance(config, counters, FakeGuardrailStore(), ListPublisher())
    _run_load([instance], 8, 50)
    assert counters.writes < 40  # 400 requests


def test_counter_holds_exactly_the_settled_cost_plus_unspent_leases():
    config = make_config({**OVERRIDES, "budgets": {"global": {"monthly-usd": None},
                                                    "routes": {"chat": {"monthly-usd": None, "daily-usd": 100.0}}}})
    counters = FakeCounterStore()
    instance = Instance(config, counters, FakeGuardrailStore(), ListPublisher())

    def serve(max_tokens: int, usage: Usage) -> float:
        ctx = _ctx(max_tokens=max_tokens)
        asyncio.run(instance.guard.admit(ctx))
        estimate = ctx.state["budget"][1]
        assert estimate == pytest.approx((ctx.state["prompt_tokens"] + max_tokens) / 1000)
        ctx.tier, ctx.model, ctx.usage = "serverless", MODEL, usage
        asyncio.run(instance.guard.release(ctx))
        return instance.guard.actual_cost(ctx)

    def committed() -> float:
        return sum(counters.read(list(counters.values)).values())

    spent = serve(10, Usage(prompt_tokens=8, completion_tokens=2))
    assert committed() == pytest.approx(spent + instance.leases.outstanding())
    # A provider that reports far more tokens than estimated: the excess is owed to the counter at once.
    spent += serve(1, Usage(prompt_tokens=5000, completion_tokens=0))
    assert spent > 5.0
    assert committed() == pytest.approx(spent + instance.leases.outstanding())
    asyncio.run(instance.leases.hand_back())
    assert committed() == pytest.approx(spent)


def test_refusal_names_the_budget_and_when_it_resets():
    config = make_config({**OVERRIDES, "budgets": {"routes": {"chat": {"daily-usd": 0.001}}}})
    instance = Instance(config, FakeCounterStore(), FakeGuardrailStore(), ListPublisher())
    with pytest.raises(BudgetExceededError) as caught:
        asyncio.run(instance.guard.admit(_ctx()))
    message = caught.value.message
    assert "route:chat daily cap of $0.00" in message and "resets at" in message and "T00:00:00Z" in message
    assert caught.value.status == 503 and int(caught.value.headers["retry-after"]) > 0


def test_refused_request_gives_back_what_other_caps_reserved():
    config = make_config({**OVERRIDES, "budgets": {"global": {"monthly-usd": 1000.0},
                                                    "routes": {"chat": {"daily-usd": 0.001}}}})
    instance = Instance(config, FakeCounterStore(), FakeGuardrailStore(), ListPublisher())
    before = instance.leases.outstanding()
    with pytest.raises(BudgetExceededError):
        asyncio.run(instance.guard.admit(_ctx()))
    assert instance.leases.outstanding() > before  # the global reservation went back to the lease


def test_cap_reached_flag_is_honoured_by_this_instance_at_once():
    config = make_config({**OVERRIDES, "budgets": {"routes": {"chat": {"daily-usd": 0.05}}}})
    store = FakeGuardrailStore()
    instance = Instance(config, FakeCounterStore(), store, ListPublisher())

    async def drive():
        await instance.flags.admit(_ctx())  # loads the (empty) flags
        refused = 0
        for _ in range(20):
            try:
                await _serve(instance, _ctx(), 10, 0)
            except BudgetExceededError:
                refused += 1
        reads = store.flag_reads
        with pytest.raises(BudgetExceededError) as caught:
            await instance.flags.admit(_ctx())
        return refused, caught.value, store.flag_reads - reads

    refused, error, reads = asyncio.run(drive())
    assert refused > 0 and "route:chat daily cap" in error.message
    assert reads == 0  # honoured from the local copy, not by re-reading the table


def test_lease_blocks_shrink_to_one_estimate_near_the_cap():
    from functions.core.spend_caps import caps_for_request
    from functions.guardrails.spend_leases import Lease

    config = make_config({"budgets": {"lease-fraction": 0.02, "lease-max-usd": 1.0}})
    leases = SpendLeases(FakeCounterStore(), config.budgets)
    cap = caps_for_request(config, "chat", "acme", 1.8e9)[1]  # route:chat monthly, $500
    assert leases.block_size(cap, Lease(seen_total=0.0), 0.01) == 1.0  # far away: the maximum
    assert leases.block_size(cap, Lease(seen_total=480.0), 0.01) == pytest.approx(0.4)  # 2% of the $20 left
    assert leases.block_size(cap, Lease(seen_total=499.9), 0.01) == 0.01  # near: just this request


def test_an_alert_that_could_not_be_published_is_sent_by_the_next_instance():
    class DownPublisher(ListPublisher):
        def publish(self, subject, body, attributes):
            self.sent.append((subject, body, attributes))
            raise ConnectionError("sns unreachable")

    config = make_config({**OVERRIDES, "budgets": {"routes": {"chat": {"daily-usd": 0.05}}}})
    counters, store, working = FakeCounterStore(), FakeGuardrailStore(), ListPublisher()
    down = DownPublisher()
    first = Instance(config, counters, store, down)
    second = Instance(config, counters, store, working)

    async def drive(instance):
        for _ in range(10):
            try:
                await _serve(instance, _ctx(), 10, 0)
            except BudgetExceededError:
                pass

    asyncio.run(drive(first))
    assert store.markers == set()  # nothing was sent, so nothing is marked as sent
    asyncio.run(drive(second))
    attempted = sorted(attributes["threshold"] for _, _, attributes in down.sent)
    assert "1" in attempted
    assert sorted(attributes["threshold"] for _, _, attributes in working.sent) == attempted


@pytest.mark.parametrize("include", [True, False])
def test_caps_count_the_gateways_own_cost_unless_told_not_to(include):
    config = make_config({**OVERRIDES, "budgets": {**OVERRIDES["budgets"], "include-gateway-cost": include}})
    instance = Instance(config, FakeCounterStore(), FakeGuardrailStore(), ListPublisher())
    ctx = _ctx()
    ctx.tier, ctx.model = "serverless", MODEL
    ctx.usage = Usage(prompt_tokens=1, completion_tokens=1)  # $0.002 at the test's prices
    ctx.gateway_cost_usd = 0.0005
    assert instance.guard.actual_cost(ctx) == pytest.approx(0.0025 if include else 0.002)
    ctx.cache_status = "hit-exact"  # the model was not called; the gateway still served it
    assert instance.guard.actual_cost(ctx) == pytest.approx(0.0005 if include else 0.0)
