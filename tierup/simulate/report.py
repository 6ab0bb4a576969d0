"""Turn simulator comparisons into rows, tables and a plot (shared by ``tierup simulate`` and
``bench/policy_cost.py``).

"Cold" is the share of requests that reached a GPU replica still warming (only an autoscaler
that moves traffic before the warm-up is over has any); "spilled" is the share that arrived
while the route had reserved capacity but beyond it, and was served on the serverless tier;
"reserved" is the share the warm replicas served.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from functions.core.policy.cost_model import RouteEconomics

from .replay import POLICIES, Comparison


def policy_rows(comparison: Comparison) -> list[dict]:
    """One row per policy: cost, ratio to the hindsight optimum, request shares, promotions."""
    optimum = comparison.cost("hindsight")
    rows = []
    for policy in POLICIES:
        outcome = comparison.outcomes[policy]
        rows.append({
            "trace": comparison.trace, "policy": policy, "cost_usd": round(outcome.total_usd, 4),
            "vs_hindsight": round(outcome.total_usd / optimum, 4) if optimum > 0 else None,
            "reserved_share": round(outcome.share(outcome.reserved_requests), 4),
            "spilled_share": round(outcome.share(outcome.spilled_requests), 4),
            "cold_share": round(outcome.share(outcome.cold_requests), 6),
            "promotions": outcome.promotions,
            "requests": int(outcome.requests),
        })
    return rows


def totals(comparisons: list[Comparison]) -> dict[str, dict]:
    """Per policy, summed over traces: cost, requests, cold and reserved requests."""
    summary = {}
    for policy in POLICIES:
        outcomes = [c.outcomes[policy] for c in comparisons]
        requests = sum(o.requests for o in outcomes)
        summary[policy] = {
            "cost_usd": round(sum(o.total_usd for o in outcomes), 4),
            "requests": int(requests),
            "cold_share": round(sum(o.cold_requests for o in outcomes) / requests, 6) if requests else 0.0,
            "reserved_share": round(sum(o.reserved_requests for o in outcomes) / requests, 4) if requests else 0.0,
            "spilled_share": round(sum(o.spilled_requests for o in outcomes) / requests, 4) if requests else 0.0,
            "promotions": sum(o.promotions for o in outcomes),
        }
    return summary


def plot(comparison: Comparison, econ: RouteEconomics, path: Path) -> Path:
    """Demand, reserved capacity and cumulative cost over time, as a PNG at ``path``.

    Demand and capacity share the y axis in replica units (capacity at the target utilisation).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    load = comparison.demand.load(econ)
    hours = np.arange(len(load)) / 60.0
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    top.plot(hours, load, color="0.6", linewidth=0.6, label="demand (replica-loads)")
    for policy, colour in (("tierup", "tab:blue"), ("hindsight", "tab:green"), ("reactive", "tab:orange")):
        warm = comparison.outcomes[policy].warm * econ.target_utilisation
        top.step(hours, warm, where="post", color=colour, linewidth=1.0, label=f"{policy} warm capacity")
    top.set_ylabel("load / capacity (replicas)")
    top.set_title(f"{comparison.trace}: demand and reserved capacity")
    top.legend(loc="upper right", fontsize=8)
    for policy in ("always-serverless", "always-reserved", "reactive", "tierup", "hindsight"):
        bottom.plot(hours, np.cumsum(comparison.outcomes[policy].cost_usd), label=policy, linewidth=1.0)
    bottom.set_ylabel("cumulative cost (USD)")
    bottom.set_xlabel("hours")
    bottom.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
