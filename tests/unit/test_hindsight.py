"""The hindsight optimum is optimal: it matches brute force over every valid schedule."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from functions.core.policy.cost_model import RouteEconomics
from functions.core.policy.hindsight import hindsight_targets
from functions.core.policy.schedule import MinuteDemand, price_schedule, schedule_violation, warmup_buckets


def _economics(warmup_s: float, max_replicas: int = 2) -> RouteEconomics:
    # One replica absorbs 1 load unit (= 60 prompt tokens/s) at 100 %; 1 unit on serverless costs
    # 2 USD/min, one replica 1 USD/min, so a replica pays off from half a unit of load.
    return RouteEconomics(
        serverless_usd_per_prompt_token=2.0 / 3600, serverless_usd_per_completion_token=0.0,
        gpu_usd_per_s=1.0 / 60, prefill_tokens_per_s=60.0, decode_tokens_per_s=1e9,
        target_utilisation=1.0, warmup_s=warmup_s, max_replicas=max_replicas)


def _demand(loads: list[float]) -> MinuteDemand:
    loads_arr = np.asarray(loads, dtype=float)
    return MinuteDemand(requests=loads_arr * 10, prompt_tokens=loads_arr * 3600,
                        completion_tokens=np.zeros(len(loads)))


def _brute_force(econ, demand, hold) -> float:
    warm = warmup_buckets(econ)
    best = np.inf
    for targets in itertools.product(range(econ.max_replicas + 1), repeat=len(demand)):
        if schedule_violation(np.array(targets), warm, hold) is None:
            best = min(best, price_schedule(econ, demand, np.array(targets)).total_usd)
    return best


CASES = [
    ([0.2, 1.5, 1.8, 1.9, 0.1, 0.1, 1.2], 60, 3),
    ([2.0, 2.0, 0.0, 0.0, 0.0, 2.0, 2.0], 60, 2),
    ([0.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.0], 120, 4),
    ([1.6, 0.2, 1.7, 0.3, 1.8, 0.4, 1.9], 120, 3),
    ([0.7, 1.4, 0.6, 2.0, 2.0, 0.0, 0.8], 30, 1),
    ([3.0, 3.0, 3.0, 0.0, 3.0, 3.0, 0.1], 60, 0),
]


@pytest.mark.parametrize(("loads", "warmup_s", "hold"), CASES)
def test_hindsight_matches_brute_force(loads, warmup_s, hold):
    econ = _economics(warmup_s)
    demand = _demand(loads)
    targets = hindsight_targets(econ, demand, hold)
    assert schedule_violation(targets, warmup_buckets(econ), hold) is None
    assert price_schedule(econ, demand, targets).total_usd == pytest.approx(_brute_force(econ, demand, hold))


def test_hindsight_warms_ahead_of_a_known_rise():
    econ = _economics(120, max_replicas=1)
    demand = _demand([0.0] * 5 + [1.0] * 20)
    targets = hindsight_targets(econ, demand, hold_buckets=5)
    # It asks for the replica two buckets (the warm-up) before the load arrives.
    assert targets[3] == 1 and targets[2] == 0
