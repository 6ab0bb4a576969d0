"""Turn simulator comparisons into rows and totals (shared by ``tierup simulate`` and
``bench/policy_cost.py``).

"Cold" is the share of requests that reached a GPU replica still starting (or waited for one);
"spilled" the share that arrived while replicas served but beyond their concurrency or
throughput, and went to the serverless tier; "reserved" the share the ready replicas served;
"throttled" the share the serverless tier refused past its quota (delayed or failed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .buckets import Buckets
from .replay import POLICIES, Comparison


def policy_rows(comparison: Comparison) -> list[dict]:
    """One row per policy: cost, ratio to the hindsight optimum, request shares, promotions."""
    optimum = comparison.cost("hindsight")
    rows = []
    for policy in POLICIES:
        outcome = comparison.outcomes[policy]
        rows.append({
            "trace": comparison.trace, "policy": policy, "cost_usd": round(outcome.cost_usd, 4),
            "gpu_usd": round(outcome.gpu_usd, 4),
            "vs_hindsight": round(outcome.cost_usd / optimum, 4) if optimum > 0 else None,
            "reserved_share": round(outcome.share(outcome.reserved_requests), 4),
            "spilled_share": round(outcome.share(outcome.spilled_requests), 4),
            "cold_share": round(outcome.share(outcome.cold_requests), 6),
            "throttled_share": round(outcome.share(outcome.throttled_requests), 6),
            "promotions": outcome.promotions,
            "requests": int(outcome.requests),
        })
    return rows


def totals(comparisons: list[Comparison]) -> dict[str, dict]:
    """Per policy, summed over traces: cost, requests, and the request shares."""
    summary = {}
    for policy in POLICIES:
        outcomes = [c.outcomes[policy] for c in comparisons]
        requests = sum(o.requests for o in outcomes)

        def share(counts):
            return round(sum(counts) / requests, 6) if requests else 0.0

        summary[policy] = {
            "cost_usd": round(sum(o.cost_usd for o in outcomes), 4),
            "requests": int(requests),
            "cold_share": share(o.cold_requests for o in outcomes),
            "reserved_share": share(o.reserved_requests for o in outcomes),
            "spilled_share": share(o.spilled_requests for o in outcomes),
            "throttled_share": share(o.throttled_requests for o in outcomes),
            "promotions": sum(o.promotions for o in outcomes),
        }
    return summary


def plot(comparison: Comparison, buckets: Buckets, path: Path) -> Path:
    """Demand and serving replicas per minute, and each policy's cumulative cost, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = buckets.per_minute
    demand = buckets.work_s.reshape(-1, k).sum(axis=1) / 60.0  # replicas' worth of GPU work
    hours = np.arange(len(demand)) / 60.0
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    top.plot(hours, demand, color="0.6", linewidth=0.6, label="demand (replicas of work)")
    for policy, colour in (("tierup", "tab:blue"), ("hindsight", "tab:green"), ("reactive", "tab:orange")):
        serving = comparison.outcomes[policy].serving
        if serving is not None and len(serving) == len(buckets):
            top.step(hours, serving.reshape(-1, k).min(axis=1), where="post", color=colour, linewidth=1.0,
                     label=f"{policy} replicas serving")
    top.set_ylabel("replicas")
    top.set_title(f"{comparison.trace}: demand and reserved replicas")
    top.legend(loc="upper right", fontsize=8)
    for policy in POLICIES:
        cost = comparison.outcomes[policy].cost_by_bucket
        if cost is not None and len(cost) == len(buckets):
            bottom.plot(hours, np.cumsum(cost.reshape(-1, k).sum(axis=1)), label=policy, linewidth=1.0)
    bottom.set_ylabel("cumulative cost (USD)")
    bottom.set_xlabel("hours")
    bottom.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
