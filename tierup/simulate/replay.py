"""Replay a per-minute trace through tierup's policy and the baselines, and price each schedule.

tierup's schedule comes from the very ``decide`` the policy Lambda runs: each minute it is handed
the route's usage history up to the minute that just ended (as ``MinuteUsage`` rows, as the
usage aggregates store them) and the state it returned the minute before. Every schedule is then
priced by the one ``price_schedule``.

No I/O here: traces come in as ``MinuteDemand``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from functions.core.config import RouteConfig, TierupConfig
from functions.core.policy import RouteDecision, RoutePolicyState, decide
from functions.core.policy.cost_model import economics_for
from functions.core.policy.schedule import MinuteDemand, ScheduleOutcome, price_schedule, schedule_violation, warmup_buckets
from functions.core.ports import MinuteUsage

from . import baselines

POLICIES = ("always-serverless", "always-reserved", "reactive", "tierup", "hindsight")


@dataclass(frozen=True)
class PolicyRun:
    """tierup's schedule over a trace, with every decision that changed it."""

    targets: np.ndarray
    changes: list[RouteDecision]


def usage_rows(route: str, demand: MinuteDemand) -> list[MinuteUsage]:
    """The trace as the usage aggregates would hold it: one row per minute with traffic."""
    first = int(demand.start_s // 60)
    busy = np.flatnonzero(demand.requests > 0)
    return [MinuteUsage(minute=first + int(t), scope=f"route:{route}", requests=int(demand.requests[t]),
                        prompt_tokens=int(demand.prompt_tokens[t]),
                        completion_tokens=int(demand.completion_tokens[t])) for t in busy]


def run_policy(route: str, route_config: RouteConfig, config: TierupConfig, demand: MinuteDemand) -> PolicyRun:
    """Call ``decide`` at the start of every minute, with only the minutes already over."""
    rows = usage_rows(route, demand)
    row_minutes = np.array([row.minute for row in rows], dtype=np.int64)
    first = int(demand.start_s // 60)
    window = config.policy.history_minutes
    state = RoutePolicyState()
    targets = np.zeros(len(demand), dtype=np.int64)
    changes: list[RouteDecision] = []
    for t in range(len(demand)):
        now_minute = first + t
        lo, hi = np.searchsorted(row_minutes, [now_minute - window, now_minute])
        decision, state = decide(route, route_config, rows[lo:hi], state, now_minute * 60.0, config)
        targets[t] = decision.replicas
        if decision.changed:
            changes.append(decision)
    return PolicyRun(targets, changes)


@dataclass(frozen=True)
class Comparison:
    """Every policy's outcome on one trace."""

    trace: str
    outcomes: dict[str, ScheduleOutcome]
    demand: MinuteDemand
    changes: list[RouteDecision]

    def cost(self, policy: str) -> float:
        return self.outcomes[policy].total_usd


def hold_buckets(config: TierupConfig) -> int:
    return math.ceil(config.policy.min_hold_s / 60)


def compare(trace: str, route: str, route_config: RouteConfig, config: TierupConfig,
            demand: MinuteDemand) -> Comparison:
    """Price all five schedules on ``demand``; raise if tierup's breaks the warm-up/hold rules."""
    econ = economics_for(route, route_config, config)
    run = run_policy(route, route_config, config, demand)
    violation = schedule_violation(run.targets, warmup_buckets(econ), hold_buckets(config))
    if violation:
        raise AssertionError(f"tierup's schedule on {trace} breaks the policy's rules: {violation}")
    reserved = baselines.always_reserved(econ, demand)
    outcomes = {
        "always-serverless": price_schedule(econ, demand, baselines.always_serverless(demand)),
        "always-reserved": price_schedule(econ, demand, reserved, initial=int(reserved[0]) if len(reserved) else 0),
        "reactive": price_schedule(econ, demand, baselines.reactive_threshold(econ, demand), switch="immediately"),
        "tierup": price_schedule(econ, demand, run.targets),
        "hindsight": price_schedule(econ, demand, baselines.hindsight(econ, demand, hold_buckets(config))),
    }
    return Comparison(trace, outcomes, demand, run.changes)
