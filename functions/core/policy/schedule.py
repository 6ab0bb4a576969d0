"""Price a whole reserved-replica schedule against a per-minute demand trace.

One function prices every schedule the simulator compares (tierup's policy, the baselines, the
hindsight optimum), so they differ only in the schedule, never in the accounting.

Semantics, per one-minute bucket ``t`` (the policy runs at the start of each minute):

* ``targets[t]`` replicas are **paid** during bucket ``t`` (warming ones included);
* a replica asked for at bucket ``t`` is **warm** from bucket ``t + warmup_buckets``; a decrease
  takes effect at once. So warm replicas are the minimum of the targets over the last
  ``warmup_buckets + 1`` buckets;
* with ``switch="warm"`` (tierup: warm first, then move traffic) only warm replicas serve; with
  ``switch="immediately"`` (a plain reactive autoscaler) all paid replicas take traffic at once,
  and requests that land on a replica still warming are **served cold**;
* the demand the serving replicas cannot absorb at the target utilisation **spills** to the
  serverless tier and is paid per token there.

No I/O here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .cost_model import RouteEconomics, spill_fraction


@dataclass(frozen=True)
class MinuteDemand:
    """A trace bucketed into minutes: totals per minute, and the first minute's epoch second."""

    requests: np.ndarray
    prompt_tokens: np.ndarray
    completion_tokens: np.ndarray
    start_s: float = 0.0

    def __len__(self) -> int:
        return len(self.requests)

    def load(self, econ: RouteEconomics) -> np.ndarray:
        """Per-minute demand in replica units."""
        return econ.load(self.prompt_tokens / 60.0, self.completion_tokens / 60.0)

    def serverless_usd(self, econ: RouteEconomics) -> np.ndarray:
        """Per-minute USD had each minute been served entirely on the serverless tier."""
        return 60.0 * np.asarray(econ.serverless_usd_per_s(
            self.requests / 60.0, self.prompt_tokens / 60.0, self.completion_tokens / 60.0), dtype=float)


@dataclass(frozen=True)
class ScheduleOutcome:
    """What a schedule cost and where its requests were served."""

    cost_usd: np.ndarray  # per minute
    targets: np.ndarray  # paid replicas per minute
    warm: np.ndarray  # warm replicas per minute
    requests: float
    reserved_requests: float
    spilled_requests: float  # arrived while reserved capacity existed, beyond it
    serverless_requests: float  # arrived while the route had no serving replica
    cold_requests: float
    promotions: int

    @property
    def total_usd(self) -> float:
        return float(self.cost_usd.sum())

    def share(self, count: float) -> float:
        return count / self.requests if self.requests else 0.0


def warmup_buckets(econ: RouteEconomics) -> int:
    """Buckets from asking for a replica to its serving; at least one (a start is never instant)."""
    return max(1, math.ceil(econ.warmup_s / 60.0))


def warm_replicas(targets: np.ndarray, buckets: int, initial: int = 0) -> np.ndarray:
    """Replicas warm in each bucket: the minimum target over the last ``buckets + 1`` buckets."""
    targets = np.asarray(targets, dtype=np.int64)
    padded = np.concatenate([np.full(buckets, initial, dtype=np.int64), targets])
    windows = np.lib.stride_tricks.sliding_window_view(padded, buckets + 1)
    return windows.min(axis=1)


def promotions(targets: np.ndarray, initial: int = 0) -> int:
    """How many times the route went from no reserved replicas to some."""
    previous = np.concatenate([[initial], np.asarray(targets)[:-1]])
    return int(((previous == 0) & (np.asarray(targets) > 0)).sum())


def schedule_violation(targets: np.ndarray, warmup: int, hold: int) -> str | None:
    """Why ``targets`` breaks the policy's rules, or None.

    Rules: a raise is atomic (no change during its ``warmup`` buckets), and no decrease within
    ``hold`` buckets of the last raise.
    """
    last_raise = None
    previous = 0
    for t, target in enumerate(np.asarray(targets).tolist()):
        if target != previous and last_raise is not None and t < last_raise + warmup:
            return f"bucket {t}: changed during the warm-up of the raise at {last_raise}"
        if target < previous and last_raise is not None and t < last_raise + hold:
            return f"bucket {t}: lowered within the hold of the raise at {last_raise}"
        if target > previous:
            last_raise = t
        previous = target
    return None


def price_schedule(econ: RouteEconomics, demand: MinuteDemand, targets: np.ndarray, *,
                   switch: str = "warm", initial: int = 0) -> ScheduleOutcome:
    """Cost and request placement of ``targets`` (paid replicas per minute) over ``demand``.

    ``initial`` replicas are warm before the trace starts (the always-reserved baseline).
    """
    targets = np.asarray(targets, dtype=np.int64)
    warm = warm_replicas(targets, warmup_buckets(econ), initial)
    serving = warm if switch == "warm" else targets
    load = demand.load(econ)
    spilled = spill_fraction(serving, load, econ.target_utilisation)
    cost = targets * econ.gpu_usd_per_s * 60.0 + spilled * demand.serverless_usd(econ)
    on_gpu = serving > 0
    served_reserved = demand.requests * (1.0 - spilled) * on_gpu
    with np.errstate(divide="ignore", invalid="ignore"):
        capacity = econ.target_utilisation
        cold_load = np.minimum(load, targets * capacity) - np.minimum(load, warm * capacity)
        cold_share = np.where(load > 0, cold_load / np.where(load > 0, load, 1.0), 0.0)
    cold = demand.requests * cold_share if switch == "immediately" else np.zeros(len(demand))
    return ScheduleOutcome(
        cost_usd=cost, targets=targets, warm=warm,
        requests=float(demand.requests.sum()),
        reserved_requests=float(served_reserved.sum()),
        spilled_requests=float((demand.requests * spilled * on_gpu).sum()),
        serverless_requests=float((demand.requests * ~on_gpu).sum()),
        cold_requests=float(cold.sum()),
        promotions=promotions(targets, initial),
    )
