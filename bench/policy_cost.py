"""tierup's traffic policy against the baselines and the hindsight optimum, on real traces.

    .venv/bin/python bench/policy_cost.py [--route chat] [--max-replicas N] [--workers 2]

Replays every ServeGen m-large client (two weeks each, arrivals generated per 10-minute window
with a fixed seed) and both Azure 2023 traces (one hour each) through ``tierup simulate``'s
engine, with the prices, GPU and policy knobs of tierup.toml (route ``chat`` by default: Llama
3.1 8B on Bedrock, an L40S when reserved). Per trace it prints each policy's cost, tierup's ratio
to the hindsight optimum and to the cheaper static policy, and the share served cold; then the
aggregate, checked against the goals:

* tierup's total cost <= 1.10 x the hindsight optimum's;
* <= 1 % of requests served cold;
* on no trace more than 5 % above the cheaper of always-serverless and always-reserved.

Writes bench/results/policy_cost.json. Needs ../shared/data; skips with a message without it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
DATA = ROOT.parent / "shared" / "data"
GOAL_RATIO, GOAL_COLD, GOAL_STATIC = 1.10, 0.01, 1.05


def _route(args):
    from functions.core.config import load_config

    config = load_config(args.config)
    route = config.routes[args.route]
    if args.max_replicas:
        route = route.model_copy(update={"max_replicas": args.max_replicas})
    return config, route


def _compare_one(job: tuple) -> dict:
    """Run in a worker: load one trace, compare the policies, return plain rows."""
    name, args = job
    from tierup.simulate.replay import compare
    from tierup.simulate.report import policy_rows
    from tierup.simulate.traces import load_trace

    config, route = _route(args)
    started = time.perf_counter()
    demand = load_trace(name, args.seed)
    comparison = compare(name, args.route, route, config, demand)
    rows = {row["policy"]: row for row in policy_rows(comparison)}
    return {"trace": name, "rows": rows, "seconds": round(time.perf_counter() - started, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "tierup.toml"))
    parser.add_argument("--route", default="chat")
    parser.add_argument("--max-replicas", type=int, default=None, help="override the route's max-replicas")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--traces", default="all", help="comma-separated trace names, or all")
    parser.add_argument("--out", default=str(RESULTS / "policy_cost.json"))
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent (see the project README: benchmark data)")
        return 0
    import os

    os.environ.setdefault("TIERUP_DATA", str(DATA))
    from tierup.simulate.traces import trace_names

    names = trace_names() if args.traces == "all" else args.traces.split(",")
    config, route = _route(args)
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(_compare_one, [(name, args) for name in names]))
    elapsed = time.perf_counter() - started

    print(f"route {args.route}: serverless {route.serverless}, reserved {route.gpu} "
          f"(max-replicas {route.max_replicas}); policy {config.policy.model_dump(by_alias=True)}\n")
    header = ("| trace | requests | serverless $ | reserved $ | reactive $ | tierup $ | hindsight $ "
              "| tierup/opt | tierup/static | reactive cold | tierup promotions |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    per_trace = []
    for result in results:
        rows = result["rows"]
        cost = {policy: rows[policy]["cost_usd"] for policy in rows}
        static = min(cost["always-serverless"], cost["always-reserved"])
        entry = {
            "trace": result["trace"], "requests": rows["tierup"]["requests"], "cost_usd": cost,
            "tierup_vs_hindsight": cost["tierup"] / cost["hindsight"] if cost["hindsight"] else 1.0,
            "tierup_vs_best_static": cost["tierup"] / static if static else 1.0,
            "tierup_cold_share": rows["tierup"]["cold_share"],
            "reactive_cold_share": rows["reactive"]["cold_share"],
            "tierup_reserved_share": rows["tierup"]["reserved_share"],
            "tierup_promotions": rows["tierup"]["promotions"],
            "hindsight_promotions": rows["hindsight"]["promotions"], "seconds": result["seconds"],
        }
        per_trace.append(entry)
        print(f"| {entry['trace']} | {entry['requests']:,} | {cost['always-serverless']:,.2f} "
              f"| {cost['always-reserved']:,.2f} | {cost['reactive']:,.2f} | {cost['tierup']:,.2f} "
              f"| {cost['hindsight']:,.2f} | {entry['tierup_vs_hindsight']:.3f} "
              f"| {entry['tierup_vs_best_static']:.3f} | {entry['reactive_cold_share']:.2%} "
              f"| {entry['tierup_promotions']} |")

    totals = {policy: sum(e["cost_usd"][policy] for e in per_trace) for policy in per_trace[0]["cost_usd"]}
    requests = sum(e["requests"] for e in per_trace)
    cold = sum(e["tierup_cold_share"] * e["requests"] for e in per_trace) / requests
    reactive_cold = sum(e["reactive_cold_share"] * e["requests"] for e in per_trace) / requests
    ratio = totals["tierup"] / totals["hindsight"]
    worst_static = max(per_trace, key=lambda e: e["tierup_vs_best_static"])
    over_static = [e["trace"] for e in per_trace if e["tierup_vs_best_static"] > GOAL_STATIC]
    goals = {
        f"total <= {GOAL_RATIO} x hindsight": ratio <= GOAL_RATIO,
        f"cold <= {GOAL_COLD:.0%}": cold <= GOAL_COLD,
        f"no trace > {GOAL_STATIC} x best static": not over_static,
    }
    print("\n| policy | total $ | vs hindsight |\n|---|---|---|")
    for policy, total in totals.items():
        print(f"| {policy} | {total:,.2f} | {total / totals['hindsight']:.3f} |")
    print(f"\naggregate: tierup / hindsight = {ratio:.3f}; tierup cold share {cold:.4%} "
          f"(reactive {reactive_cold:.2%}); worst trace vs best static: {worst_static['trace']} "
          f"{worst_static['tierup_vs_best_static']:.3f}; over {GOAL_STATIC}: {over_static or 'none'}")
    for goal, met in goals.items():
        print(f"  {'met   ' if met else 'MISSED'} {goal}")
    print(f"({len(per_trace)} traces, {requests:,} requests, {elapsed:.0f} s on {args.workers} workers)")

    RESULTS.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({
        "route": args.route, "max_replicas": route.max_replicas, "seed": args.seed,
        "policy": config.policy.model_dump(by_alias=True), "traces": per_trace, "totals_usd": totals,
        "tierup_vs_hindsight": ratio, "tierup_cold_share": cold, "reactive_cold_share": reactive_cold,
        "traces_over_static_goal": over_static, "goals": goals, "seconds": round(elapsed, 1),
    }, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
