"""What the gateway adds: latency and throughput through tierup vs. straight to the upstream.

    .venv/bin/python bench/gateway_overhead.py [--rounds 3] [--duration 5] [--concurrency 1 16 64]
        [--modes json stream tools-json tools-stream]
        [--peer-litellm]          also LiteLLM Proxy, same upstream, same CPU, same rounds
        [--profile MODE]          instead: a py-spy profile of the gateway under load (speedscope)

A fast fake OpenAI-compatible upstream (``upstream.py`` of the shared harness in
``../shared/bench/gateway_overhead``) answers every path. For each round and each cell (json or
stream x concurrency), the shared closed-loop load generator (``load.py``) runs straight to the
upstream, then through the gateway (then through LiteLLM), interleaved, so that the machine's
drift hits all alike. The gateway runs as production runs it (``bench/gateway_process.py``:
uvicorn, one worker, uvloop + httptools) on CPU 0; upstream, load generator and moto server
share CPU 1.

The config is the example tierup.toml with the ``chat`` route's start tier pointed at the
upstream (``provider = "openai"``), a benchmark tenant on a plan whose limits are set but out of
reach (the quota stages run, none refuses), and the response cache
off for the route (the load generator repeats one request, so a cache would measure itself, not
the path). Everything else (guards, router, recorders) is what ``build_gateway`` wires.

Modes ``tools-json`` and ``tools-stream`` send the request an agent sends instead (two function
tools and a strict JSON schema: ``tools_schema_mix.py``), to an upstream that answers it with
schema-valid JSON; the added-latency targets hold for it too.

Reported per cell: medians over rounds of requests/s, latency p50/p99 and stream TTFB, the added
latency (gateway - direct), the gateway's CPU time per request (from /proc) and the one-core
capacity it implies (1000 / CPU ms), and the share of CPU 0 the gateway actually got. On a shared
machine the last tells whether rps and latency measured the gateway or the neighbours; CPU per
request is the figure least disturbed by them. Prints markdown tables; writes
bench/results/gateway_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gateway_process import GatewayProcess, gateway_environment, health_ok, toml_text  # noqa: E402

HARNESS = ROOT.parent / "shared" / "bench" / "gateway_overhead"
RESULTS = ROOT / "bench" / "results" / "gateway_overhead.json"
GATEWAY_CPU, LOAD_CPU = 0, 1
ROUTE = "chat"
TENANT, PLAN = "bench", "bench"

#: added latency at concurrency 1 and one-core throughput at concurrency 64 the gateway must meet
TARGETS = {"added_p50_ms_c1": 1.5, "added_p99_ms_c1": 5.0, "json_rps_c64": 1000, "stream_rps_c64": 400,
           "tools_added_p50_ms_c1": 1.5, "tools_added_p99_ms_c1": 5.0}
#: the tools-and-schema request: its load generator and upstream (the shared ones, with that body)
MIX = ROOT / "bench" / "tools_schema_mix.py"
MODES = ["json", "stream", "tools-json", "tools-stream"]


def bench_config(upstream_url: str) -> dict:
    from tests.support import deep_merge, example_config_data

    data = example_config_data()
    data["project"] = "bench" + os.urandom(3).hex()
    start_tier = data["routes"][ROUTE].get("start-tier", "serverless")
    return deep_merge(data, {
        "tiers": {start_tier: {"provider": "openai", "base-url": f"{upstream_url}/v1", "region": None},
                  "overflow": {"enabled": False}},
        "routes": {ROUTE: {"cache": {"exact": False, "semantic": False}}},
        # every plan limit set, none binding: the quota path (leases) is measured as production runs it
        "plans": {PLAN: {"requests-per-minute": 10**9, "tokens-per-minute": 10**12, "tokens-per-day": 10**13,
                         "max-concurrent": 10**6, "max-prompt-tokens": 100_000, "max-output-tokens": 4096}},
        "tenants": {TENANT: {"plan": PLAN}},
    })


def run_load(url: str, key: str, mode: str, concurrency: int, duration: float, warmup: float,
             model: str = ROUTE) -> dict:
    generator = [str(MIX), "load"] if mode.startswith("tools-") else [str(HARNESS / "load.py")]
    command = ["taskset", "-c", str(LOAD_CPU), sys.executable, *generator, "--url", url,
               "--key", key, "--model", model, "--mode", mode.removeprefix("tools-"), "-c", str(concurrency),
               "-d", str(duration), "-w", str(warmup)]
    out = subprocess.run(command, capture_output=True, text=True, check=True,
                         timeout=duration + warmup + 60)
    return json.loads(out.stdout.strip().splitlines()[-1])


@dataclass
class Target:
    """A gateway under test: where to send the load, and how to read its process's CPU time."""

    name: str
    url: str
    key: str
    model: str
    cpu_seconds: Callable[[], float]

    def measure(self, mode: str, concurrency: int, duration: float, warmup: float) -> dict:
        before, started = self.cpu_seconds(), time.perf_counter()
        result = run_load(self.url, self.key, mode, concurrency, duration, warmup, self.model)
        cpu_s, wall_s = self.cpu_seconds() - before, time.perf_counter() - started
        # CPU over warm-up + window, per request answered in the window scaled to both
        total = result["requests"] * (duration + warmup) / duration
        result["cpu_ms_per_request"] = cpu_s * 1000 / max(total, 1)
        # how much of CPU 0 the gateway got: under 100 % while busy means others ran there too
        result["cpu_share_pct"] = 100 * cpu_s / wall_s
        return result


