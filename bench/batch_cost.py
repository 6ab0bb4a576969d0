"""What a batch costs on tierup's routing against sending it to on-demand, on days of real traffic.

    .venv/bin/python bench/batch_cost.py [--traces servegen:16,servegen:104,...] [--arrive-h 20]
                                         [--lines 20000] [--prompt 800] [--completion 200] [--route chat]
                                         [--no-bedrock]

For each trace, its first ``--arrive-h`` hours and the day after are laid on 10-second buckets
(``tierup simulate``'s loader) and replayed through tierup's policy (``run_policy``: the very
``decide`` the policy Lambda runs, with tierup.toml's prices, GPU figures and knobs). A batch of
``--lines`` chat lines arrives ``--arrive-h`` hours in with a 24-hour window and is drained bucket
by bucket as the worker routes it (``tierup/simulate/batch_stream.py``), twice: with the policy
blind to the backlog (the interactive traffic's schedule) and with ``decide`` given the backlog
each run, as the promotion runner gives it the batch store's (``tierup/simulate/batch_replay.py``,
what ``tierup simulate --batch-lines`` prints too). A batch's cost is what it adds to the whole bill:
its Bedrock and on-demand lines plus any replica held for it. This is a model of capacity and
prices, not a load test: interactive latency is measured by ``bench/batch_latency.py``.

Goal: batch lines at <= 55 % of their on-demand cost, 0 deadline misses, every line run exactly
once (reserved + Bedrock + on-demand + missed = lines, checked here for the model; the worker's own
exactly-once is checked by the fault tests, tests/functional/test_batch_faults.py).
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
    from tierup.simulate.batch_replay import ROUTINGS, replay_batch
    from tierup.simulate.batch_stream import BatchStream
    from tierup.simulate.traces import load_trace

    buckets = load_trace(name, econ.capacity, days=1 + args.arrive_h / 24)
    stream = BatchStream(args.lines, args.arrive_h * 3600, DAY_S, args.prompt, args.completion)
    row = {"trace": name, **replay_batch(stream, buckets, args.route, route, config, econ)}
    for routing in ROUTINGS:
        run = row[routing]
        run["lines_unaccounted"] = args.lines - sum(run[key] for key in ("on_reserved", "bedrock_lines",
                                                                         "on_demand_lines", "deadline_misses"))
    return row


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
    parser.add_argument("--no-bedrock", action="store_true",
                        help="no Bedrock batch job (a model without a batch price): reserved and on-demand only")
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
    if args.no_bedrock:  # more lines than any batch holds: never enough for a Bedrock job
        config = config.model_copy(update={"batch": config.batch.model_copy(update={"bedrock_min_records": 10**9})})
    route = config.routes[args.route]
    econ = economics_for(args.route, route, config)
    rows = [price_trace(name, args, config, route, econ) for name in names]
    columns = ("trace", "routing", "path", "on_reserved", "bedrock_lines", "on_demand_lines", "deadline_misses",
               "tierup_usd", "share", "whole_bill_usd", "reserved_utilisation_before", "reserved_utilisation_after")
    print("  ".join(f"{column:>14}" for column in columns))
    for row in rows:
        print("  ".join(f"{row['trace']:>14}" if column == "trace" else f"{'all on-demand':>14}"
                        if column == "routing" else f"{'':>14}" for column in columns[:2])
              + f"  on_demand_usd {row['on_demand_usd']}  whole bill {row['all_on_demand_bill_usd']}  "
                f"(no Bedrock path: {row['interactive_only_usd']})")
        for routing in ("blind", "sees_backlog"):
            run = {**row[routing], "trace": "", "routing": routing}
            print("  ".join(f"{str(run[column]):>14}" for column in columns))
    worst = max(row["sees_backlog"]["share"] for row in rows)
    misses = sum(row["sees_backlog"]["deadline_misses"] for row in rows)
    unaccounted = sum(abs(row[routing]["lines_unaccounted"]) for row in rows for routing in ("blind", "sees_backlog"))
    print(f"goal: batch at <= {GOAL_SHARE:.0%} of on-demand on every trace: "
          f"{'met' if worst <= GOAL_SHARE else 'NOT met'} (worst {worst:.1%}); deadline misses: {misses}; "
          f"lines lost or run twice: {unaccounted}")
    blind = sum(row["blind"]["tierup_usd"] for row in rows)
    sees = sum(row["sees_backlog"]["tierup_usd"] for row in rows)
    on_demand = sum(row["on_demand_usd"] for row in rows)
    print(f"all traces: batch on-demand {on_demand:.2f} USD; tierup blind to the backlog {blind:.2f} "
          f"({blind / on_demand:.1%}); seeing it {sees:.2f} ({sees / on_demand:.1%})")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / ("batch_cost_no_bedrock.json" if args.no_bedrock else "batch_cost.json")).write_text(
        json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
