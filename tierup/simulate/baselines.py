"""The schedules tierup's policy is compared with, each a paid-replicas-per-minute array.

* ``always_serverless``: never reserve anything.
* ``always_reserved``: the replicas the trace's peak minute needs (up to the route's ceiling),
  warm before the trace starts and kept throughout.
* ``reactive_threshold``: a conventional autoscaler. Each minute it takes the replica count
  that would have been cheapest for the *last* minute's demand, scales up at once and moves
  traffic at once (so requests reach replicas still warming: served cold), and scales down
  after a 5-minute stabilisation window (as Kubernetes' HPA does by default).
* ``hindsight``: the offline optimum (``functions.core.policy.hindsight``).

No I/O here.
"""

from __future__ import annotations

import math

import numpy as np

from functions.core.policy.cost_model import RouteEconomics, spill_fraction
from functions.core.policy.hindsight import hindsight_targets
from functions.core.policy.schedule import MinuteDemand

#: minutes a lower desired count must persist before the reactive autoscaler scales down
REACTIVE_STABILISATION_MIN = 5


def always_serverless(demand: MinuteDemand) -> np.ndarray:
    return np.zeros(len(demand), dtype=np.int64)


def peak_replicas(econ: RouteEconomics, demand: MinuteDemand) -> int:
    """Replicas that absorb the trace's busiest minute, capped at the route's ceiling."""
    peak = float(demand.load(econ).max()) if len(demand) else 0.0
    return min(econ.max_replicas, math.ceil(peak / econ.target_utilisation))


def always_reserved(econ: RouteEconomics, demand: MinuteDemand) -> np.ndarray:
    return np.full(len(demand), peak_replicas(econ, demand), dtype=np.int64)


def cheapest_per_minute(econ: RouteEconomics, demand: MinuteDemand) -> np.ndarray:
    """For each minute, the replica count that would have served it cheapest."""
    replicas = np.arange(econ.max_replicas + 1)
    spilled = spill_fraction(replicas[None, :], demand.load(econ)[:, None], econ.target_utilisation)
    cost = replicas[None, :] * econ.gpu_usd_per_s * 60 + spilled * demand.serverless_usd(econ)[:, None]
    return cost.argmin(axis=1)


def reactive_threshold(econ: RouteEconomics, demand: MinuteDemand) -> np.ndarray:
    desired = cheapest_per_minute(econ, demand)
    targets = np.zeros(len(demand), dtype=np.int64)
    current = 0
    lower_for = 0
    for t in range(1, len(demand)):
        want = int(desired[t - 1])  # it only knows the minute that just ended
        if want > current:
            current, lower_for = want, 0
        elif want < current:
            lower_for += 1
            if lower_for >= REACTIVE_STABILISATION_MIN:
                current = int(desired[t - REACTIVE_STABILISATION_MIN:t].max())
                lower_for = 0
        else:
            lower_for = 0
        targets[t] = current
    return targets


def hindsight(econ: RouteEconomics, demand: MinuteDemand, hold_buckets: int) -> np.ndarray:
    return hindsight_targets(econ, demand, hold_buckets)
