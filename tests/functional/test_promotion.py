"""A route's whole promotion cycle, end to end: the gateway under uvicorn on moto server, driven
with the openai SDK, and the policy loop (the policy Lambda's code) on an accelerated clock with
the fake GPU control.

Load promotes the route; responses stay on serverless while replicas warm and move to reserved
only once they are ready; a burst over the reserved capacity spills to serverless; when the load
stops the route is demoted, traffic first, capacity after the drain grace.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from functions.adapters.dynamodb.route_table import DynamoPolicyJournal, DynamoRouteTable
from functions.core.tables import STATE
from functions.gateway.composition import build_gateway
from tests.fakes.gpu_control import FakeGpuControl
from tests.support import POLICY_TEST_ECONOMICS, deep_merge, openai_client
from tierup.local_stack import create_key
from tierup.policy_loop import AcceleratedClock, LocalUsageAggregates, build_policy_loop

#: one policy minute is half a real second
SPEED = 120.0
WARMUP_S = 120.0
PER_REPLICA = 2

OVERRIDES = {
    # Requests take ~0.2 s, so a handful at once is enough to saturate a replica that takes two.
    "simulated": {"ttft-ms": 200, "tokens-per-s": 1_000_000, "answer-tokens": 16},
    # A GPU this cheap makes the test's load (~15 req/s of short requests) worth a replica, and a
    # lone request afterwards not: the test is about the mechanism, not the prices.
    "pricing": {"gpus": {"L40S": {"usd-per-second": 0.00002, "warmup-s": WARMUP_S,
                                  "max-concurrent-requests": PER_REPLICA}}},
    "routes": {"chat": {"max-replicas": 1}},
    "policy": {"min-hold-s": 240, "cooldown-s": 480, "recent-minutes": 3, "drain-grace-s": 60,
               "route-table-refresh-s": 0.1},
}
MESSAGES = [{"role": "user", "content": "hello"}]


class Responses:
    """Each response's tier, spill reason and the policy clock when its request was sent."""

    def __init__(self, clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.rows: list[tuple[float, str, str | None]] = []

    def send(self, client) -> tuple[str, str | None]:
        sent_at = self._clock()
        raw = client.chat.completions.with_raw_response.create(model="chat", messages=MESSAGES, max_tokens=16)
        tier, spill = raw.headers["x-tierup-tier"], raw.headers.get("x-tierup-spill")
        with self._lock:
            self.rows.append((sent_at, tier, spill))
        return tier, spill


def _wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class TimedGpuControl(FakeGpuControl):
    """The fake GPU control, noting the policy clock at every capacity change."""

    def __init__(self, clock, warmup_s: float) -> None:
        super().__init__(clock, warmup_s)
        self.changes: list[tuple[float, int]] = []

    def set_min_replicas(self, route: str, replicas: int) -> None:
        if self.min_replicas.get(route, 0) != replicas:  # each run re-asserts the count; note changes
            self.changes.append((self._clock(), replicas))
        super().set_min_replicas(route, replicas)


def test_load_promotes_spills_and_demotes(make_runtime, serve):
    runtime = make_runtime(deep_merge(POLICY_TEST_ECONOMICS, OVERRIDES), fast=False)
    policy = runtime.config.policy
    clock = AcceleratedClock(SPEED)
    usage = LocalUsageAggregates(clock, policy.history_minutes)
    gpu = TimedGpuControl(clock, warmup_s=WARMUP_S)
    url = serve(build_gateway(runtime, extra_recorders=(usage,)))
    key = create_key(runtime, "acme", "pro")
    table = DynamoRouteTable(runtime.dynamodb, runtime.table(STATE))
    outcomes: list[str] = []
    loop = build_policy_loop(runtime, clock, usage, gpu=gpu,
                             on_run=lambda runs: outcomes.extend(r.result.outcome for r in runs if r.route == "chat"))
    responses = Responses(clock)
    stop_load = threading.Event()

    def drive_load() -> None:
        client = openai_client(url, key)
        while not stop_load.is_set():
            responses.send(client)

    loop.start()
    workers = [threading.Thread(target=drive_load, daemon=True) for _ in range(4)]
    try:
        for worker in workers:
            worker.start()
        # -- promotion: warm first, then move traffic --------------------------------------
        _wait_for(lambda: any(tier == "reserved" for _, tier, _ in responses.rows), 30, "reserved responses")
        [(warmed_at, replicas)] = gpu.changes
        ready_at = warmed_at + WARMUP_S
        assert replicas == 1
        first_reserved = min(at for at, tier, _ in responses.rows if tier == "reserved")
        assert first_reserved >= ready_at, "traffic moved to reserved before the replicas were ready"
        assert any(tier == "serverless" for at, tier, _ in responses.rows if warmed_at <= at < ready_at), \
            "requests sent while replicas warmed stay on serverless"
        entry = table.read_routes()["chat"]
        assert (entry.tier, entry.replicas, entry.max_in_flight) == ("reserved", 1, PER_REPLICA)
    finally:
        stop_load.set()
        for worker in workers:
            worker.join(timeout=10)

    try:
        # -- saturation: a burst over the replica's capacity spills to serverless ------------
        # (the load has stopped, but the minimum hold and the cooldown keep the route promoted)
        burst_client = openai_client(url, key)
        with ThreadPoolExecutor(max_workers=8) as pool:
            burst = list(pool.map(lambda _: responses.send(burst_client), range(8)))
        assert table.read_routes()["chat"].tier == "reserved"
        assert ("reserved", None) in burst and ("serverless", "saturated") in burst, burst
        assert set(burst) <= {("reserved", None), ("serverless", "saturated")}, burst

        # -- demotion: after the hold and the cooldown, traffic flips, then capacity goes -----
        _wait_for(lambda: table.read_routes()["chat"].tier == "serverless", 30, "the route to be demoted")
        flipped_at = table.read_routes()["chat"].since_s
        client = openai_client(url, key)
        time.sleep(0.3)  # a few route-table refreshes; one request, so as not to make new demand
        assert responses.send(client) == ("serverless", None), "the gateway follows the table"
        _wait_for(lambda: "released" in outcomes, 10, "reserved capacity to be released")
        released_at, replicas = gpu.changes[-1]
        assert replicas == 0 and released_at >= flipped_at + policy.drain_grace_s, \
            "capacity is held while in-flight requests drain"
        assert len(gpu.changes) == 2
        sequence = [o for i, o in enumerate(outcomes)
                    if o not in ("unchanged", "draining") and (i == 0 or outcomes[i - 1] != o)]
        assert sequence == ["warming", "promoted", "demoted", "released"]
    finally:
        loop.stop()

    decisions = DynamoPolicyJournal(runtime.dynamodb, runtime.table(STATE)).recent_decisions("chat", 500)
    promoted = [d for d in decisions if d["decision"]["replicas"] > d["decision"]["previous_replicas"]]
    assert promoted and promoted[-1]["reason"]
    assert promoted[-1]["decision"]["projected_savings_usd_per_hour"] > 0
    assert decisions[0]["result"]["outcome"] in ("unchanged", "released")
