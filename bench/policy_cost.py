"""tierup's traffic policy against the baselines and the hindsight optimum, on real traces, under
the simulator's full rules, over several arrival seeds.

    .venv/bin/python bench/policy_cost.py --quick   # 12 ServeGen clients x 3 days + both Azure traces, 2 seeds
    .venv/bin/python bench/policy_cost.py           # all 30 clients x 14 days + Azure, 3 seeds (~25 min, 2 cores)
    .venv/bin/python bench/policy_cost.py --quick --tune min-hold-s=300,600,900   # leave-one-client-out

Replays ServeGen m-large clients (arrivals generated per 10-minute window from each seed) and both
Azure 2023 traces through ``tierup simulate``'s engine with the prices, GPU and policy knobs of
tierup.toml (route ``chat``: Llama 3.1 8B on Bedrock, an L40S when reserved). Every policy is
priced under the same rules and starts cold; its whole bill adds the gateway's own AWS bill on the
configured host (``tierup/simulate/report.py``, ``GatewayBill``). It reports, with the spread across seeds:

* tierup's total against the hindsight optimum (goal <= 1.05);
* tierup against the reactive autoscaler per trace set (Azure conv, Azure code, and the ServeGen
  clients in volume terciles; goal: never above it);
* tierup against the cheaper static policy per trace (goal: none above 1.05);
* the share of requests served cold (goal <= 1 %) and throttled by the serverless quota;
* what each simulator rule moved each policy's cost (seed 0): from the old rules with one rule
  switched on, and from the full rules with one switched off. ``calibrated_throughput`` swaps the
  GPU figures tierup.toml had before the published calibration (``OLD_GPU_FIGURES``).

Knobs: the bench changes none by default (tierup.toml's values are priced as they are). ``--tune
KEY=V1,V2,...`` chooses a ``[policy]`` knob by leave-one-client-out, separately for each arrival
seed: for each trace, the value with the lowest total tierup cost over the *other* traces, scored
on the held-out one. It prints per seed the held-out total against hindsight and the reactive
autoscaler, the traces it leaves above the cheaper static policy, the totals per value and which
values the folds picked; the spread over seeds; ship the value most folds pick.

Writes bench/results/policy_cost.json. Needs ../shared/data; skips with a message without it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
DATA = ROOT.parent / "shared" / "data"
GOAL_RATIO, GOAL_COLD, GOAL_STATIC = 1.05, 0.01, 1.05
QUICK_CLIENTS = ("123", "157", "88", "32", "37", "56", "66", "139", "41", "91", "78", "143")
#: the GPU figures tierup.toml quoted before the published calibration (gpu_capacity.py)
OLD_GPU_FIGURES = {"L4": (8000, 900, 32), "L40S": (20000, 2500, 64), "H100": (50000, 6000, 128)}
POLICIES = ("always-serverless", "always-reserved", "reactive", "tierup", "hindsight")


def _config(args, overrides: dict | None = None, old_gpus: bool = False):
    from functions.core.config import load_config

    config = load_config(args.config)
    if overrides:
        config = config.model_copy(update={"policy": config.policy.model_copy(update=overrides)})
    route = config.routes[args.route]
    if args.max_replicas:
        route = route.model_copy(update={"max_replicas": args.max_replicas})
    if old_gpus and route.gpu in OLD_GPU_FIGURES:
        prefill, decode, concurrent = OLD_GPU_FIGURES[route.gpu]
        gpu = config.pricing.gpus[route.gpu].model_copy(update={
            "prefill_tokens_per_s": prefill, "decode_tokens_per_s": decode, "max_concurrent_requests": concurrent})
        pricing = config.pricing.model_copy(update={"gpus": {**config.pricing.gpus, route.gpu: gpu}})
        config = config.model_copy(update={"pricing": pricing})
    return config, route


def _costs(comparison) -> dict:
    return {policy: outcome.cost_usd for policy, outcome in comparison.outcomes.items()}


def _job(job: tuple) -> dict:
    """In a worker: one trace and seed; every policy under the full rules, the rule toggles (seed 0)
    and the tuning grid's tierup costs."""
    name, seed, args = job
    from functions.core.policy.cost_model import economics_for
    from tierup.simulate.engine import RULE_NAMES, Rules
    from tierup.simulate.replay import compare, run_policy
    from tierup.simulate.report import GatewayBill
    from tierup.simulate.traces import load_trace

    started = time.perf_counter()
    config, route = _config(args)
    econ = economics_for(args.route, route, config)
    buckets = load_trace(name, econ.capacity, seed, days=args.days)
    full_rules = Rules(throttle=args.throttle)
    run = run_policy(args.route, route, config, buckets)
    comparison = compare(name, args.route, route, config, buckets, full_rules, run)
    gateway = GatewayBill.for_trace(buckets, config)  # the gateway's own bill, on the configured host
    refused = args.throttle == "fail"
    outcomes = {policy: {"cost_usd": o.cost_usd, "gpu_usd": o.gpu_usd, "requests": o.requests,
                         "gateway_usd": gateway.usd(o.requests, o.throttled_requests if refused else 0.0),
                         "cold": o.cold_requests, "throttled": o.throttled_requests,
                         "reserved": o.reserved_requests, "promotions": o.promotions}
                for policy, o in comparison.outcomes.items()}
    result = {"trace": name, "seed": seed, "outcomes": outcomes}
    if seed == args.seeds[0] and not args.no_toggles:
        # the old simulator: old rules and the GPU figures tierup.toml quoted before calibration
        old = Rules.old()
        old_config, old_route = _config(args, old_gpus=True)
        old_buckets = load_trace(name, economics_for(args.route, old_route, old_config).capacity, seed, days=args.days)
        old_run = run_policy(args.route, old_route, old_config, old_buckets)

        def old_with(rules):
            return _costs(compare(name, args.route, old_route, old_config, old_buckets, rules, old_run))

        toggles = {"old rules": old_with(old), "full rules": _costs(comparison),
                   "+calibrated_throughput": _costs(compare(name, args.route, route, config, buckets, old, run)),
                   "-calibrated_throughput": old_with(full_rules)}
        for rule in RULE_NAMES:
            toggles[f"+{rule}"] = old_with(replace(old, **{rule: True}))
            toggles[f"-{rule}"] = _costs(compare(name, args.route, route, config, buckets,
                                                 replace(full_rules, **{rule: False}), run))
        result["toggles"] = toggles
    if args.tune:
        key, values = args.tune
        tuned = {}
        for value in values:
            tuned_config, tuned_route = _config(args, {key: value})
            tuned_run = run_policy(args.route, tuned_route, tuned_config, buckets)
            tuned[str(value)] = compare(name, args.route, tuned_route, tuned_config, buckets, full_rules,
                                        tuned_run).outcomes["tierup"].cost_usd
        result["tuned_tierup_usd"] = tuned
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _trace_sets(names: list[str], volume: dict[str, float]) -> dict[str, str]:
    """Azure traces are a set each; ServeGen clients fall in volume terciles."""
    sets = {name: name for name in names if not name.startswith("servegen:")}
    clients = sorted((n for n in names if n.startswith("servegen:")), key=lambda n: volume[n])
    for index, name in enumerate(clients):
        sets[name] = ("servegen-low", "servegen-mid", "servegen-high")[min(2, 3 * index // max(1, len(clients)))]
    return sets


def _spread(values: list[float]) -> str:
    mean = sum(values) / len(values)
    return f"{mean:.3f} [{min(values):.3f}-{max(values):.3f}]" if len(values) > 1 else f"{mean:.3f}"


def _leave_one_client_out(results: list[dict], key: str, sets: dict[str, str]) -> dict:
    """Per seed, for each trace: the knob value with the lowest total tierup cost on the *other*
    traces of that seed, scored on it. Reports the held-out totals per seed (against hindsight and
    the reactive autoscaler, with the spread over seeds), the traces the held-out choice leaves
    above the cheaper static policy, and how often each value was chosen (ship the usual pick)."""
    seeds = sorted({r["seed"] for r in results})
    values = list(results[0]["tuned_tierup_usd"])
    folds, picks = [], Counter()
    for seed in seeds:
        rows = {r["trace"]: r for r in results if r["seed"] == seed}
        chosen, held_out = {}, {}
        for trace in rows:
            others = {v: sum(r["tuned_tierup_usd"][v] for t, r in rows.items() if t != trace) for v in values}
            chosen[trace] = min(others, key=others.get)
            held_out[trace] = rows[trace]["tuned_tierup_usd"][chosen[trace]]
            picks[chosen[trace]] += 1

        def total(policy, only=None):
            return sum(r["outcomes"][policy]["cost_usd"] for t, r in rows.items() if only in (None, sets[t]))

        static = {t: min(r["outcomes"]["always-serverless"]["cost_usd"], r["outcomes"]["always-reserved"]["cost_usd"])
                  for t, r in rows.items()}
        folds.append({
            "seed": seed, "chosen": chosen, "held_out_usd": held_out,
            "vs_hindsight": sum(held_out.values()) / total("hindsight"),
            "vs_reactive_by_set": {name: sum(u for t, u in held_out.items() if sets[t] == name)
                                   / max(total("reactive", name), 1e-12) for name in sorted(set(sets.values()))},
            "traces_over_static": sorted(t for t, u in held_out.items() if static[t] and u > GOAL_STATIC * static[t]),
            "total_by_value_usd": {v: sum(r["tuned_tierup_usd"][v] for r in rows.values()) for v in values},
        })
    return {"key": key, "values": values, "folds": folds, "picks": dict(picks),
            "held_out_vs_hindsight": [f["vs_hindsight"] for f in folds]}


def _print_tuning(tuning: dict) -> None:
    print(f"\nleave-one-client-out over {tuning['key']} = {tuning['values']} (per seed: each trace scored "
          f"with the value the other traces chose)\n")
    print("| seed | held-out tierup/hindsight | worst set tierup/reactive | traces > static | total $ by value "
          "| picks |\n|---|---|---|---|---|---|")
    for fold in tuning["folds"]:
        worst = max(fold["vs_reactive_by_set"].items(), key=lambda item: item[1])
        totals = ", ".join(f"{v}: {usd:,.2f}" for v, usd in fold["total_by_value_usd"].items())
        print(f"| {fold['seed']} | {fold['vs_hindsight']:.3f} | {worst[0]} {worst[1]:.3f} "
              f"| {len(fold['traces_over_static'])} | {totals} | {dict(Counter(fold['chosen'].values()))} |")
    print(f"\nheld-out tierup/hindsight over seeds: {_spread(tuning['held_out_vs_hindsight'])}; "
          f"picks over all folds: {tuning['picks']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "tierup.toml"))
    parser.add_argument("--route", default="chat")
    parser.add_argument("--max-replicas", type=int, default=None, help="override the route's max-replicas")
    parser.add_argument("--quick", action="store_true", help="12 clients x 3 days, 2 seeds")
    parser.add_argument("--seeds", default=None, help="comma-separated arrival seeds (default 0,1,2; quick 0,1)")
    parser.add_argument("--days", type=float, default=None, help="ServeGen days replayed (default 14; quick 3)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--traces", default=None, help="comma-separated trace names (default: all, or quick's)")
    parser.add_argument("--throttle", choices=("delay", "fail"), default="delay")
    parser.add_argument("--no-toggles", action="store_true", help="skip the rule-by-rule table")
    parser.add_argument("--tune", default=None, help="KEY=V1,V2,... a [policy] knob chosen leave-one-client-out")
    parser.add_argument("--out", default=str(RESULTS / "policy_cost.json"))
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent (see the project README: benchmark data)")
        return 0
    os.environ.setdefault("TIERUP_DATA", str(DATA))
    from tierup.simulate.traces import AZURE_FILES, trace_names

    args.seeds = [int(s) for s in (args.seeds or ("0,1" if args.quick else "0,1,2")).split(",")]
    args.days = args.days if args.days is not None else (3.0 if args.quick else None)
    if args.tune:
        key, _, values = args.tune.partition("=")
        args.tune = (key.replace("-", "_"), [float(v) if "." in v else int(v) for v in values.split(",")])
    if args.traces:
        names = args.traces.split(",")
    elif args.quick:
        names = [n for n in trace_names() if n in AZURE_FILES] + [f"servegen:{c}" for c in QUICK_CLIENTS]
    else:
        names = trace_names()
    started = time.perf_counter()
    jobs = [(name, seed, args) for seed in args.seeds for name in names]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        results = list(pool.map(_job, jobs))
    elapsed = time.perf_counter() - started
    report = summarise(results, names, args)
    report["seconds"] = round(elapsed, 1)
    print(f"({len(names)} traces x {len(args.seeds)} seeds, {elapsed:.0f} s on {args.workers} workers)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {args.out}")
    return 0


def summarise(results: list[dict], names: list[str], args) -> dict:
    config, route = _config(args)
    by_seed = {seed: [r for r in results if r["seed"] == seed] for seed in args.seeds}
    volume = {r["trace"]: r["outcomes"]["tierup"]["requests"] for r in by_seed[args.seeds[0]]}
    sets = _trace_sets(names, volume)
    print(f"route {args.route}: serverless {route.serverless}, reserved {route.gpu} (max-replicas "
          f"{route.max_replicas}); seeds {args.seeds}; ServeGen days {args.days or 14}; throttled requests "
          f"{'wait a minute' if args.throttle == 'delay' else 'fail'}\n")

    print("| trace | requests | serverless $ | reserved $ | reactive $ | tierup $ | hindsight $ | tierup/opt "
          "| tierup/static | tierup promos |\n|---|---|---|---|---|---|---|---|---|---|")
    per_trace = []
    for name in names:
        rows = [r for r in results if r["trace"] == name]
        cost = {p: sum(r["outcomes"][p]["cost_usd"] for r in rows) / len(rows) for p in POLICIES}
        static = [min(r["outcomes"]["always-serverless"]["cost_usd"], r["outcomes"]["always-reserved"]["cost_usd"])
                  for r in rows]
        vs_static = [r["outcomes"]["tierup"]["cost_usd"] / s if s else 1.0 for r, s in zip(rows, static)]
        vs_opt = [r["outcomes"]["tierup"]["cost_usd"] / r["outcomes"]["hindsight"]["cost_usd"]
                  if r["outcomes"]["hindsight"]["cost_usd"] else 1.0 for r in rows]
        entry = {"trace": name, "set": sets[name], "requests": rows[0]["outcomes"]["tierup"]["requests"],
                 "mean_cost_usd": cost, "tierup_vs_hindsight": vs_opt, "tierup_vs_static": vs_static,
                 "tierup_promotions": [r["outcomes"]["tierup"]["promotions"] for r in rows]}
        per_trace.append(entry)
        print(f"| {name} | {entry['requests']:,.0f} | {cost['always-serverless']:,.2f} "
              f"| {cost['always-reserved']:,.2f} | {cost['reactive']:,.2f} | {cost['tierup']:,.2f} "
              f"| {cost['hindsight']:,.2f} | {_spread(vs_opt)} "
              f"| {_spread(vs_static)} | {entry['tierup_promotions']} |")

    def seed_total(seed, policy, key="cost_usd", only=None):
        return sum(r["outcomes"][policy][key] for r in by_seed[seed] if only is None or sets[r["trace"]] == only)

    aggregate = {p: [seed_total(s, p) for s in args.seeds] for p in POLICIES}
    ratio = [seed_total(s, "tierup") / seed_total(s, "hindsight") for s in args.seeds]
    print("\n| policy | total $ (mean over seeds) | vs hindsight [min-max over seeds] | cold | throttled "
          "| gateway $ | whole bill $ |")
    print("|---|---|---|---|---|---|---|")
    shares, whole = {}, {}
    for policy in POLICIES:
        requests = [seed_total(s, policy, "requests") for s in args.seeds]
        cold = [seed_total(s, policy, "cold") / q for s, q in zip(args.seeds, requests)]
        throttled = [seed_total(s, policy, "throttled") / q for s, q in zip(args.seeds, requests)]
        shares[policy] = {"cold": cold, "throttled": throttled}
        vs = [seed_total(s, policy) / seed_total(s, "hindsight") for s in args.seeds]
        gateway = sum(seed_total(s, policy, "gateway_usd") for s in args.seeds) / len(args.seeds)
        whole[policy] = sum(aggregate[policy]) / len(args.seeds) + gateway
        print(f"| {policy} | {sum(aggregate[policy]) / len(args.seeds):,.2f} | {_spread(vs)} "
              f"| {max(cold):.3%} | {_spread([100 * t for t in throttled])} % | {gateway:,.2f} "
              f"| {whole[policy]:,.2f} |")

    print("\n| trace set | traces | tierup / reactive [seeds] | tierup / hindsight [seeds] |\n|---|---|---|---|")
    by_set = {}
    for name in sorted(set(sets.values())):
        vs_reactive = [seed_total(s, "tierup", only=name) / max(seed_total(s, "reactive", only=name), 1e-12)
                       for s in args.seeds]
        vs_opt = [seed_total(s, "tierup", only=name) / max(seed_total(s, "hindsight", only=name), 1e-12)
                  for s in args.seeds]
        by_set[name] = {"tierup_vs_reactive": vs_reactive, "tierup_vs_hindsight": vs_opt}
        count = sum(1 for v in sets.values() if v == name)
        print(f"| {name} | {count} | {_spread(vs_reactive)} | {_spread(vs_opt)} |")

    over_static = sorted({e["trace"] for e in per_trace if max(e["tierup_vs_static"]) > GOAL_STATIC})
    worst = max(per_trace, key=lambda e: max(e["tierup_vs_static"]))
    goals = {
        f"tierup <= {GOAL_RATIO} x hindsight (every seed)": max(ratio) <= GOAL_RATIO,
        "tierup <= reactive on every trace set (every seed)": all(max(v["tierup_vs_reactive"]) <= 1.0
                                                                   for v in by_set.values()),
        f"no trace > {GOAL_STATIC} x the cheaper static policy": not over_static,
        f"cold <= {GOAL_COLD:.0%}": max(shares["tierup"]["cold"]) <= GOAL_COLD,
    }
    print(f"\naggregate tierup / hindsight: {_spread(ratio)}; worst trace vs cheaper static: {worst['trace']} "
          f"{max(worst['tierup_vs_static']):.3f}; traces over {GOAL_STATIC}: {over_static or 'none'}")
    for goal, met in goals.items():
        print(f"  {'met   ' if met else 'MISSED'} {goal}")

    toggles = _toggle_table([r for r in by_seed[args.seeds[0]] if "toggles" in r])
    tuning = _leave_one_client_out(results, args.tune[0], sets) if args.tune else None
    if tuning:
        _print_tuning(tuning)
    return {"route": args.route, "seeds": args.seeds, "days": args.days, "throttle": args.throttle,
            "policy": config.policy.model_dump(by_alias=True), "traces": per_trace, "aggregate_usd": aggregate,
            "tierup_vs_hindsight": ratio, "shares": shares, "whole_bill_usd": whole, "by_set": by_set,
            "traces_over_static": over_static,
            "goals": goals, "rule_toggles": toggles, "tuning": tuning}


def _toggle_table(rows: list[dict]) -> dict:
    """Total cost per policy under each rule set, and the change each rule made (seed 0)."""
    if not rows:
        return {}
    from tierup.simulate.engine import RULE_NAMES

    totals = {label: {p: sum(r["toggles"][label][p] for r in rows) for p in POLICIES} for label in rows[0]["toggles"]}
    print("\nWhat each simulator rule moved (seed 0, total $ change): '+rule' = old rules with it on, "
          "'-rule' = full rules with it off\n")
    print("| rule | " + " | ".join(POLICIES) + " |\n|---|" + "---|" * len(POLICIES))
    for label in ("old rules", "full rules"):
        print(f"| {label} ($) | " + " | ".join(f"{totals[label][p]:,.2f}" for p in POLICIES) + " |")
    for rule in (*RULE_NAMES, "calibrated_throughput"):
        for sign, base in (("+", "old rules"), ("-", "full rules")):
            label = f"{sign}{rule}"
            cells = [f"{(totals[label][p] / totals[base][p] - 1) * 100:+.1f} %" if totals[base][p] else "-"
                     for p in POLICIES]
            print(f"| {label} | " + " | ".join(cells) + " |")
    return totals


if __name__ == "__main__":
    raise SystemExit(main())
