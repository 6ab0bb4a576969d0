"""The policy's decisions as the executor and the router carry them out, at ``tierup dev``'s
``--clock-speed 60`` (one real second is one policy minute): the gateway under uvicorn on moto
server, driven with the openai SDK, the policy loop with its live signals, the fake GPU control.

* a burst from cold raises the replicas it needs in one step (one warm-up, not one per replica),
  and the router sends traffic to all of them once they are ready;
* a 2-minute spike, shorter than its break-even, stays on serverless; the same load kept up is
  promoted.
"""

from __future__ import annotations

import time

from functions.adapters.dynamodb.route_table import DynamoPolicyJournal, DynamoRouteTable
from functions.core.tables import STATE
from functions.core.tokens import count_chat_tokens
from functions.gateway.composition import build_gateway
from tests.fakes.gpu_control import FakeGpuControl
from tests.support import POLICY_TEST_ECONOMICS, BackgroundLoad, deep_merge, openai_client
from tierup.local_stack import create_key
from tierup.policy_loop import AcceleratedClock, LocalUsageAggregates, build_policy_loop

SPEED = 60.0
WARMUP_S = 120.0
MESSAGES = [{"role": "user", "content": "hello"}]
SIMULATED = {"ttft-ms": 50, "tokens-per-s": 1_000_000, "answer-tokens": 16}
#: requests per second of the paced loads: the spike's, and the burst's
RATE = 10.0
BURST = 20.0


class TimedGpuControl(FakeGpuControl):
    """The fake GPU control, noting the policy clock at every capacity change."""

    def __init__(self, clock, warmup_s: float) -> None:
        super().__init__(clock, warmup_s)
        self.changes: list[tuple[float, int]] = []

    def set_min_replicas(self, route: str, replicas: int) -> None:
        if self.min_replicas.get(route, 0) != replicas:
            self.changes.append((self._clock(), replicas))
        super().set_min_replicas(route, replicas)


class Load(BackgroundLoad):
    """``threads`` clients sending requests back to back (or one every ``period_s`` each), noting
    each response's tier."""

    def __init__(self, url: str, key: str, threads: int, period_s: float = 0.0) -> None:
        super().__init__()
        self._period_s = period_s
        self.tiers: list[str] = []
        # paced threads start staggered, so that their requests spread over each period
        for i in range(threads):
            self.add_sender(self._send, openai_client(url, key), i * period_s / threads)

    def _send(self, client, offset_s: float) -> None:
        self._stop.wait(offset_s)
        while not self._stop.is_set():
            sent = time.monotonic()
            raw = client.chat.completions.with_raw_response.create(model="chat", messages=MESSAGES, max_tokens=16)
            self.tiers.append(raw.headers["x-tierup-tier"])
            self._stop.wait(max(0.0, self._period_s - (time.monotonic() - sent)))


def _start(make_runtime, serve, overrides):
    runtime = make_runtime(deep_merge(POLICY_TEST_ECONOMICS, overrides), fast=False)
    clock = AcceleratedClock(SPEED)
    usage = LocalUsageAggregates(clock, runtime.config.policy.history_minutes)
    gpu = TimedGpuControl(clock, warmup_s=WARMUP_S)
    url = serve(build_gateway(runtime, extra_recorders=(usage,)))
    key = create_key(runtime, "acme", "pro")
    loop = build_policy_loop(runtime, clock, usage, gpu=gpu)
    return runtime, clock, gpu, url, key, loop


def _tokens_per_request() -> int:
    return count_chat_tokens(m["content"] for m in MESSAGES) + SIMULATED["answer-tokens"]


def _reasons(runtime) -> list[str]:
    """The policy's reasons for every change it decided, oldest first (for failure messages)."""
    decisions = DynamoPolicyJournal(runtime.dynamodb, runtime.table(STATE)).recent_decisions("chat", 500)
    return [d["reason"] for d in reversed(decisions) if d["decision"]["replicas"] != d["decision"]["previous_replicas"]]


