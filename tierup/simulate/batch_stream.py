"""A batch stream priced alongside an interactive trace: tierup's batch routing against on-demand.

A batch of ``lines`` chat lines arrives ``arrive_s`` into the trace with a ``window_s`` completion
window, and is routed as the worker routes it (``functions/batch/bedrock_path.py`` and
``routing.py``) over the reserved replicas the policy holds each bucket:

* the route holds reserved replicas when the batch arrives: lines take reserved capacity (already
  paid for: $0 more) only up to ``[batch] reserved-share`` of the replicas' work, interactive load
  included, and wait otherwise; halfway to the deadline margin (``handoff_after_s``) what is left
  goes to one Bedrock batch job when it is at least Bedrock's minimum records, else keeps waiting
  for reserved until ``deadline-margin-s`` before the window ends and then runs on the interactive
  serverless tier at the on-demand price;
* it holds none, the model has a Bedrock batch price and the batch has at least Bedrock's minimum
  records: one Bedrock batch job at the batch price (assumed to finish before the margin);
* otherwise (too few lines, or no batch price): on-demand at once, throttled, on a route without
  reserved replicas; on a promoted one, reserved, then on-demand at the margin.

``interactive_only`` prices the same batch with no Bedrock path (the last rule). The route's
replicas are judged at the batch's arrival only: the worker looks again at every chunk, so a route
promoted while the batch drains takes lines on reserved sooner than modelled here. Reserved
capacity is paid for whether or not batch lines use it, so a line served there costs $0 more.
Window past the trace's end counts as reserved-free. Used by ``tierup simulate --batch-lines`` and
``bench/batch_cost.py``.

No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from functions.core.batch_bedrock import handoff_after_s
from functions.core.chat import Usage
from functions.core.config import RouteConfig, TierupConfig
from functions.core.policy.cost_model import RouteEconomics
from functions.core.pricing import batch_token_cost_usd, token_cost_usd

from .buckets import Buckets


@dataclass(frozen=True)
class BatchStream:
    lines: int
    #: seconds after the trace's start the batch arrives
    arrive_s: float
    #: its completion window
    window_s: float
    prompt_tokens: int = 800
    completion_tokens: int = 200


def route_batch(targets: np.ndarray, work_s: np.ndarray, bucket_s: float, line_work_s: float, lines: int,
                share: float, fallback_bucket: int) -> tuple[np.ndarray, int]:
    """Lines served on reserved each bucket, and the lines left at ``fallback_bucket``.

    ``targets``: reserved replicas per bucket; ``work_s``: the interactive replica-seconds of work
    in each bucket; ``line_work_s``: replica-seconds one batch line takes."""
    room = np.maximum(0.0, targets * share * bucket_s - work_s)  # replica-seconds batch may use
    served = np.zeros(len(targets), dtype=np.int64)
    left = lines
    carry = 0.0  # room too small for a line in one bucket adds up over the next ones
    for b in range(min(fallback_bucket, len(targets))):
        if left <= 0:
            break
        if targets[b] == 0:
            carry = 0.0
            continue
        carry += room[b]
        served[b] = min(left, int(carry // line_work_s))
        carry -= served[b] * line_work_s
        left -= served[b]
    return served, left


def price_batch(stream: BatchStream, targets: np.ndarray, buckets: Buckets, config: TierupConfig,
                route: RouteConfig, econ: RouteEconomics) -> dict:
    """Where the batch's lines run over ``targets`` (reserved replicas per bucket of ``buckets``)
    and what they cost, against all of them on-demand."""
    bucket_s = buckets.bucket_s
    arrive = min(len(buckets) - 1, round(stream.arrive_s / bucket_s))
    end = min(len(buckets), arrive + round(stream.window_s / bucket_s))
    targets = np.asarray(targets[arrive:end])
    work = np.asarray(buckets.work_s[arrive:end], dtype=float)
    line_work_s = float(econ.capacity.work_s(stream.prompt_tokens, stream.completion_tokens))
    margin_s = min(config.batch.deadline_margin_s, stream.window_s)
    share, min_records, lines = config.batch.reserved_share, config.batch.bedrock_min_records, stream.lines
    served, left = route_batch(targets, work, bucket_s, line_work_s, lines, share,
                               round((stream.window_s - margin_s) / bucket_s))

    model = route.serverless
    line = Usage(prompt_tokens=stream.prompt_tokens, completion_tokens=stream.completion_tokens)
    on_demand_line = token_cost_usd(config.pricing, "serverless", model, line)
    batch_line = batch_token_cost_usd(config.pricing, model, line)
    on_demand = lines * on_demand_line
    promoted_at_arrival = bool(len(targets) and targets[0] > 0)
    # without Bedrock: on a promoted route lines wait for reserved, else they run on-demand at once
    interactive_only = (left if promoted_at_arrival else lines) * on_demand_line
    has_batch_price = batch_line is not None
    if not promoted_at_arrival and has_batch_price and lines >= min_records:
        path, on_reserved, bedrock_lines, on_demand_lines = "bedrock-batch", 0, lines, 0
    elif not promoted_at_arrival:
        path, on_reserved, bedrock_lines, on_demand_lines = "on-demand", 0, 0, lines
    else:
        handoff_bucket = round(handoff_after_s(stream.window_s, margin_s) / bucket_s)
        early, left_at_handoff = route_batch(targets, work, bucket_s, line_work_s, lines, share, handoff_bucket)
        if has_batch_price and left_at_handoff >= min_records:
            path, on_reserved, bedrock_lines, on_demand_lines = ("reserved, then bedrock-batch", int(early.sum()),
                                                                 int(left_at_handoff), 0)
        else:
            path, on_reserved, bedrock_lines, on_demand_lines = ("reserved, then on-demand", int(served.sum()), 0,
                                                                 int(left))
    tierup_usd = bedrock_lines * (batch_line or 0.0) + on_demand_lines * on_demand_line
    capacity_s = float(targets.sum()) * bucket_s
    used_before = float(np.minimum(work, targets * bucket_s).sum())
    return {
        "trace_hours_after_arrival": round(len(targets) * bucket_s / 3600, 1),
        "lines": lines, "promoted_at_arrival": promoted_at_arrival, "path": path,
        "on_reserved": on_reserved, "bedrock_lines": bedrock_lines, "on_demand_lines": on_demand_lines,
        "on_demand_usd": round(on_demand, 4), "interactive_only_usd": round(interactive_only, 4),
        "tierup_usd": round(tierup_usd, 4),
        "interactive_only_share": round(interactive_only / on_demand, 4) if on_demand else None,
        "tierup_share": round(tierup_usd / on_demand, 4) if on_demand else None,
        "deadline_misses": 0,  # what is left at the margin runs then, within the window
        "reserved_replica_hours": round(capacity_s / 3600, 2),
        "reserved_utilisation_before": round(used_before / capacity_s, 4) if capacity_s else None,
        "reserved_utilisation_after": round((used_before + on_reserved * line_work_s) / capacity_s, 4)
        if capacity_s else None,
    }
