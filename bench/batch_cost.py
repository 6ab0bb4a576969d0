"""What a batch costs on tierup's routing against sending it to on-demand, on a day of real traffic.

    .venv/bin/python bench/batch_cost.py [--trace servegen:N] [--lines 20000] [--prompt 800]
                                         [--completion 200] [--route chat]

A day (the first 1,440 minutes) of an interactive ServeGen client is replayed through tierup's
policy (``tierup simulate``'s engine, with tierup.toml's prices, GPU and knobs) to get the reserved
replicas it holds each minute. A batch of ``--lines`` chat lines arrives at minute 0 with a 24-hour
window. The batch is then routed minute by minute as the worker routes it
(``functions/batch/routing.py``): lines take reserved capacity only up to ``[batch]
reserved-share`` of the replicas (interactive load included) and wait otherwise; at
``deadline-margin-s`` before the window ends, what is left runs elsewhere:

* ``built``: on the route's interactive serverless tier, at the on-demand price (what the worker
  does today);
* ``with-bedrock-batch``: as one Bedrock batch job at the model's batch price when at least
  Bedrock's minimum records remain (a model of the path ``functions/adapters/bedrock_batch.py``
  implements but the worker does not yet take; it assumes the job finishes within the margin).

Reserved capacity is paid for whether or not batch lines use it (the policy's schedule is the same
with and without the batch: it does not see the backlog yet), so a line served there costs $0 more.
This is a model of capacity and prices, not a load test: interactive latency is not measured here;
batch lines never take the slots above ``reserved-share``, which interactive traffic keeps.

Goal: batch lines at <= 55 % of their on-demand cost, 0 deadline misses. Lines lost or billed twice
are checked by the fault tests (tests/functional/test_batch_faults.py), not here.
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
DAY_MINUTES = 1440
GOAL_SHARE = 0.55


def route_batch(targets: np.ndarray, interactive: np.ndarray, line_load_s: float, lines: int,
                share: float, fallback_minute: int) -> tuple[np.ndarray, int]:
    """Lines served on reserved each minute, and the lines left at ``fallback_minute``."""
    room = np.maximum(0.0, targets * share - interactive) * 60.0  # replica-seconds batch may use
    served = np.zeros(len(targets), dtype=np.int64)
    left = lines
    for minute in range(min(fallback_minute, len(targets))):
        if left <= 0:
            break
        served[minute] = min(left, int(room[minute] // line_load_s))
        left -= served[minute]
    return served, left


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", default=None, help="servegen:N (default: the first client tierup promotes)")
    parser.add_argument("--route", default="chat")
    parser.add_argument("--config", default=str(ROOT / "tierup.toml"))
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--prompt", type=int, default=800, help="prompt tokens per batch line")
    parser.add_argument("--completion", type=int, default=200, help="completion tokens per batch line")
    args = parser.parse_args()

    from functions.adapters.bedrock_batch import DEFAULT_MIN_RECORDS
    from functions.core.chat import Usage
    from functions.core.config import load_config
    from functions.core.policy.cost_model import economics_for
    from functions.core.policy.schedule import MinuteDemand
    from functions.core.pricing import batch_token_cost_usd, token_cost_usd
    from tierup.simulate.replay import run_policy
    from tierup.simulate.traces import load_trace, servegen_chunks

    if not servegen_chunks():
        print("skipped: ../shared/data/servegen is absent")
        return 0
    config = load_config(args.config)
    route = config.routes[args.route]
    econ = economics_for(args.route, route, config)
    candidates = [args.trace] if args.trace else [f"servegen:{chunk}" for chunk in servegen_chunks()]
    for name in candidates:
        full = load_trace(name)
        day = MinuteDemand(full.requests[:DAY_MINUTES], full.prompt_tokens[:DAY_MINUTES],
                           full.completion_tokens[:DAY_MINUTES], full.start_s)
        targets = run_policy(args.route, route, config, day).targets
        if targets.any() or args.trace:
            break
    interactive = np.asarray(day.load(econ), dtype=float)
    line_load_s = econ.load(args.prompt, args.completion)  # replica-seconds one line takes
    fallback_minute = DAY_MINUTES - config.batch.deadline_margin_s // 60
    served, left = route_batch(targets, interactive, line_load_s, args.lines, config.batch.reserved_share,
                               fallback_minute)

    model = route.serverless
    line = Usage(prompt_tokens=args.prompt, completion_tokens=args.completion)
    on_demand_line = token_cost_usd(config.pricing, "serverless", model, line)
    batch_line = batch_token_cost_usd(config.pricing, model, line)
    on_demand = args.lines * on_demand_line
    built = left * on_demand_line
    bedrock_ok = batch_line is not None and left >= DEFAULT_MIN_RECORDS
    with_bedrock = left * (batch_line if bedrock_ok else on_demand_line)
    capacity = float(targets.sum())
    rows = {
        "trace": name, "lines": args.lines, "on_reserved": int(served.sum()), "left_at_margin": int(left),
        "on_demand_usd": round(on_demand, 4), "built_usd": round(built, 4),
        "with_bedrock_batch_usd": round(with_bedrock, 4),
        "built_share": round(built / on_demand, 4) if on_demand else None,
        "with_bedrock_share": round(with_bedrock / on_demand, 4) if on_demand else None,
        "deadline_misses": 0,  # what is left at the margin runs then, within the window
        "reserved_replica_minutes": int(capacity),
        "reserved_utilisation_before": round(float(np.minimum(interactive, targets).sum()) / capacity, 4)
        if capacity else None,
        "reserved_utilisation_after": round(float(np.minimum(interactive, targets).sum()
                                                  + served.sum() * line_load_s / 60.0) / capacity, 4)
        if capacity else None,
    }
    for key, value in rows.items():
        print(f"{key:30} {value}")
    best = min(share for share in (rows["built_share"], rows["with_bedrock_share"]) if share is not None)
    print(f"goal: batch at <= {GOAL_SHARE:.0%} of on-demand: {'met' if best <= GOAL_SHARE else 'NOT met'} "
          f"(built {rows['built_share']:.1%}, with Bedrock batch {rows['with_bedrock_share']:.1%})")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "batch_cost.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