def median(rows: list[dict], *path: str) -> float | None:
    values = []
    for row in rows:
        for key in path:
            row = row.get(key) if isinstance(row, dict) else None
        if row is not None:
            values.append(row)
    return statistics.median(values) if values else None


def target_metrics(name: str, direct: list[dict], runs: list[dict], mode: str) -> dict:
    m = {"rps": median(runs, "rps"), "p50_ms": median(runs, "latency_ms", "p50"),
         "p99_ms": median(runs, "latency_ms", "p99"), "cpu_ms_per_request": median(runs, "cpu_ms_per_request"),
         "cpu_share_pct": median(runs, "cpu_share_pct"), "errors": sum(r["errors"] for r in runs),
         "rps_per_round": [r["rps"] for r in runs]}
    m["added_p50_ms"] = m["p50_ms"] - median(direct, "latency_ms", "p50")
    m["added_p99_ms"] = m["p99_ms"] - median(direct, "latency_ms", "p99")
    # what one core would serve if the gateway had it to itself (the noise-robust figure)
    m["one_core_capacity_rps"] = 1000 / m["cpu_ms_per_request"]
    if mode.endswith("stream"):
        m["added_ttfb_p50_ms"] = median(runs, "ttfb_ms", "p50") - median(direct, "ttfb_ms", "p50")
    return {f"{name}_{k}": v for k, v in m.items()}


def summarise(cells: dict, names: list[str]) -> list[dict]:
    summary = []
    for (mode, conc), runs in cells.items():
        direct = runs["direct"]
        row = {"mode": mode, "concurrency": conc, "direct_rps": median(direct, "rps"),
               "direct_p50_ms": median(direct, "latency_ms", "p50"),
               "direct_p99_ms": median(direct, "latency_ms", "p99"),
               "direct_errors": sum(r["errors"] for r in direct),
               "direct_rps_per_round": [r["rps"] for r in direct],
               "cpu0_busy_pct": median(runs["gateway"], "cpu_busy_pct", "cpu0")}
        for name in names:
            row.update(target_metrics(name, direct, runs[name], mode))
        summary.append(row)
    return summary


def noise(summary: list[dict]) -> float:
    """Largest spread of the gateway's rps across rounds of one cell (max/min): the machine's noise."""
    spreads = [max(r["gateway_rps_per_round"]) / max(min(r["gateway_rps_per_round"]), 1e-9)
               for r in summary if r["gateway_rps_per_round"]]
    return max(spreads) if spreads else 1.0


def verdicts(summary: list[dict]) -> dict:
    cell = {(r["mode"], r["concurrency"]): r for r in summary}
    found = {}
    for mode, prefix in (("json", ""), ("tools-json", "tools_")):
        if (mode, 1) in cell:
            found[f"{prefix}added_p50_ms_c1"] = cell[mode, 1]["gateway_added_p50_ms"]
            found[f"{prefix}added_p99_ms_c1"] = cell[mode, 1]["gateway_added_p99_ms"]
    for mode in ("json", "stream"):
        if (mode, 64) in cell:
            found[f"{mode}_rps_c64"] = cell[mode, 64]["gateway_rps"]
            found[f"{mode}_one_core_capacity_rps_c64"] = cell[mode, 64]["gateway_one_core_capacity_rps"]
    target = lambda name: TARGETS[name.replace("_one_core_capacity", "")]  # noqa: E731
    return {name: {"measured": value, "target": target(name),
                   "met": value <= target(name) if "added" in name else value >= target(name)}
            for name, value in found.items()}


