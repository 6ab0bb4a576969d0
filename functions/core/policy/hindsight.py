"""The hindsight-optimal schedule: the cheapest replica schedule with full knowledge of the trace.

Dynamic programming over one-minute buckets under the same rules the online policy obeys and
``schedule.price_schedule`` prices: a raise pays its replicas through ``warmup`` buckets before
they serve (and nothing may change meanwhile), and no decrease comes within ``hold`` buckets of
the last raise. The state is ``(replicas, hold buckets left)``; a raise is a jump of ``warmup``
buckets, so each step costs O(replicas × hold) in numpy.

It is a yardstick for the simulator, not something the online policy may use. No I/O here.
"""

from __future__ import annotations

import math

import numpy as np

from .cost_model import RouteEconomics, spill_fraction
from .schedule import MinuteDemand, warmup_buckets


def hindsight_targets(econ: RouteEconomics, demand: MinuteDemand, hold_buckets: int,
                      max_replicas: int | None = None, *, spill_usd: np.ndarray | None = None,
                      release_usd: float = 0.0) -> np.ndarray:
    """The minimum-cost paid-replica schedule (one target per minute) for ``demand``.

    ``spill_usd`` (minutes x replica counts 0..ceiling), when given, is what each minute costs on
    the serverless tier with that many replicas serving (the simulator's finer rules); else the
    cost model's per-minute spill. ``release_usd`` is what each released replica still costs (its
    drain and scale-down tail).
    """
    ceiling = econ.max_replicas if max_replicas is None else max_replicas
    length = len(demand)
    warm = warmup_buckets(econ)
    if ceiling <= 0 or length == 0:
        return np.zeros(length, dtype=np.int64)
    load = demand.load(econ)
    if spill_usd is None:
        # Replicas beyond what the peak needs never pay off.
        ceiling = min(ceiling, max(1, math.ceil(load.max() / econ.target_utilisation)))
    else:
        ceiling = min(ceiling, spill_usd.shape[1] - 1)
    # Pad ``warm`` free buckets so that raises near the end are priced only inside the trace.
    steps = length + warm
    replicas = np.arange(ceiling + 1)
    given = spill_usd
    spill_usd = np.zeros((steps, ceiling + 1))
    if given is not None:
        spill_usd[:length] = given[:, :ceiling + 1]
    else:
        spill_usd[:length] = (spill_fraction(replicas[None, :], load[:, None], econ.target_utilisation)
                              * demand.serverless_usd(econ)[:, None])
    gpu_usd = np.zeros(steps)
    gpu_usd[:length] = econ.gpu_usd_per_s * 60.0
    # Cost of ``warm`` buckets starting at t with n replicas serving: window sums of spill.
    cumulative = np.vstack([np.zeros((1, ceiling + 1)), np.cumsum(spill_usd, axis=0)])
    gpu_cumulative = np.concatenate([[0.0], np.cumsum(gpu_usd)])

    hold_left = max(hold_buckets - warm, 0)
    dp = np.full((ceiling + 1, hold_left + 1), np.inf)
    dp[0, 0] = 0.0
    landing = np.full((steps + warm + 1, ceiling + 1), np.inf)
    # Back-pointers per step: whether (m, hold_left) was reached by a raise landing now, the
    # (n, k) each raise to m started from, which n each (m, 0) was lowered from, and whether
    # (n, 0) was reached by counting down from (n, 1).
    landed = np.zeros((steps, ceiling + 1), dtype=bool)
    raised_from = np.zeros((steps, ceiling + 1, 2), dtype=np.int32)
    lowered_from = np.zeros((steps, ceiling + 1), dtype=np.int32)
    counted_down = np.zeros((steps, ceiling + 1), dtype=bool)

    for t in range(steps):
        # 1. raises started ``warm`` buckets ago land now, with the rest of their hold to serve.
        better = landing[t] < dp[:, hold_left]
        landed[t] = better
        dp[:, hold_left] = np.where(better, landing[t], dp[:, hold_left])
        # 2. raise from (n, any k) to m > n: pay m through the warm-up while n serve.
        if t < length:
            end = t + warm
            row_best, row_arg = dp.min(axis=1), dp.argmin(axis=1)
            source = row_best + (cumulative[end] - cumulative[t])
            prefix, prefix_arg = np.minimum.accumulate(source), _prefix_argmin(source)
            candidate = prefix[:-1] + replicas[1:] * (gpu_cumulative[end] - gpu_cumulative[t])
            raised_from[t, 1:, 0] = prefix_arg[:-1]
            raised_from[t, 1:, 1] = row_arg[prefix_arg[:-1]]
            landing[end, 1:] = candidate
        # 3. lower from (n, 0) to any m < n, effective at once; each released replica pays its tail.
        with_tail = dp[:, 0] + replicas * release_usd
        lowered_from[t] = _suffix_argmin(with_tail)
        dp[:, 0] = with_tail[lowered_from[t]] - replicas * release_usd
        # 4. pay this bucket with the replicas held, and count the hold down.
        paid = dp + (replicas * gpu_usd[t] + spill_usd[t])[:, None]
        dp = np.full_like(paid, np.inf)
        if hold_left > 0:
            counted_down[t] = paid[:, 1] < paid[:, 0]
            dp[:, 0] = np.minimum(paid[:, 0], paid[:, 1])
            dp[:, 1:-1] = paid[:, 2:]
        else:
            dp[:, 0] = paid[:, 0]

    targets = np.zeros(steps, dtype=np.int64)
    n, k = np.unravel_index(int(np.argmin(dp)), dp.shape)
    t = steps
    while t > 0:
        s = t - 1
        targets[s] = n
        k = (1 if counted_down[s, n] else 0) if k == 0 else k + 1
        if k == 0:
            n = lowered_from[s, n]
        while k == hold_left and landed[s, n] and s >= warm:
            # reached by a raise that started ``warm`` buckets earlier
            targets[s - warm:s] = n
            s -= warm
            n, k = raised_from[s, n]
        t = s
    return targets[:length]


def _prefix_argmin(values: np.ndarray) -> np.ndarray:
    """Index of the running minimum of ``values`` (first index on ties)."""
    running = np.minimum.accumulate(values)
    is_new = np.concatenate([[True], values[1:] < running[:-1]])
    return np.maximum.accumulate(np.where(is_new, np.arange(len(values)), 0))


def _suffix_argmin(values: np.ndarray) -> np.ndarray:
    """Index of the minimum of ``values[i:]`` for each i (the lowest index on ties)."""
    reversed_arg = _prefix_argmin(values[::-1])
    return (len(values) - 1 - reversed_arg)[::-1]
