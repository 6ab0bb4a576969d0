"""The pieces of ``tierup dev``'s policy loop: the accelerated clock, the usage it records, the
simulated GPU control, and one loop run on in-memory stores."""

from __future__ import annotations

from functions.adapters.simulated_gpu import SimulatedGpuControl
from functions.core.chat import Usage
from functions.promotion.cycle import PolicyCycle
from tests.fakes.promotion_store import InMemoryPolicyJournal, InMemoryRouteTable
from tests.support import POLICY_TEST_ECONOMICS, make_config
from tierup.policy_loop import (AcceleratedClock, LocalUsageAggregates, PolicyLoop, accelerated_config,
                                describe_runs)

#: the policy test economics: the example's GPU figures are conservative (a busy route would need
#: more than max-replicas)
CONFIG = make_config(POLICY_TEST_ECONOMICS)


class RealClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Served:
    """The parts of a finished request the recorder reads."""

    def __init__(self, route: str = "chat", tier: str | None = "serverless",
                 usage: Usage | None = Usage(100, 20), cost_usd: float = 0.001) -> None:
        self.route_name, self.tier, self.usage, self.cost_usd = route, tier, usage, cost_usd


def test_accelerated_clock_runs_faster_from_now():
    real = RealClock()
    clock = AcceleratedClock(60, real=real)
    start = clock()
    real.now += 2
    assert clock() - start == 120
    assert clock.real_seconds(60) == 1


def test_usage_keeps_real_rates_on_the_accelerated_clock():
    real = RealClock()
    clock = AcceleratedClock(60, real=real)
    usage = LocalUsageAggregates(clock, keep_minutes=60)
    for _ in range(10):  # 10 requests in one real second = one clock minute at 10 req/s
        usage.record(Served())
    usage.record(Served(usage=None, tier=None))  # refused: no demand served
    minute = int(clock() // 60)
    [row] = usage.minutes("route:chat", minute - 5, minute)
    assert row.requests / 60 == 10.0
    assert (row.prompt_tokens, row.completion_tokens) == (60_000, 12_000)
    assert row.by_tier == {"serverless": 600}
    assert usage.minutes("route:summarize", minute - 5, minute) == []


def test_usage_forgets_minutes_past_the_history():
    real = RealClock()
    clock = AcceleratedClock(60, real=real)
    usage = LocalUsageAggregates(clock, keep_minutes=3)
    usage.record(Served())
    real.now += 10  # ten clock minutes later
    usage.record(Served())
    minute = int(clock() // 60)
    assert [row.minute for row in usage.minutes("route:chat", 0, minute)] == [minute]


def test_simulated_gpu_takes_its_warm_up_and_stops_at_once():
    clock = RealClock()
    gpu = SimulatedGpuControl(CONFIG, clock)
    warmup = CONFIG.pricing.gpus[CONFIG.routes["chat"].gpu].warmup_s
    gpu.set_min_replicas("chat", 2)
    assert gpu.ready_replicas("chat") == 0 and gpu.min_replicas("chat") == 2
    clock.now += warmup
    assert gpu.ready_replicas("chat") == 2
    gpu.set_min_replicas("chat", 3)
    assert gpu.ready_replicas("chat") == 2
    gpu.set_min_replicas("chat", 0)
    assert gpu.ready_replicas("chat") == 0


def test_accelerated_config_refreshes_the_route_table_faster():
    fast = accelerated_config(CONFIG, 60)
    assert fast.policy.route_table_refresh_s < CONFIG.policy.route_table_refresh_s
    assert accelerated_config(CONFIG, 1) is CONFIG


def test_one_loop_run_promotes_a_busy_route_and_says_so():
    real = RealClock()
    clock = AcceleratedClock(60, real=real)
    usage = LocalUsageAggregates(clock, keep_minutes=CONFIG.policy.history_minutes)
    table = InMemoryRouteTable()
    cycle = PolicyCycle(CONFIG, usage=usage, table=table, journal=InMemoryPolicyJournal(),
                        gpu=SimulatedGpuControl(CONFIG, clock))
    heavy = Usage(prompt_tokens=2000, completion_tokens=200)
    for _ in range(30):  # thirty clock minutes at 20 req/s of long prompts
        for _ in range(20):
            usage.record(Served(usage=heavy))
        real.now += 1
    lines: list[str] = []
    loop = PolicyLoop(cycle, clock, CONFIG.policy.interval_s,
                      on_run=lambda runs: lines.extend(describe_runs(runs, clock)))
    loop.run_once()
    assert table.entries["chat"].phase == "warming"
    assert len(lines) == 1 and "chat: warming" in lines[0]
    loop.run_once()
    assert lines[1:] == [], "waiting on a warm-up is not news"