def _f(x) -> str:
    return "-" if x is None else (f"{x:.2f}" if abs(x) < 100 else f"{x:.0f}")


def print_table(summary: list[dict], names: list[str], rounds: int, spread: float) -> None:
    print("| mode | conc | direct rps | gateway rps | direct p50 ms | gateway p50 ms | added p50 ms "
          "| direct p99 ms | gateway p99 ms | added p99 ms | added ttfb p50 ms | gateway CPU ms/req "
          "| one-core capacity rps | gateway share of CPU 0 % | CPU 0 busy % | errors d/g |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in summary:
        print(f"| {r['mode']} | {r['concurrency']} | {_f(r['direct_rps'])} | {_f(r['gateway_rps'])} "
              f"| {_f(r['direct_p50_ms'])} | {_f(r['gateway_p50_ms'])} | {_f(r['gateway_added_p50_ms'])} "
              f"| {_f(r['direct_p99_ms'])} | {_f(r['gateway_p99_ms'])} | {_f(r['gateway_added_p99_ms'])} "
              f"| {_f(r.get('gateway_added_ttfb_p50_ms'))} | {_f(r['gateway_cpu_ms_per_request'])} "
              f"| {_f(r['gateway_one_core_capacity_rps'])} | {_f(r['gateway_cpu_share_pct'])} "
              f"| {_f(r['cpu0_busy_pct'])} | {r['direct_errors']}/{r['gateway_errors']} |")
    print(f"\nMedians over {rounds} interleaved round(s). Gateway rps spread across rounds "
          f"(max/min, worst cell): {spread:.2f}x. Where the gateway's share of CPU 0 is well under "
          "100 % while CPU 0 is busy, other processes took the rest: the rps and latency figures "
          "are then the machine's, and one-core capacity (1000 / gateway CPU ms per request) is the "
          f"gateway's. 1-minute load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs.")
    if len(names) > 1:
        print("\nSide by side (same rounds; gateway = tierup):\n")
        print("| mode | conc | " + " | ".join(f"{n} rps | {n} added p50 ms | {n} added p99 ms | {n} CPU ms/req "
                                              f"| {n} one-core rps" for n in names) + " |")
        print("|---|---:|" + "---:|" * (5 * len(names)))
        for r in summary:
            cells = " | ".join(f"{_f(r[f'{n}_rps'])} | {_f(r[f'{n}_added_p50_ms'])} | {_f(r[f'{n}_added_p99_ms'])} "
                               f"| {_f(r[f'{n}_cpu_ms_per_request'])} | {_f(r[f'{n}_one_core_capacity_rps'])}"
                               for n in names)
            print(f"| {r['mode']} | {r['concurrency']} | {cells} |")


@contextmanager
def bench_stack(tmp: Path, mix: bool = False):
    """Fake upstream and moto server on CPU 1, the gateway on CPU 0: yields (upstream URL, gateway, key).
    With ``mix``, the upstream also answers the tools-and-schema request."""
    from functions.core.config import parse_config
    from functions.gateway.composition import Runtime
    from tierup.local_stack import LOCAL_CREDENTIALS, create_key, free_port, moto_server, prepare_tables

    os.sched_setaffinity(0, {LOAD_CPU})  # moto server (a thread of this process) stays off CPU 0
    os.environ.update(LOCAL_CREDENTIALS)  # boto3 in this process talks to moto server only
    upstream_port = free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    server = [str(MIX), "upstream"] if mix else [str(HARNESS / "upstream.py")]
    upstream = subprocess.Popen(["taskset", "-c", str(LOAD_CPU), sys.executable, *server,
                                 "--port", str(upstream_port)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        while not health_ok(upstream_url):
            if upstream.poll() is not None:
                raise RuntimeError("the fake upstream did not start")
            time.sleep(0.05)
        with moto_server() as endpoint:
            data = bench_config(upstream_url)
            config_path = tmp / "tierup.toml"
            config_path.write_text(toml_text(data))
            env = gateway_environment(config_path, endpoint)
            runtime = Runtime(config=parse_config(data), environ=env)
            prepare_tables(runtime)
            key = create_key(runtime, TENANT, PLAN, label="benchmark")
            with GatewayProcess(env, cpu=GATEWAY_CPU, log_path=tmp / "gateway.log") as gateway:
                yield upstream_url, gateway, key
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)


def profile(gateway: GatewayProcess, key: str, mode: str, seconds: float) -> None:
    """Sample the gateway with py-spy under load at concurrency 16; write a speedscope profile."""
    out = RESULTS.parent / f"gateway_profile_{mode}.speedscope.json"
    spy = subprocess.Popen(["py-spy", "record", "--pid", str(gateway.pid), "--duration", str(int(seconds)),
                            "--rate", "250", "--format", "speedscope", "--output", str(out), "--nonblocking", "--gil"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run_load(f"{gateway.url}/v1", key, mode, 16, seconds, 0.5)
    spy.wait(timeout=60)
    print(f"wrote {out.relative_to(ROOT)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per cell")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--modes", nargs="+", default=["json", "stream"], choices=MODES,
                        help="tools-json / tools-stream: the tools-and-schema request (tools_schema_mix.py)")
    parser.add_argument("--profile", choices=MODES,
                        help="instead of measuring, record a py-spy profile of the gateway under this load")
    parser.add_argument("--peer-litellm", action="store_true",
                        help="also measure LiteLLM Proxy in the same rounds (the shared harness's "
                             "peer_litellm.sh; install it first with its `install` step)")
    args = parser.parse_args()

    if not (HARNESS / "load.py").exists():
        print(f"SKIPPED: the shared gateway-overhead harness is absent ({HARNESS}); it provides the "
              "fake upstream (upstream.py) and the load generator (load.py) this benchmark drives.")
        return 0
    if len(os.sched_getaffinity(0)) < 2:
        print("SKIPPED: needs 2 CPUs (gateway on one, upstream + load generator on the other)")
        return 0
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    mix = any(mode.startswith("tools-") for mode in [*args.modes, args.profile or ""])
    with tempfile.TemporaryDirectory() as tmp, bench_stack(Path(tmp), mix) as (upstream_url, gateway, key):
        if args.profile:
            run_load(f"{gateway.url}/v1", key, args.profile, 16, 2.0, 0.0)
            profile(gateway, key, args.profile, args.duration)
            return 0
        targets = [Target("gateway", f"{gateway.url}/v1", key, ROUTE, gateway.cpu_seconds)]
        if not args.peer_litellm:
            return measure(args, upstream_url, targets, Path(tmp))
        from bench.litellm_peer import LiteLLMPeer

        with LiteLLMPeer(HARNESS, upstream_url, Path(tmp) / "litellm", cpu=GATEWAY_CPU) as peer:
            targets.append(Target("litellm", peer.url, peer.key, peer.model, peer.cpu_seconds))
            return measure(args, upstream_url, targets, Path(tmp))


def measure(args, upstream_url: str, targets: list[Target], tmp: Path) -> int:
    names = [t.name for t in targets]
    cells: dict = {(m, c): {"direct": [], **{n: [] for n in names}} for c in args.concurrency for m in args.modes}
    direct_url = f"{upstream_url}/v1"
    for mode in args.modes:  # pre-warm every path, discarded
        run_load(direct_url, "none", mode, 16, 2.0, 0.0)
        for target in targets:
            run_load(target.url, target.key, mode, 16, 2.0, 0.0, target.model)
    for round_no in range(1, args.rounds + 1):
        for (mode, conc), runs in cells.items():
            runs["direct"].append(run_load(direct_url, "none", mode, conc, args.duration, args.warmup))
            for target in targets:
                runs[target.name].append(target.measure(mode, conc, args.duration, args.warmup))
            print(f"round {round_no} {mode:6} c={conc:<3} direct {runs['direct'][-1]['rps']:8.1f} rps  "
                  + "  ".join(f"{n} {runs[n][-1]['rps']:8.1f} rps" for n in names), file=sys.stderr, flush=True)
    log_tail = (tmp / "gateway.log").read_text(errors="replace")[-2000:]

    summary = summarise(cells, names)
    spread = noise(summary)
    print_table(summary, names, args.rounds, spread)
    checks = verdicts(summary)
    for name, check in checks.items():
        print(f"- {name}: {check['measured']:.2f} (target {check['target']}): "
              f"{'met' if check['met'] else 'NOT met'}")
    RESULTS.write_text(json.dumps({
        "benchmark": "gateway_overhead", "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": {"modes": args.modes, "rounds": args.rounds, "duration_s": args.duration, "warmup_s": args.warmup,
                     "gateway_cpu": GATEWAY_CPU, "load_cpu": LOAD_CPU, "harness": str(HARNESS.name),
                     "targets": names},
        "summary": summary, "targets": checks, "gateway_rps_spread": spread,
        "load_average_1m_at_end": os.getloadavg()[0],
        "raw": [{"mode": m, "concurrency": c, **runs} for (m, c), runs in cells.items()],
        "gateway_log_tail": log_tail,
    }, indent=1))
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
