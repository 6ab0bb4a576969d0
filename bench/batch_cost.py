"""What a batch costs on tierup's routing against sending it to on-demand, on days of real traffic.

    .venv/bin/python bench/batch_cost.py [--traces servegen:16,servegen:104,...] [--arrive-h 20]
                                         [--lines 20000] [--prompt 800] [--completion 200] [--route chat]

For each trace, its first ``--arrive-h`` hours and the day after are laid on 10-second buckets
(``tierup simulate``'s loader) and replayed through tierup's policy (``run_policy``: the very
``decide`` the policy Lambda runs, with tierup.toml's prices, GPU figures and knobs) to get the
reserved replicas it holds each bucket. A batch of ``--lines`` chat lines arrives ``--arrive-h``
hours in with a 24-hour window and is routed as the worker routes it (``functions/batch/bedrock_path.py`` and ``routing.py``):

* the route holds reserved replicas when the batch arrives: lines take reserved capacity (already
  paid for: $0 more) only up to ``[batch] reserved-share`` of the replicas' work, interactive load
  included, and wait otherwise; halfway to the deadline margin (``handoff_after_s``) what is left
  goes to one Bedrock batch job when it is at least Bedrock's minimum records, else keeps waiting
  for reserved until ``deadline-margin-s`` before the window ends and then runs on the interactive
  serverless tier at the on-demand price;
* it holds none, the model has a Bedrock batch price and the batch has at least Bedrock's minimum
  records: one Bedrock batch job at the batch price (assumed to finish before the margin; one that
  does not is stopped there and its unanswered lines run on-demand, which this model does not price);
* otherwise (too few lines, or no batch price): on-demand at once, throttled, on a route without
  reserved replicas; on a promoted one, reserved, then on-demand at the margin.

``interactive-only`` prices the same batch with no Bedrock path (the last rule). The route's
replicas are judged at the batch's arrival only: the worker looks again at every chunk, so a
route promoted while the batch drains takes lines on reserved sooner than modelled here.
Reserved capacity is paid for whether or not batch lines use it: the policy's schedule is the same
with and without the batch (it does not see the backlog), so a line served there costs $0 more.
This is a model of capacity and prices, not a load test: interactive latency is measured by
``bench/batch_latency.py``.

Goal: batch lines at <= 55 % of their on-demand cost, 0 deadline misses. Lines lost or billed twice
are checked by the fault tests (tests/functional/test_batch_faults.py), not here.
The Azure traces cover an hour, not a day: the defaults are ServeGen clients, from quiet to busy.
Writes bench/results/batch_cost.json. Needs ../shared/data; skips with a message without it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
DAY_S = 86_400
GOAL_SHARE = 0.55
DEFAULT_TRACES = "servegen:16,servegen:20,servegen:78,servegen:91,servegen:104,servegen:140,servegen:143"


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


def price_trace(name: str, args, config, route, econ) -> dict:
    from functions.core.batch_bedrock import handoff_after_s
    from functions.core.chat import Usage
    from functions.core.pricing import batch_token_cost_usd, token_cost_usd
    from tierup.simulate.replay import run_policy
    from tierup.simulate.traces import load_trace

    buckets = load_trace(name, econ.capacity, days=1 + args.arrive_h / 24)
    arrive = min(len(buckets) - 1, round(args.arrive_h * 3600 / buckets.bucket_s))
    end = min(len(buckets), arrive + round(DAY_S / buckets.bucket_s))
    targets = run_policy(args.route, route, config, buckets).targets[arrive:end]
    work = np.asarray(buckets.work_s[arrive:end], dtype=float)
    line_work_s = float(econ.capacity.work_s(args.prompt, args.completion))
    fallback_bucket = round((DAY_S - config.batch.deadline_margin_s) / buckets.bucket_s)
    served, left = route_batch(targets, work, buckets.bucket_s, line_work_s, args.lines,
                               config.batch.reserved_share, fallback_bucket)

    model = route.serverless
    line = Usage(prompt_tokens=args.prompt, completion_tokens=args.completion)
    on_demand_line = token_cost_usd(config.pricing, "serverless", model, line)
    batch_line = batch_token_cost_usd(config.pricing, model, line)
    on_demand = args.lines * on_demand_line
    promoted_at_arrival = bool(targets[0] > 0)
    # without Bedrock: on a promoted route lines wait for reserved, else they run on-demand at once
    interactive_only = (left if promoted_at_arrival else args.lines) * on_demand_line
    has_batch_price = batch_line is not None
    if not promoted_at_arrival and has_batch_price and args.lines >= config.batch.bedrock_min_records:
        path, on_reserved, bedrock_lines, on_demand_lines = "bedrock-batch", 0, args.lines, 0
    elif not promoted_at_arrival:
        path, on_reserved, bedrock_lines, on_demand_lines = "on-demand", 0, 0, args.lines
    else:
        handoff_bucket = round(handoff_after_s(DAY_S, config.batch.deadline_margin_s) / buckets.bucket_s)
        early, left_at_handoff = route_batch(targets, work, buckets.bucket_s, line_work_s, args.lines,
                                             config.batch.reserved_share, handoff_bucket)
        if has_batch_price and left_at_handoff >= config.batch.bedrock_min_records:
            path, on_reserved, bedrock_lines, on_demand_lines = ("reserved, then bedrock-batch", int(early.sum()),
                                                                 int(left_at_handoff), 0)
        else:
            path, on_reserved, bedrock_lines, on_demand_lines = ("reserved, then on-demand", int(served.sum()), 0,
                                                                 int(left))
    tierup_usd = bedrock_lines * (batch_line or 0.0) + on_demand_lines * on_demand_line
    capacity_s = float(targets.sum()) * buckets.bucket_s
    used_before = float(np.minimum(work, targets * buckets.bucket_s).sum())
    return {
        "trace": name, "trace_hours_after_arrival": round(len(targets) * buckets.bucket_s / 3600, 1),
        "lines": args.lines, "promoted_at_arrival": promoted_at_arrival, "path": path,
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", default=DEFAULT_TRACES, help="comma-separated trace names")
    parser.add_argument("--route", default="chat")
    parser.add_argument("--arrive-h", type=float, default=20.0,
                        help="hours into the trace the batch arrives (the policy starts cold at 0)")
    parser.add_argument("--config", default=str(ROOT / "tierup.toml"))
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--prompt", type=int, default=800, help="prompt tokens per batch line")
    parser.add_argument("--completion", type=int, default=200, help="completion tokens per batch line")
    args = parser.parse_args()

    from functions.core.config import load_config
    from functions.core.policy.cost_model import economics_for
    from tierup.simulate.traces import trace_names

    available = set(trace_names())
    names = [name for name in args.traces.split(",") if name in available]
    if not names:
        print("skipped: none of the traces is in ../shared/data")
        return 0
    config = load_config(args.config)
    route = config.routes[args.route]
    econ = economics_for(args.route, route, config)
    rows = [price_trace(name, args, config, route, econ) for name in names]
    columns = ("trace", "path", "on_reserved", "bedrock_lines", "on_demand_lines", "on_demand_usd", "tierup_usd",
               "tierup_share",
               "interactive_only_share", "deadline_misses", "reserved_utilisation_before", "reserved_utilisation_after")
    print("  ".join(f"{column:>14}" for column in columns))
    for row in rows:
        print("  ".join(f"{str(row[column]):>14}" for column in columns))
    worst = max(row["tierup_share"] for row in rows)
    print(f"goal: batch at <= {GOAL_SHARE:.0%} of on-demand on every trace: "
          f"{'met' if worst <= GOAL_SHARE else 'NOT met'} (worst {worst:.1%}); deadline misses: "
          f"{sum(row['deadline_misses'] for row in rows)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "batch_cost.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
