"""What a batch costs on tierup's routing against sending it to on-demand, on days of real traffic.

    .venv/bin/python bench/batch_cost.py [--traces servegen:16,servegen:104,...] [--arrive-h 20]
                                         [--lines 20000] [--prompt 800] [--completion 200] [--route chat]

For each trace, its first ``--arrive-h`` hours and the day after are laid on 10-second buckets
(``tierup simulate``'s loader) and replayed through tierup's policy (``run_policy``: the very
``decide`` the policy Lambda runs, with tierup.toml's prices, GPU figures and knobs) to get the
reserved replicas it holds each bucket. A batch of ``--lines`` chat lines arrives ``--arrive-h``
hours in with a 24-hour window and is routed as the worker routes it: the model and its rules are
``tierup/simulate/batch_stream.py``'s, which ``tierup simulate --batch-lines`` prints too.
The policy's schedule here is the interactive traffic's (the replay passes it no backlog), so a
line served on reserved costs $0 more. This is a model of capacity and prices, not a load test:
interactive latency is measured by ``bench/batch_latency.py``.

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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
DAY_S = 86_400
GOAL_SHARE = 0.55
DEFAULT_TRACES = "servegen:16,servegen:20,servegen:78,servegen:91,servegen:104,servegen:140,servegen:143"


def price_trace(name: str, args, config, route, econ) -> dict:
    from tierup.simulate.batch_stream import BatchStream, price_batch
    from tierup.simulate.replay import run_policy
    from tierup.simulate.traces import load_trace

    buckets = load_trace(name, econ.capacity, days=1 + args.arrive_h / 24)
    targets = run_policy(args.route, route, config, buckets).targets
    stream = BatchStream(args.lines, args.arrive_h * 3600, DAY_S, args.prompt, args.completion)
    return {"trace": name, **price_batch(stream, targets, buckets, config, route, econ)}


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
