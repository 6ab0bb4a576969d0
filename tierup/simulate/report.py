"""Turn simulator comparisons into rows and totals (shared by ``tierup simulate`` and
``bench/policy_cost.py``).

"Cold" is the share of requests that reached a GPU replica still starting (or waited for one);
"spilled" the share that arrived while replicas served but beyond their concurrency or
throughput, and went to the serverless tier; "reserved" the share the ready replicas served;
"throttled" the share the serverless tier refused past its quota (delayed or failed).

Given a ``GatewayBill``, each row also carries the gateway's own AWS bill for the trace and the
whole bill (model + GPU + gateway), so "always serverless" and "tierup" are compared on what the
team pays in all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from functions.core.config import TierupConfig
from functions.core.gateway_cost import HOURS_PER_MONTH, monthly_gateway_costs

from .buckets import Buckets
from .replay import POLICIES, Comparison

_MONTH_S = HOURS_PER_MONTH * 3600


@dataclass(frozen=True, slots=True)
class GatewayBill:
    """What the gateway itself costs to serve a trace, on the configured host, priced by
    ``functions.core.gateway_cost.monthly_gateway_costs`` with its measured per-request profiles.

    Assumptions: every request passes through the gateway whichever tier serves it, and holds it
    (a Lambda invocation, a container's stream) for its time on the model, taken as its time on a
    full GPU replica of the route (``ReplicaCapacity.duration_s``, the trace's ``busy_s``) under
    every policy; so the bill is the same for every policy except for the requests the serverless
    quota refused (``throttle="fail"``), which are priced as answered at once (a fast 429, no
    stream). Traces have no repeated prompts, so no request is a cache hit. A container's hourly
    cost is the month's for the trace's rate, pro rata to the trace's length.
    """

    hosting: str
    memory_mb: int
    duration_s: float
    #: mean seconds from a request's arrival to its last byte
    mean_stream_s: float

    @classmethod
    def for_trace(cls, buckets: Buckets, config: TierupConfig) -> "GatewayBill":
        requests = float(buckets.requests.sum())
        return cls(hosting=config.gateway.hosting, memory_mb=config.gateway.lambda_memory_mb,
                   duration_s=len(buckets) * buckets.bucket_s,
                   mean_stream_s=float(buckets.busy_s.sum()) / requests if requests else 0.0)

    def usd(self, requests: float, refused: float = 0.0) -> float:
        """The gateway's bill for ``requests`` over the trace, ``refused`` of them without a stream."""
        if requests <= 0 or self.duration_s <= 0:
            return 0.0
        scale = _MONTH_S / self.duration_s
        mean_stream_s = self.mean_stream_s * (requests - refused) / requests
        month = {cost.option: cost.total_usd
                 for cost in monthly_gateway_costs(requests * scale, mean_stream_s, memory_mb=self.memory_mb)}
        return month[self.hosting] / scale


def policy_rows(comparison: Comparison, gateway: GatewayBill | None = None, *,
                refused_fail: bool = False) -> list[dict]:
    """One row per policy: cost, ratio to the hindsight optimum, request shares, promotions; with
    ``gateway``, the gateway's own bill and the whole bill too (``refused_fail``: the serverless
    quota's throttled requests failed rather than waited, ``Rules.throttle == "fail"``)."""
    optimum = comparison.cost("hindsight")
    rows = []
    for policy in POLICIES:
        outcome = comparison.outcomes[policy]
        extra = {}
        if gateway is not None:
            gateway_usd = gateway.usd(outcome.requests, outcome.throttled_requests if refused_fail else 0.0)
            extra = {"gateway_usd": round(gateway_usd, 4), "total_usd": round(outcome.cost_usd + gateway_usd, 4)}
        rows.append({
            "trace": comparison.trace, "policy": policy, "cost_usd": round(outcome.cost_usd, 4),
            "gpu_usd": round(outcome.gpu_usd, 4), **extra,
            "vs_hindsight": round(outcome.cost_usd / optimum, 4) if optimum > 0 else None,
            "reserved_share": round(outcome.share(outcome.reserved_requests), 4),
            "spilled_share": round(outcome.share(outcome.spilled_requests), 4),
            "cold_share": round(outcome.share(outcome.cold_requests), 6),
            "throttled_share": round(outcome.share(outcome.throttled_requests), 6),
            "promotions": outcome.promotions,
            "requests": int(outcome.requests),
        })
    return rows


def totals(comparisons: list[Comparison], rows: list[list[dict]] | None = None) -> dict[str, dict]:
    """Per policy, summed over traces: cost, requests, and the request shares; with each trace's
    ``policy_rows`` (made with a ``GatewayBill``), the gateway's bill and the whole bill too."""
    summary = {}
    for policy in POLICIES:
        outcomes = [c.outcomes[policy] for c in comparisons]
        requests = sum(o.requests for o in outcomes)

        def share(counts):
            return round(sum(counts) / requests, 6) if requests else 0.0

        extra = {}
        if rows:
            mine = [row for trace_rows in rows for row in trace_rows if row["policy"] == policy]
            extra = {key: round(sum(row[key] for row in mine), 4) for key in ("gateway_usd", "total_usd")}
        summary[policy] = {
            "cost_usd": round(sum(o.cost_usd for o in outcomes), 4), **extra,
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
