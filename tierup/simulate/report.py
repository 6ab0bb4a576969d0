"""Turn simulator comparisons into rows and totals (shared by ``tierup simulate`` and
``bench/policy_cost.py``).

"Cold" is the share of requests that reached a GPU replica still starting (or waited for one);
"spilled" the share that arrived while replicas served but beyond their concurrency or
throughput, and went to the serverless tier; "reserved" the share the ready replicas served;
"throttled" the share the serverless tier refused past its quota (delayed or failed).
"""

from __future__ import annotations

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
