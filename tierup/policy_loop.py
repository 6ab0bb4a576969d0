"""The traffic policy inside ``tierup dev``: the policy Lambda's code, run by a background thread.

On AWS an EventBridge schedule runs the policy every minute, and GPU warm-ups, holds and
cooldowns last minutes. To watch a route get promoted and demoted on a laptop, the loop can run
on an **accelerated clock**: at ``--clock-speed 60`` one real second is one policy minute. Rates
stay real (a load of 20 req/s is 20 req/s on the policy's clock too); only durations shrink.

The policy reads its usage from ``LocalUsageAggregates``, a recorder the gateway feeds in-process,
bucketed by minute of the accelerated clock (the DynamoDB aggregates are per real minute, which
an accelerated clock cannot split). Laptop only: AWS runs the same cycle in ``functions/policy_handler.py``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from functions.core.policy import LiveSignals
from functions.core.ports import GpuControl, MinuteUsage, PolicyJournal, RouteTableStore
from functions.promotion.cycle import PolicyCycle, RouteRun, route_scope

log = logging.getLogger("tierup.dev.policy")


class AcceleratedClock:
    """Epoch seconds that advance ``speed`` times faster than real time, from now on."""

    def __init__(self, speed: float = 1.0, real: Callable[[], float] = time.time) -> None:
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        self.speed = speed
        self._real = real
        self._origin = real()

    def __call__(self) -> float:
        return self._origin + (self._real() - self._origin) * self.speed

    def real_seconds(self, clock_seconds: float) -> float:
        return clock_seconds / self.speed


#: seconds of the policy's clock per live bucket: the window of ``LiveSignals.recent_*``
LIVE_BUCKET_S = 10
#: buckets kept per route (a minute of the policy's clock)
LIVE_KEEP_BUCKETS = 6


class LocalUsageAggregates:
    """Per-route, per-minute usage on the accelerated clock: a ``UsageRecorder`` for the gateway
    and a ``UsageAggregates`` for the policy. Each request counts ``speed`` times, so that rates
    per clock-second equal real rates. Thread-safe (the gateway records on its event loop).

    It also keeps the last few 10-second buckets per route, the policy's live signals
    (``live``): answered requests counted when they finish, so a request in flight is not seen
    yet (``in_flight`` and ``queued`` stay 0 here)."""

    def __init__(self, clock: AcceleratedClock, keep_minutes: int) -> None:
        self._clock = clock
        self._keep = keep_minutes
        self._lock = threading.Lock()
        self._minutes: dict[tuple[str, int], dict] = {}
        self._buckets: dict[tuple[str, int], list[float]] = {}

    def record(self, ctx) -> None:
        if ctx.usage is None or ctx.tier is None:
            return  # refused or failed before any tier served it: no demand the GPUs would have served
        weight = self._clock.speed
        now_s = self._clock()
        minute = int(now_s // 60)
        key = (route_scope(ctx.route_name), minute)
        bucket = int(now_s // LIVE_BUCKET_S)
        with self._lock:
            live = self._buckets.setdefault((ctx.route_name, bucket), [0, 0, 0])
            live[0] += 1
            live[1] += ctx.usage.prompt_tokens
            live[2] += ctx.usage.completion_tokens
            for stale in [k for k in self._buckets if k[1] < bucket - LIVE_KEEP_BUCKETS]:
                del self._buckets[stale]
            row = self._minutes.setdefault(key, {"requests": 0.0, "prompt_tokens": 0.0,
                                                  "completion_tokens": 0.0, "cost_usd": 0.0, "by_tier": {}})
            row["requests"] += weight
            row["prompt_tokens"] += ctx.usage.prompt_tokens * weight
            row["completion_tokens"] += ctx.usage.completion_tokens * weight
            row["cost_usd"] += ctx.cost_usd * weight
            row["by_tier"][ctx.tier] = row["by_tier"].get(ctx.tier, 0) + weight
            for stale in [k for k in self._minutes if k[1] < minute - self._keep]:
                del self._minutes[stale]

    def live(self, route: str, now_s: float) -> LiveSignals:
        """The route's last complete 10-second buckets before ``now_s`` (as many as last about a
        real second, at most a minute's), as the real requests they counted over the real time
        they lasted: rates are real on the accelerated clock, and a burst is judged on the
        requests actually seen, not on a fraction of a second's scatter."""
        last = int(now_s // LIVE_BUCKET_S) - 1
        count = min(LIVE_KEEP_BUCKETS, max(1, math.ceil(self._clock.speed / LIVE_BUCKET_S)))
        with self._lock:
            buckets = [self._buckets.get((route, bucket), (0, 0, 0)) for bucket in range(last - count + 1, last + 1)]
        requests, prompt, completion = (sum(column) for column in zip(*buckets))
        return LiveSignals(at_s=(last + 1) * LIVE_BUCKET_S,
                           recent_window_s=count * LIVE_BUCKET_S / self._clock.speed,
                           recent_requests=requests, recent_prompt_tokens=prompt,
                           recent_completion_tokens=completion)

    def minutes(self, scope: str, since_minute: int, until_minute: int) -> list[MinuteUsage]:
        with self._lock:
            rows = [(minute, dict(row)) for (s, minute), row in self._minutes.items()
                    if s == scope and since_minute <= minute <= until_minute]
        return [MinuteUsage(minute=minute, scope=scope, requests=round(row["requests"]),
                            prompt_tokens=round(row["prompt_tokens"]),
                            completion_tokens=round(row["completion_tokens"]),
                            cost_usd=row["cost_usd"], by_tier=dict(row["by_tier"]))
                for minute, row in sorted(rows, key=lambda item: item[0])]


class PolicyLoop:
    """Runs one policy cycle every ``[policy] interval-s`` of the clock, in a daemon thread."""

    def __init__(self, cycle: PolicyCycle, clock: AcceleratedClock, interval_s: float,
                 on_run: Callable[[list[RouteRun]], None] | None = None) -> None:
        self.cycle = cycle
        self.clock = clock
        self._interval_real_s = max(0.02, clock.real_seconds(interval_s))
        self._on_run = on_run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run_forever, daemon=True, name="policy-loop")
        self.runs = 0

    def start(self) -> "PolicyLoop":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def run_once(self) -> list[RouteRun]:
        runs = self.cycle.run(self.clock())
        self.runs += 1
        if self._on_run is not None:
            self._on_run(runs)
        return runs

    def _run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the demo keeps going; the next run retries from the stored state
                log.exception("policy run failed")
            self._stop.wait(self._interval_real_s)


