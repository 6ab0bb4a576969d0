"""Replay a bucketed trace through tierup's policy and the baselines, and price each schedule.

tierup's schedule comes from the very ``decide`` the policy Lambda runs, called as in production
every ``[policy] interval-s``: with the route's per-minute usage rows of the minutes already over,
the state it returned the run before, ``LiveSignals`` (in flight, last 10 s) computed from the
simulated requests at that instant and, with a batch stream added, the route's queued batch work.
Every schedule (tierup, the baselines, the hindsight optimum) is then priced by the one
``engine.simulate`` under the same ``Rules``, all starting cold.

No I/O here: traces come in as ``Buckets``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from functions.core.config import RouteConfig, TierupConfig
from functions.core.policy import LiveSignals, RouteDecision, RoutePolicyState, decide
from functions.core.policy.backlog import BatchBacklog
from functions.core.policy.cost_model import RouteEconomics, economics_for
from functions.core.policy.hindsight import hindsight_targets
from functions.core.policy.schedule import MinuteDemand
from functions.core.ports import MinuteUsage

from .buckets import Buckets
from .engine import Outcome, Rules, expand, served_share, simulate, view

POLICIES = ("always-serverless", "always-reserved", "reactive", "tierup", "hindsight")
#: minutes a lower desired count must persist before the reactive autoscaler scales down (HPA's default)
REACTIVE_STABILISATION_MIN = 5


@dataclass(frozen=True)
class PolicyRun:
    """tierup's schedule (per bucket) over a trace, with every decision that changed it."""

    targets: np.ndarray
    changes: list[RouteDecision]


class BatchQueue(Protocol):
    """Queued batch work the replay passes to ``decide`` and drains (``batch_stream.BatchDrain``)."""

    def backlog(self, now_s: float) -> BatchBacklog | None: ...

    def advance(self, first: int, end: int, targets: np.ndarray) -> None: ...


