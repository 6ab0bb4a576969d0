"""The promotion executor and one policy run, on in-memory fakes of every port."""

from __future__ import annotations

from functions.core.killswitch import KillSwitchFlag
from functions.core.promotion_plan import plan_route
from functions.core.route_table import RouteEntry
from functions.promotion.cycle import PolicyCycle, route_scope, routes_held_by
from functions.promotion.executor import PromotionExecutor
from tests.fakes.gpu_control import FakeGpuControl
from tests.fakes.promotion_store import InMemoryPolicyJournal, InMemoryRouteTable, InMemoryUsageAggregates
from tests.support import POLICY_TEST_ECONOMICS, make_config

CONFIG = make_config(POLICY_TEST_ECONOMICS)
PER_REPLICA = CONFIG.pricing.gpus[CONFIG.routes["chat"].gpu].max_concurrent_requests
GRACE = 60.0


class Clock:
    def __init__(self, now: float = 100_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class OrderedGpuControl(FakeGpuControl):
    """Notes what the route table said at the moment capacity changed."""

    def __init__(self, clock, warmup_s: float, table: InMemoryRouteTable) -> None:
        super().__init__(clock, warmup_s)
        self.table = table
        self.seen: list[tuple[int, str | None]] = []

    def set_min_replicas(self, route: str, replicas: int) -> None:
        entry = self.table.entries.get(route)
        self.seen.append((replicas, entry.tier if entry else None))
        super().set_min_replicas(route, replicas)


def _step(executor, table, target, clock):
    entry = table.entries.get("chat") or RouteEntry.initial("chat", "serverless", clock.now)
    return executor.apply(plan_route(entry, target, clock.now, GRACE), entry, clock.now)


def test_promotion_moves_traffic_only_once_replicas_are_ready():
    clock, table = Clock(), InMemoryRouteTable()
    gpu = FakeGpuControl(clock, warmup_s=120)
    executor = PromotionExecutor(CONFIG, gpu, table)

    first = _step(executor, table, 2, clock)
    assert first.outcome == "warming" and first.waiting_on == "wait-ready"
    assert gpu.calls == [("chat", 2)]
    assert table.entries["chat"].tier == "serverless" and table.entries["chat"].phase == "warming"

    clock.now += 60
    assert _step(executor, table, 2, clock).outcome == "warming"
    assert gpu.calls == [("chat", 2)], "a warm-up in progress is not asked for again"

    clock.now += 61
    done = _step(executor, table, 2, clock)
    assert done.outcome == "promoted" and done.ready_replicas == 2
    entry = table.entries["chat"]
    assert (entry.tier, entry.replicas, entry.max_in_flight) == ("reserved", 2, 2 * PER_REPLICA)
    assert entry.phase == "reserved"
    # Every stored entry that sends traffic to reserved was written after the replicas were ready.
    assert [w.tier for w in table.writes] == ["serverless", "reserved"]

    clock.now += 60
    assert _step(executor, table, 2, clock).outcome == "unchanged"


def test_demotion_flips_the_table_before_capacity_is_released():
    clock = Clock()
    table = InMemoryRouteTable({"chat": RouteEntry("chat", tier="reserved", replicas=2, target_replicas=2,
                                                   max_in_flight=2 * PER_REPLICA)})
    gpu = OrderedGpuControl(clock, 0, table)
    executor = PromotionExecutor(CONFIG, gpu, table)

    result = _step(executor, table, 0, clock)
    assert result.outcome == "demoted" and result.waiting_on == "release"
    assert table.entries["chat"].tier == "serverless" and table.entries["chat"].max_in_flight == 0
    assert gpu.seen == [], "capacity is held while in-flight requests drain"

    clock.now += GRACE / 2
    assert _step(executor, table, 0, clock).outcome == "draining"
    assert gpu.seen == []

    clock.now += GRACE / 2
    assert _step(executor, table, 0, clock).outcome == "released"
    assert gpu.seen == [(0, "serverless")]
    assert table.entries["chat"].phase == "serverless" and table.entries["chat"].target_replicas == 0


def test_a_failing_gpu_control_fails_the_route_without_touching_traffic():
    class BrokenGpuControl(FakeGpuControl):
        def set_min_replicas(self, route, replicas):
            raise RuntimeError("modal is down")

    clock, table = Clock(), InMemoryRouteTable()
    result = _step(PromotionExecutor(CONFIG, BrokenGpuControl(clock), table), table, 1, clock)
    assert result.outcome == "failed" and "modal is down" in result.error
    assert table.writes == []


def _steady_load(usage, route, first_minute, last_minute, rps, prompt=500, completion=100):
    for minute in range(first_minute, last_minute + 1):
        requests = int(rps * 60)
        usage.set_minute(route_scope(route), minute, requests, requests * prompt, requests * completion)


def test_policy_run_promotes_a_hot_route_and_records_why():
    clock, table, journal = Clock(), InMemoryRouteTable(), InMemoryPolicyJournal()
    usage = InMemoryUsageAggregates()
    gpu = FakeGpuControl(clock, warmup_s=CONFIG.pricing.gpus["L40S"].warmup_s)
    cycle = PolicyCycle(CONFIG, usage=usage, table=table, journal=journal, gpu=gpu)
    now_minute = int(clock.now // 60)
    _steady_load(usage, "chat", now_minute - 60, now_minute, rps=10)

    runs = {run.route: run for run in cycle.run(clock.now)}
    assert set(runs) == {"chat", "summarize"}, "routes without a GPU model are never planned"
    chat = runs["chat"]
    assert chat.decision["replicas"] >= 1 and chat.result.outcome == "warming"
    assert chat.decision["projected_savings_usd_per_hour"] > 0
    assert runs["summarize"].decision["replicas"] == 0 and runs["summarize"].result.outcome == "unchanged"
    # The minute in progress is never part of the history the policy sees (only of the live read,
    # which looks at its 10-second buckets).
    assert all(until < now_minute for scope, since, until in usage.queries if since < now_minute - 1)

    at_s, record = journal.decisions["chat"][-1]
    assert at_s == clock.now and record["reason"] and record["plan"]["steps"][0]["action"] == "warm"
    assert journal.states["chat"]["replicas"] == chat.decision["replicas"]

    while table.entries["chat"].tier != "reserved":
        clock.now += 60
        _steady_load(usage, "chat", now_minute, int(clock.now // 60), rps=10)
        cycle.run(clock.now)
        assert clock.now - 100_000.0 < 10 * 60, "the route never got promoted"
    assert gpu.ready_replicas("chat") >= table.entries["chat"].replicas


def test_a_redeploy_that_reset_min_containers_is_undone_by_the_next_run():
    clock, table, journal = Clock(), InMemoryRouteTable(), InMemoryPolicyJournal()
    usage = InMemoryUsageAggregates()
    gpu = FakeGpuControl(clock, warmup_s=0)
    cycle = PolicyCycle(CONFIG, usage=usage, table=table, journal=journal, gpu=gpu)
    now_minute = int(clock.now // 60)
    _steady_load(usage, "chat", now_minute - 60, now_minute + 30, rps=10)
    cycle.run(clock.now)
    clock.now += 60
    cycle.run(clock.now)
    reserved = table.entries["chat"].target_replicas
    assert table.entries["chat"].promoted and gpu.min_replicas["chat"] == reserved >= 1

    gpu.redeploy()  # `modal deploy gpu_tier/app.py` while the route is reserved
    clock.now += 60
    cycle.run(clock.now)
    assert gpu.min_replicas["chat"] == reserved, "the policy re-applies the reserved count"
    assert table.entries["chat"].promoted


def test_policy_run_demotes_an_idle_route_after_the_cooldown():
    clock, table, journal = Clock(), InMemoryRouteTable(), InMemoryPolicyJournal()
    usage = InMemoryUsageAggregates()
    gpu = FakeGpuControl(clock, warmup_s=0)
    cycle = PolicyCycle(CONFIG, usage=usage, table=table, journal=journal, gpu=gpu)
    now_minute = int(clock.now // 60)
    _steady_load(usage, "chat", now_minute - 60, now_minute, rps=10)
    cycle.run(clock.now)
    clock.now += 60
    cycle.run(clock.now)
    assert table.entries["chat"].promoted

    # Traffic stops; the route stays promoted through the hold and the cooldown, then demotes.
    outcomes = []
    for _ in range((CONFIG.policy.min_hold_s + CONFIG.policy.cooldown_s) // 60 + 10):
        clock.now += 60
        outcomes.append(cycle.run(clock.now)[0].result.outcome)
        if not table.entries["chat"].promoted:
            break
    assert outcomes[-1] == "demoted"
    assert len(outcomes) * 60 >= CONFIG.policy.cooldown_s
    for _ in range(3):
        clock.now += 60
        cycle.run(clock.now)
    assert gpu.min_replicas["chat"] == 0 and table.entries["chat"].phase == "serverless"


def test_lost_replicas_leave_the_table_at_once_and_traffic_returns_when_they_are_back():
    clock = Clock()
    table = InMemoryRouteTable()
    gpu = FakeGpuControl(clock, warmup_s=0)
    executor = PromotionExecutor(CONFIG, gpu, table)
    assert _step(executor, table, 2, clock).outcome == "promoted"

    gpu.lose_replicas("chat", 1, back_in_s=300)
    entry = executor.reconcile(table.entries["chat"], clock.now)
    assert (entry.tier, entry.replicas, entry.max_in_flight) == ("reserved", 1, PER_REPLICA)
    assert entry.phase == "warming" and table.entries["chat"] == entry
    assert _step(executor, table, 2, clock).outcome == "warming"
    assert gpu.calls == [("chat", 2)], "Modal keeps min_containers: nothing to ask again"

    clock.now += 300
    assert _step(executor, table, 2, clock).outcome == "scaled"
    assert table.entries["chat"].replicas == 2


def test_all_replicas_lost_sends_traffic_back_to_the_start_tier():
    clock = Clock()
    table = InMemoryRouteTable()
    gpu = FakeGpuControl(clock, warmup_s=0)
    executor = PromotionExecutor(CONFIG, gpu, table)
    _step(executor, table, 1, clock)
    gpu.lose_replicas("chat", 1)
    entry = executor.reconcile(table.entries["chat"], clock.now)
    assert (entry.tier, entry.replicas, entry.phase) == ("serverless", 0, "warming")


def test_an_overdue_warm_up_is_asked_for_again():
    clock = Clock()
    table = InMemoryRouteTable()
    gpu = FakeGpuControl(clock, warmup_s=10_000)  # never ready in time
    executor = PromotionExecutor(CONFIG, gpu, table)
    _step(executor, table, 1, clock)
    clock.now += 60
    assert executor.reconcile(table.entries["chat"], clock.now) == table.entries["chat"], "not overdue yet"
    clock.now += 3 * executor.warmup_s("chat") + 120
    entry = executor.reconcile(table.entries["chat"], clock.now)
    assert _step(executor, table, 1, clock).applied == ("warm",)
    assert gpu.calls == [("chat", 1), ("chat", 1)] and entry.warming_since_s is None


def _flag(scope: str, action: str, until: float | None = None) -> KillSwitchFlag:
    return KillSwitchFlag(scope=scope, action=action, reason="cap reached", budget="manual", source="test",
                          engaged_at=0.0, until=until)


def test_only_active_drop_reserved_kill_switches_hold_routes():
    assert routes_held_by([_flag("route:chat", "refuse")], CONFIG, 100.0) == {}
    assert set(routes_held_by([_flag("route:chat", "drop-reserved")], CONFIG, 100.0)) == {"chat"}
    assert set(routes_held_by([_flag("global", "hard-stop")], CONFIG, 100.0)) == {"chat", "summarize"}
    assert routes_held_by([_flag("global", "drop-reserved", until=50.0)], CONFIG, 100.0) == {}


def test_a_held_route_is_demoted_and_not_raised_again_while_the_switch_holds():
    clock, table, journal = Clock(), InMemoryRouteTable(), InMemoryPolicyJournal()
    usage = InMemoryUsageAggregates()
    gpu = FakeGpuControl(clock, warmup_s=0)
    flags: list[KillSwitchFlag] = []
    cycle = PolicyCycle(CONFIG, usage=usage, table=table, journal=journal, gpu=gpu,
                        held_routes=lambda now_s: routes_held_by(flags, CONFIG, now_s))
    now_minute = int(clock.now // 60)
    _steady_load(usage, "chat", now_minute - 60, now_minute + 30, rps=10)
    cycle.run(clock.now)
    clock.now += 60
    cycle.run(clock.now)
    assert table.entries["chat"].promoted

    flags.append(_flag("route:chat", "drop-reserved"))
    for _ in range(5):
        clock.now += 60
        [chat, _] = cycle.run(clock.now)
        assert chat.decision["replicas"] == 0 and "kill switch" in chat.decision["reason"]
    assert table.entries["chat"].phase == "serverless" and gpu.min_replicas["chat"] == 0

    flags.clear()
    clock.now += 60
    assert cycle.run(clock.now)[0].decision["replicas"] >= 1, "released: demand decides again"
