"""GPU time is spend: reserved min_containers and scale-to-zero containers are billed per minute
into the counters the caps read, once per interval, and a cap they reach refuses requests and
engages its kill switch."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from functions.core.chat import ChatRequest
from functions.core.context import RequestContext, Tenant
from functions.core.errors import BudgetExceededError
from functions.core.gpu_spend import charge_for, counter_amounts
from functions.core.ports import MinuteUsage
from functions.core.spend_caps import all_caps
from functions.core.route_table import RouteEntry
from functions.guardrails.budget_alerter import BudgetAlerter
from functions.guardrails.killswitch_executor import KillSwitch
from functions.guardrails.spend_cap_guard import SpendCapGuard
from functions.guardrails.spend_leases import SpendLeases
from functions.promotion.cycle import PolicyCycle
from functions.promotion.gpu_spend import GpuSpendMeter
from tests.fakes.counter_store import FakeCounterStore
from tests.fakes.gpu_control import FakeGpuControl
from tests.fakes.gpu_spend import FakeGpuSpendLedger
from tests.fakes.guardrails import FakeGuardrailStore, ListPublisher
from tests.fakes.promotion_store import InMemoryPolicyJournal, InMemoryRouteTable, InMemoryUsageAggregates
from tests.support import make_config

CONFIG = make_config()
L40S = CONFIG.pricing.gpus["L40S"]  # the chat route's GPU
#: 2026-11-10 12:00 UTC, a whole minute
T0 = datetime(2026, 11, 10, 12, 0, tzinfo=timezone.utc).timestamp()
M0 = int(T0 // 60)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _reserved(replicas: int) -> dict[str, RouteEntry]:
    return {"chat": RouteEntry("chat", tier="reserved", replicas=replicas, target_replicas=replicas)}


def test_reserved_replicas_cost_min_containers_times_the_price_every_second():
    charge = charge_for("chat", "L40S", L40S, 2, M0, M0 + 3, {})
    assert [m.gpu_seconds for m in charge.minutes] == [120.0, 120.0, 120.0]
    assert charge.usd == pytest.approx(2 * 180 * L40S.usd_per_second)
    assert not charge.estimated


def test_scale_to_zero_time_is_estimated_from_traffic_plus_the_idle_window():
    busy = MinuteUsage(minute=M0 + 1, scope="route:chat", requests=10, prompt_tokens=1000,
                       completion_tokens=500, by_tier={"serverless-gpu": 10})
    charge = charge_for("chat", "L40S", L40S, 0, M0, M0 + 4, {M0 + 1: busy})
    # nothing before the first request; one container for its minute; then idle-s (60 s) more
    assert [(m.minute, m.gpu_seconds) for m in charge.minutes] == [(M0 + 1, 60.0), (M0 + 2, 60.0)]
    assert charge.estimated
    # requests served on serverless cost no GPU time
    on_bedrock = MinuteUsage(minute=M0, scope="route:chat", requests=10, by_tier={"serverless": 10})
    assert charge_for("chat", "L40S", L40S, 0, M0, M0 + 1, {M0: on_bedrock}).minutes == ()


def test_each_minute_counts_against_the_caps_of_its_own_period():
    midnight = int(datetime(2026, 11, 11, tzinfo=timezone.utc).timestamp() // 60)
    charge = charge_for("chat", "L40S", L40S, 1, midnight - 1, midnight + 1, {})
    amounts = counter_amounts(CONFIG, charge)
    minute_usd = 60 * L40S.usd_per_second
    assert amounts["spend#route:chat#2026-11-10"][0] == pytest.approx(minute_usd)
    assert amounts["spend#route:chat#2026-11-11"][0] == pytest.approx(minute_usd)
    assert amounts["spend#route:chat#2026-11"][0] == pytest.approx(2 * minute_usd)
    assert amounts["spend#global#2026-11"][0] == pytest.approx(2 * minute_usd)
    assert not any(key.startswith("spend#tenant:") for key in amounts)


def test_a_rerun_of_the_same_minute_bills_nothing_twice():
    counters = FakeCounterStore(clock=lambda: T0)
    ledger = FakeGpuSpendLedger(counters)
    clock = Clock(T0 + 5)
    meter = GpuSpendMeter(CONFIG, ledger, InMemoryUsageAggregates(), counters=counters, clock=clock)
    meter.charge(_reserved(2))  # first run: the minute just ended
    meter.charge(_reserved(2))  # the same minute again (a retried invocation)
    clock.now = T0 + 60 + 30
    meter.charge(_reserved(2))
    clock.now = T0 + 60 + 50
    meter.charge(_reserved(2))
    billed = counters.read(["spend#route:chat#2026-11"])["spend#route:chat#2026-11"]
    assert billed == pytest.approx(2 * 2 * 60 * L40S.usd_per_second)  # minutes M0-1 and M0, once each
    assert ledger.cursors["chat"] == M0 + 1


def test_a_policy_that_missed_runs_bills_the_minutes_it_missed():
    counters = FakeCounterStore(clock=lambda: T0)
    ledger = FakeGpuSpendLedger(counters)
    clock = Clock(T0)
    meter = GpuSpendMeter(CONFIG, ledger, InMemoryUsageAggregates(), counters=counters, clock=clock)
    meter.charge(_reserved(1))
    clock.now = T0 + 90 * 60  # 90 minutes without a run: two charges (60 + 30 minutes)
    charges = [charge for charge in meter.charge(_reserved(1)) if charge.route == "chat"]
    assert [(c.from_minute, c.to_minute) for c in charges] == [(M0, M0 + 60), (M0 + 60, M0 + 90)]
    assert sum(len(c.minutes) for c in charges) == 90


def _request_ctx() -> RequestContext:
    chat = ChatRequest.model_validate({"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
    return RequestContext(request_id="r", route_name="chat", route=CONFIG.routes["chat"], kind="chat",
                          tenant=Tenant("acme", "pro", CONFIG.plans["pro"]), chat=chat, max_tokens=16)


def test_gpu_time_that_reaches_a_cap_engages_its_kill_switch_and_refuses_requests():
    # a route cap of $0.10 a day: 2 L40S replicas for one hour is $3.90
    config = make_config({"budgets": {"routes": {"chat": {"daily-usd": 0.10, "action": "drop-reserved"}}}})
    counters, store, publisher = FakeCounterStore(clock=lambda: T0), FakeGuardrailStore(), ListPublisher()
    gpu = FakeGpuControl(lambda: T0)
    gpu.set_min_replicas("chat", 2)
    alerter = BudgetAlerter(config.budgets, store, publisher, KillSwitch(config, store, gpu=gpu), clock=lambda: T0)
    clock = Clock(T0)
    meter = GpuSpendMeter(config, FakeGpuSpendLedger(counters), InMemoryUsageAggregates(), counters=counters,
                          alerter=alerter, clock=clock)
    meter.charge(_reserved(2))
    clock.now = T0 + 3600
    meter.charge(_reserved(2))

    assert store.flag_items["route:chat"].action == "drop-reserved"
    assert gpu.min_replicas["chat"] == 0  # the kill switch dropped the reserved GPUs
    assert any("REACHED" in subject for subject, _, _ in publisher.sent)
    # the gateway's spend-cap stage reads the same counters: the route's requests are refused
    guard = SpendCapGuard(config, SpendLeases(counters, config.budgets), alerter, clock=lambda: T0 + 3600)
    with pytest.raises(BudgetExceededError):
        asyncio.run(guard.admit(_request_ctx()))


def test_the_policy_run_bills_the_replicas_held_since_the_last_run_before_changing_them():
    counters = FakeCounterStore(clock=lambda: T0)
    ledger = FakeGpuSpendLedger(counters)
    clock = Clock(T0)
    table = InMemoryRouteTable(_reserved(3))
    cycle = PolicyCycle(CONFIG, usage=InMemoryUsageAggregates(), table=table, journal=InMemoryPolicyJournal(),
                        gpu=FakeGpuControl(clock), gpu_spend=GpuSpendMeter(CONFIG, ledger, InMemoryUsageAggregates(),
                                                                           clock=clock))
    cycle.run(T0)  # no traffic: the policy releases the replicas, after billing the minute they were held
    assert ledger.rows[("chat", M0 - 1)][1] == 3 * 60.0
    assert ("summarize", M0 - 1) not in ledger.rows  # no replicas, no traffic: nothing
    assert ledger.cursors == {"chat": M0, "summarize": M0}


def _daily_route_cap(config):
    return next(cap for cap in all_caps(config, T0) if cap.scope == "route:chat" and cap.period == "daily")


def test_a_kill_switch_engaged_by_gpu_billing_names_the_policy_as_its_source(monkeypatch):
    from types import SimpleNamespace

    from functions.guardrails import budget_alerter, wiring as guardrail_wiring
    from functions.promotion.wiring import wire_gpu_spend

    config = make_config({"budgets": {"routes": {"chat": {"daily-usd": 0.10, "action": "drop-reserved"}}}})
    store = FakeGuardrailStore()
    built: list[BudgetAlerter] = []

    class RecordedAlerter(BudgetAlerter):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(budget_alerter, "BudgetAlerter", RecordedAlerter)
    monkeypatch.setattr(guardrail_wiring, "guardrail_store", lambda runtime: store)
    monkeypatch.setattr(guardrail_wiring, "alert_publisher", lambda runtime: ListPublisher())
    monkeypatch.setattr(guardrail_wiring, "counter_store", lambda runtime: FakeCounterStore(clock=lambda: T0))
    monkeypatch.setattr(guardrail_wiring, "kill_switch_for",
                        lambda runtime, gpu=None: KillSwitch(config, store, gpu=gpu))
    runtime = SimpleNamespace(config=config, environ={}, dynamodb=None, table=lambda name: name)
    wire_gpu_spend(runtime, usage=InMemoryUsageAggregates(), gpu=FakeGpuControl(lambda: T0))

    built[0].announce(_daily_route_cap(config), [1.0], 3.90)
    assert store.flag_items["route:chat"].source == "policy"


def test_a_budget_alerter_engages_as_the_gateway_unless_told_otherwise():
    config = make_config({"budgets": {"routes": {"chat": {"daily-usd": 0.10, "action": "refuse"}}}})
    cap = _daily_route_cap(config)
    for source, expected in ((None, "gateway"), ("policy", "policy")):
        store = FakeGuardrailStore()
        extra = {} if source is None else {"source": source}
        alerter = BudgetAlerter(config.budgets, store, ListPublisher(), KillSwitch(config, store),
                                clock=lambda: T0, **extra)
        alerter.announce(cap, [1.0], 0.2)
        assert store.flag_items["route:chat"].source == expected