def build_policy_loop(runtime, clock: AcceleratedClock, usage: LocalUsageAggregates, *,
                      gpu: GpuControl | None = None, table: RouteTableStore | None = None,
                      journal: PolicyJournal | None = None,
                      on_run: Callable[[list[RouteRun]], None] | None = None) -> PolicyLoop:
    """The dev loop on the runtime's state table; the simulated GPU control unless one is given."""
    from functions.adapters.dynamodb.guardrails import DynamoGuardrailStore
    from functions.adapters.dynamodb.route_table import DynamoPolicyJournal, DynamoRouteTable
    from functions.adapters.dynamodb.usage_aggregates import DynamoUsageAggregates
    from functions.adapters.simulated_gpu import SimulatedGpuControl
    from functions.core.tables import STATE, USAGE
    from functions.batch.wiring import backlog_store
    from functions.promotion.backlog_source import backlog_from_store
    from functions.promotion.cycle import routes_held_by
    from functions.promotion.wiring import wire_gpu_spend

    config = runtime.config
    state_table = runtime.table(STATE)
    flags = DynamoGuardrailStore(runtime.dynamodb, state_table)
    gpu = gpu or SimulatedGpuControl(config, clock)
    # GPU time is billed per real minute, from the gateway's real-time aggregates (as Modal bills)
    real_usage = DynamoUsageAggregates(runtime.dynamodb, runtime.table(USAGE))
    cycle = PolicyCycle(config, usage=usage,
                        table=table or DynamoRouteTable(runtime.dynamodb, state_table),
                        journal=journal or DynamoPolicyJournal(runtime.dynamodb, state_table,
                                                               config.policy.decision_ttl_days * 86400),
                        gpu=gpu, gpu_spend=wire_gpu_spend(runtime, usage=real_usage, gpu=gpu),
                        # kill-switch flags carry real times; the loop's clock may run ahead
                        held_routes=lambda now_s: routes_held_by(flags.flags(), config, time.time()),
                        live=usage.live,
                        # batch deadlines are real times; the loop's clock may run ahead
                        backlog=backlog_from_store(store, config, real_clock=time.time)
                        if (store := backlog_store(runtime)) else None)
    return PolicyLoop(cycle, clock, config.policy.interval_s, on_run)


def accelerated_config(config, speed: float):
    """The config as the dev gateway runs it on an accelerated clock: the gateway re-reads the
    route table often enough to follow a policy that runs every ``interval-s / speed`` seconds."""
    if speed <= 1:
        return config
    refresh = min(config.policy.route_table_refresh_s, max(0.2, config.policy.interval_s / speed / 2))
    policy = config.policy.model_copy(update={"route_table_refresh_s": refresh})
    return config.model_copy(update={"policy": policy})


def describe_runs(runs: list[RouteRun], clock: AcceleratedClock) -> list[str]:
    """One line per route whose plan did something, for the dev console."""
    stamp = time.strftime("%H:%M", time.gmtime(clock()))
    lines = []
    for run in runs:
        outcome = run.result.outcome
        if outcome in ("unchanged", "draining") or (outcome == "warming" and run.result.applied == ()):
            continue
        lines.append(f"policy {stamp}  {run.route}: {outcome} "
                     f"({run.decision['previous_replicas']}->{run.decision['replicas']} replicas) "
                     f"{run.decision['reason']}")
    return lines


class DevPolicy:
    """The policy loop as ``tierup dev`` runs it: simulated GPUs, usage seen in-process, and a
    console line whenever a route starts warming, flips or releases capacity."""

    def __init__(self, runtime, speed: float, echo: Callable[[str], None]) -> None:
        from rich.markup import escape

        self.clock = AcceleratedClock(speed)
        self.usage = LocalUsageAggregates(self.clock, runtime.config.policy.history_minutes)
        def report(runs: list[RouteRun]) -> None:
            for line in describe_runs(runs, self.clock):
                echo(escape(line))

        self.loop = build_policy_loop(runtime, self.clock, self.usage, on_run=report)

    @property
    def recorders(self) -> tuple:
        return (self.usage,)

    def start(self) -> None:
        self.loop.start()

    def stop(self) -> None:
        self.loop.stop()
