"""Choose the policy's episode knobs by leave-one-trace-out, never on the trace being scored.

    .venv/bin/python bench/policy_knobs.py [--trust 0.25,0.5,1] [--seeds 0,1] [--workers 2]

For every candidate ``[policy] episode-trust`` and every arrival seed it replays every trace (the
ServeGen m-large clients and the Azure 2023 traces, as ``bench/policy_cost.py`` does) through
tierup's policy and prices the schedule with the simulator's ``price_schedule``. Then, for each
trace in turn, it picks the knob with the lowest cost relative to the hindsight optimum summed
over the *other* traces, and scores the held-out trace with it. It prints, per seed, the
held-out aggregate against hindsight, the reactive autoscaler and the cheaper static policy,
the spread over seeds, and which knob each fold picked (the knob to ship is the one most folds
pick).

Prices schedules directly (not through ``tierup.simulate.replay.compare``) so that a schedule that
raises while earlier replicas warm is priced rather than rejected. Writes
bench/results/policy_knobs.json. Needs ../shared/data; skips with a message without it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
DATA = ROOT.parent / "shared" / "data"
POLICIES = ("always-serverless", "always-reserved", "reactive", "tierup", "hindsight")


def _costs(job: tuple) -> dict:
    """In a worker: every policy's cost on one trace, for one seed and one trust (None = as configured)."""
    name, seed, trust, config_path, route_name = job
    from functions.core.config import load_config
    from functions.core.policy.cost_model import economics_for
    from functions.core.policy.schedule import price_schedule
    from tierup.simulate import baselines
    from tierup.simulate.replay import hold_buckets, run_policy
    from tierup.simulate.traces import load_trace

    config = load_config(config_path)
    if trust is not None:
        config = config.model_copy(update={"policy": config.policy.model_copy(update={"episode_trust": trust})})
    route = config.routes[route_name]
    econ = economics_for(route_name, route, config)
    demand = load_trace(name, seed)
    reserved = baselines.always_reserved(econ, demand)
    schedules = {
        "always-serverless": (baselines.always_serverless(demand), {}),
        "always-reserved": (reserved, {"initial": int(reserved[0]) if len(reserved) else 0}),
        "reactive": (baselines.reactive_threshold(econ, demand), {"switch": "immediately"}),
        "tierup": (run_policy(route_name, route, config, demand).targets, {}),
        "hindsight": (baselines.hindsight(econ, demand, hold_buckets(config)), {}),
    }
    return {"trace": name, "seed": seed, "trust": trust,
            "cost": {policy: price_schedule(econ, demand, targets, **kwargs).total_usd
                     for policy, (targets, kwargs) in schedules.items()}}


def _ratio(rows: list[dict], policy: str, against: str) -> float:
    return sum(row["cost"][policy] for row in rows) / sum(row["cost"][against] for row in rows)


def held_out(results: list[dict], seed: int, trusts: list) -> dict:
    """Leave-one-trace-out for one seed: each trace scored with the knob the others chose."""
    by = {(row["trace"], row["trust"]): row for row in results if row["seed"] == seed}
    traces = sorted({trace for trace, _ in by})
    chosen, scored = {}, []
    for trace in traces:
        others = [name for name in traces if name != trace]
        pick = min(trusts, key=lambda trust: _ratio([by[(name, trust)] for name in others], "tierup", "hindsight"))
        chosen[trace] = pick
        scored.append(by[(trace, pick)])
    static = [min(row["cost"]["always-serverless"], row["cost"]["always-reserved"]) for row in scored]
    return {
        "seed": seed, "picks": dict(Counter(str(pick) for pick in chosen.values())),
        "vs_hindsight": _ratio(scored, "tierup", "hindsight"),
        "vs_reactive": _ratio(scored, "tierup", "reactive"),
        "reactive_vs_hindsight": _ratio(scored, "reactive", "hindsight"),
        "worst_vs_static": max(row["cost"]["tierup"] / s for row, s in zip(scored, static) if s),
        "traces_over_static": [row["trace"] for row, s in zip(scored, static)
                               if s and row["cost"]["tierup"] > 1.05 * s],
        "traces_over_reactive": [row["trace"] for row in scored if row["cost"]["tierup"] > row["cost"]["reactive"]],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "tierup.toml"))
    parser.add_argument("--route", default="chat")
    parser.add_argument("--trust", default="0.25,0.5,1",
                        help="candidate episode-trust values; 'config' = as configured")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--traces", default="all")
    parser.add_argument("--out", default=str(RESULTS / "policy_knobs.json"))
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent (see the project README: benchmark data)")
        return 0
    os.environ.setdefault("TIERUP_DATA", str(DATA))
    from tierup.simulate.traces import trace_names

    names = trace_names() if args.traces == "all" else args.traces.split(",")
    trusts = [None] if args.trust == "config" else [float(value) for value in args.trust.split(",")]
    seeds = [int(seed) for seed in args.seeds.split(",")]
    jobs = [(name, seed, trust, args.config, args.route) for seed in seeds for trust in trusts for name in names]
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(_costs, jobs))
    folds = [held_out(results, seed, trusts) for seed in seeds]
    print("| seed | held-out tierup/hindsight | tierup/reactive | reactive/hindsight | worst trace/static "
          "| traces > 1.05 static | traces > reactive | knobs picked |\n|---|---|---|---|---|---|---|---|")
    for fold in folds:
        print(f"| {fold['seed']} | {fold['vs_hindsight']:.3f} | {fold['vs_reactive']:.3f} "
              f"| {fold['reactive_vs_hindsight']:.3f} | {fold['worst_vs_static']:.3f} "
              f"| {len(fold['traces_over_static'])} | {len(fold['traces_over_reactive'])} | {fold['picks']} |")
    spread = [fold["vs_hindsight"] for fold in folds]
    print(f"\nheld-out tierup/hindsight over seeds: mean {statistics.mean(spread):.3f}, "
          f"min {min(spread):.3f}, max {max(spread):.3f} ({len(names)} traces, {len(jobs)} replays, "
          f"{time.perf_counter() - started:.0f} s)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"folds": folds, "results": results}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