def _wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_burst_raises_the_needed_replicas_at_once(make_runtime, serve):
    # BURST req/s of ~20 tokens each, a replica decoding 145 tokens/s: the burst keeps 2.2
    # replicas busy, 2.75 at the 80 % target utilisation, so three are needed. A GPU costs 1/8 of
    # the burst's serverless bill: two would spill more than a third costs, a fourth would sit
    # idle (the count stays right within about -17 % / +25 % of the rate).
    serverless_usd_per_s = BURST * _tokens_per_request() * 0.22e-6
    decode = BURST * SIMULATED["answer-tokens"] / 2.2
    overrides = {"simulated": SIMULATED, "routes": {"chat": {"max-replicas": 4}},
                 "pricing": {"gpus": {"L40S": {"usd-per-second": serverless_usd_per_s / 8, "warmup-s": WARMUP_S,
                                               "decode-tokens-per-s": decode, "max-concurrent-requests": 4}}},
                 "policy": {"route-table-refresh-s": 0.1}}
    runtime, clock, gpu, url, key, loop = _start(make_runtime, serve, overrides)
    table = DynamoRouteTable(runtime.dynamodb, runtime.table(STATE))
    loop.start()
    try:
        with Load(url, key, threads=8, period_s=8 / BURST) as load:
            _wait_for(lambda: table.read_routes().get("chat") is not None
                      and table.read_routes()["chat"].replicas > 0, 40, "the route to be promoted")
            _wait_for(lambda: load.tiers[-20:].count("reserved") > 10, 10, "traffic on reserved")
        assert gpu.changes[0][1] == 3, f"the first raise asks for every replica the burst needs: {gpu.changes}"
        raises = [replicas for _, replicas in gpu.changes]
        assert set(raises) == {3}, f"one step, no staircase: {gpu.changes} {_reasons(runtime)}"
        entry = table.read_routes()["chat"]
        assert (entry.tier, entry.replicas, entry.max_in_flight) == ("reserved", 3, 12)
        warmed_at = gpu.changes[0][0]
        assert entry.since_s >= warmed_at + WARMUP_S, "traffic moved only once the replicas were warm"
    finally:
        loop.stop()


def test_a_two_minute_spike_stays_serverless_and_sustained_load_promotes(make_runtime, serve):
    # Paced load (RATE req/s) and a GPU priced so that one replica costs 1/2.2 of the load's
    # serverless bill: a promotion (warm-up, cooldown and drain paid) breaks even after
    # 480 s / 1.2 = 400 s of this load, and with no history yet it waits half of that (episode-trust
    # 0.5): longer than a 2-minute spike, well within sustained load.
    serverless_usd_per_s = RATE * _tokens_per_request() * 0.22e-6
    overrides = {"simulated": SIMULATED, "routes": {"chat": {"max-replicas": 1}},
                 "pricing": {"gpus": {"L40S": {"usd-per-second": serverless_usd_per_s / 2.2, "warmup-s": WARMUP_S,
                                               "max-concurrent-requests": 64}}},
                 "policy": {"route-table-refresh-s": 0.1}}
    runtime, clock, gpu, url, key, loop = _start(make_runtime, serve, overrides)
    loop.start()
    try:
        # start 15 s into a policy minute: the spike fills two minutes' worth, one of them whole
        time.sleep(((15 - clock() % 60) % 60) / SPEED)
        with Load(url, key, threads=2, period_s=2 / RATE) as spike:
            time.sleep(120 / SPEED)
        time.sleep(600 / SPEED)  # long enough for a promotion to have been decided and warmed
        assert spike.tiers and gpu.changes == [], f"a 2-minute spike promoted: {gpu.changes}"
        assert set(spike.tiers) == {"serverless"}

        with Load(url, key, threads=2, period_s=2 / RATE):
            _wait_for(lambda: gpu.changes, 25 * 60 / SPEED, "sustained load to promote")
        assert gpu.changes[0][1] == 1
    finally:
        loop.stop()