def run_policy(route: str, route_config: RouteConfig, config: TierupConfig,
               buckets: Buckets | MinuteDemand, batch: BatchQueue | None = None) -> PolicyRun:
    """Call ``decide`` every ``interval-s`` with the minutes already over and the live signals.

    ``batch``: queued batch work, drained over buckets ``[b, b + step)`` once each decision has set
    their targets; its backlog goes to ``decide`` as the promotion runner passes the batch store's.
    Given per-minute ``MinuteDemand`` (no requests to count live), it decides at each minute
    without live signals and returns one target per minute.
    """
    if isinstance(buckets, MinuteDemand):
        return _run_on_minutes(route, route_config, config, buckets)
    interval = config.policy.interval_s
    step = max(1, round(interval / buckets.bucket_s))
    rows = buckets.usage_rows(route)
    row_minutes = np.array([row.minute for row in rows], dtype=np.int64)
    window = config.policy.history_minutes
    state = RoutePolicyState()
    targets = np.zeros(len(buckets), dtype=np.int64)
    changes: list[RouteDecision] = []
    in_flight = buckets.busy_s / buckets.bucket_s
    for b in range(0, len(buckets), step):
        now_s = buckets.start_s + b * buckets.bucket_s
        now_minute = int(now_s // 60)
        lo, hi = np.searchsorted(row_minutes, [now_minute - window, now_minute])
        last = b - 1
        live = LiveSignals(
            at_s=now_s, in_flight=int(round(in_flight[last])) if last >= 0 else 0, queued=0,
            recent_window_s=buckets.bucket_s,
            recent_requests=int(buckets.requests[last]) if last >= 0 else 0,
            recent_prompt_tokens=int(buckets.prompt_tokens[last]) if last >= 0 else 0,
            recent_completion_tokens=int(buckets.completion_tokens[last]) if last >= 0 else 0)
        backlog = batch.backlog(now_s) if batch is not None else None
        decision, state = decide(route, route_config, rows[lo:hi], state, now_s, config, live=live, backlog=backlog)
        targets[b:b + step] = decision.replicas
        if batch is not None:
            batch.advance(b, min(b + step, len(buckets)), targets)
        if decision.changed:
            changes.append(decision)
    return PolicyRun(targets, changes)


def _run_on_minutes(route: str, route_config: RouteConfig, config: TierupConfig, demand: MinuteDemand) -> PolicyRun:
    first = int(demand.start_s // 60)
    busy = np.flatnonzero(demand.requests > 0)
    rows = [MinuteUsage(minute=first + int(t), scope=f"route:{route}", requests=int(demand.requests[t]),
                        prompt_tokens=int(demand.prompt_tokens[t]), completion_tokens=int(demand.completion_tokens[t]))
            for t in busy]
    row_minutes = np.array([row.minute for row in rows], dtype=np.int64)
    state = RoutePolicyState()
    targets = np.zeros(len(demand), dtype=np.int64)
    changes: list[RouteDecision] = []
    for t in range(len(demand)):
        now_minute = first + t
        lo, hi = np.searchsorted(row_minutes, [now_minute - config.policy.history_minutes, now_minute])
        decision, state = decide(route, route_config, rows[lo:hi], state, now_minute * 60.0, config)
        targets[t] = decision.replicas
        if decision.changed:
            changes.append(decision)
    return PolicyRun(targets, changes)


def minute_spill_usd(buckets: Buckets, econ: RouteEconomics, rules: Rules, ceiling: int) -> np.ndarray:
    """Per minute and replica count 0..ceiling (all serving), the serverless USD of its spill."""
    priced, econ = view(buckets, econ, rules)
    dt = priced.bucket_s
    per_s = np.asarray(econ.serverless_usd_per_s(priced.requests / dt, priced.prompt_tokens / dt,
                                                 priced.completion_tokens / dt), dtype=float) * dt
    k = max(1, round(60.0 / dt))
    columns = [(per_s * (1.0 - served_share(priced, econ, np.full(len(priced), n), rules))).reshape(-1, k).sum(axis=1)
               for n in range(ceiling + 1)]
    return np.stack(columns, axis=1)


def peak_replicas(buckets: Buckets, econ: RouteEconomics) -> int:
    """Replicas the busiest minute needs at the target utilisation (work and concurrency), capped."""
    minutes = max(1, len(buckets) // buckets.per_minute)
    work = buckets.work_s.reshape(minutes, -1).sum(axis=1) / 60.0
    in_flight = buckets.busy_s.reshape(minutes, -1).sum(axis=1) / 60.0 / econ.max_concurrent
    need = float(np.maximum(work, in_flight).max()) / econ.target_utilisation
    return min(econ.max_replicas, math.ceil(need))


def reactive_minutes(spill_usd: np.ndarray, replica_usd_per_minute: float) -> np.ndarray:
    """A conventional autoscaler: each minute the count that was cheapest for the minute just
    over; up at once, down after ``REACTIVE_STABILISATION_MIN`` minutes of wanting fewer."""
    replicas = np.arange(spill_usd.shape[1])
    desired = (spill_usd + replicas[None, :] * replica_usd_per_minute).argmin(axis=1)
    targets = np.zeros(len(desired), dtype=np.int64)
    current, lower_for = 0, 0
    for t in range(1, len(desired)):
        want = int(desired[t - 1])
        if want > current:
            current, lower_for = want, 0
        elif want < current:
            lower_for += 1
            if lower_for >= REACTIVE_STABILISATION_MIN:
                current, lower_for = int(desired[t - REACTIVE_STABILISATION_MIN:t].max()), 0
        else:
            lower_for = 0
        targets[t] = current
    return targets


@dataclass(frozen=True)
class Comparison:
    """Every policy's outcome on one trace."""

    trace: str
    outcomes: dict[str, Outcome]
    changes: list[RouteDecision]

    def cost(self, policy: str) -> float:
        return self.outcomes[policy].cost_usd


def baseline_schedules(buckets: Buckets, econ: RouteEconomics, config: TierupConfig, rules: Rules) -> dict:
    """Per-bucket schedules of the baselines and the hindsight optimum under ``rules``."""
    per_minute = buckets.per_minute
    length = len(buckets)
    peak = peak_replicas(buckets, econ)
    ceiling = max(1, peak) if econ.max_replicas > 0 else 0
    spill = minute_spill_usd(buckets, econ, rules, ceiling)
    _, priced_econ = view(buckets, econ, rules)
    replica_minute = priced_econ.gpu_usd_per_s * 60.0
    release = priced_econ.gpu_usd_per_s * priced_econ.release_tail_s if rules.release_tail else 0.0
    hold = math.ceil(config.policy.min_hold_s / 60)
    optimum = hindsight_targets(priced_econ, buckets.minutes(), hold, ceiling, spill_usd=spill, release_usd=release)
    return {
        "always-serverless": np.zeros(length, dtype=np.int64),
        "always-reserved": np.full(length, peak, dtype=np.int64),
        "reactive": expand(reactive_minutes(spill, replica_minute), per_minute, length),
        "hindsight": expand(optimum, per_minute, length),
    }


def compare(trace: str, route: str, route_config: RouteConfig, config: TierupConfig, buckets: Buckets,
            rules: Rules = Rules(), policy_run: PolicyRun | None = None) -> Comparison:
    """Price all five schedules on ``buckets`` under ``rules``."""
    econ = economics_for(route, route_config, config)
    run = policy_run or run_policy(route, route_config, config, buckets)
    schedules = baseline_schedules(buckets, econ, config, rules)
    schedules["tierup"] = run.targets
    outcomes = {}
    for policy in POLICIES:
        # The old rules let a reactive autoscaler's warming replicas serve, and always-reserved
        # start warm; under the new ones every policy starts cold and only ready replicas serve.
        flip = "immediately" if policy == "reactive" and not rules.cold_start else "warm"
        outcomes[policy] = simulate(buckets, econ, schedules[policy], rules, flip=flip,
                                    starts_warm=policy == "always-reserved")
    return Comparison(trace, outcomes, run.changes)
