"""The gateway's cold start: what a new Lambda instance pays before it can answer.

    .venv/bin/python bench/cold_start.py [--runs 7]

1. import time: ``import functions.gateway.asgi`` (which builds the app from tierup.toml) in a
   fresh interpreter, timed inside that interpreter; the median of ``--runs`` runs. Interpreter
   start-up itself (``python -c pass``) is reported alongside, as it is paid either way.
2. ready time: from spawning ``uvicorn functions.gateway.asgi:app`` (as production starts it,
   ``bench/gateway_process.py``) to the first ``GET /health`` 200, which is the readiness check
   Lambda Web Adapter makes before the first request is let in; moto server is the AWS endpoint,
   as under ``tierup dev``.

3. bundle import time, with and without bytecode: the gateway's Lambda bundle is built as
   ``cdk synth`` builds it (for this machine's architecture, into build/cold-start-bundle/), and
   ``import functions.gateway.asgi`` is timed in the runtime's own Python version run from the
   bundle directory alone (``-s -S``: no site-packages), once with the bundle's bytecode and once
   with every ``__pycache__`` removed and bytecode writing off, which is what a read-only
   ``/var/task`` without shipped bytecode costs on every cold start. Side by side, with the ratio.
   Skipped, saying why, where this machine has no Python of the runtime's version.

All use the example tierup.toml. The biggest imports of one run (``-X importtime``) are listed,
to say where the time goes. Prints markdown tables; writes bench/results/cold_start.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gateway_process import GatewayProcess, gateway_environment  # noqa: E402

CONFIG = ROOT / "tierup.toml"
RESULTS = ROOT / "bench" / "results" / "cold_start.json"
BUNDLE_DIR = ROOT / "build" / "cold-start-bundle"
TARGET_IMPORT_MS = 300.0
TIMED_IMPORT = ("import time; t = time.perf_counter(); import functions.gateway.asgi; "
                "print((time.perf_counter() - t) * 1000)")


def fresh_python(code: str, env: dict, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *flags, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=True, timeout=120)


def interpreter_ms(env: dict) -> float:
    started = time.perf_counter()
    fresh_python("pass", env)
    return (time.perf_counter() - started) * 1000


def biggest_imports(env: dict, top: int = 12) -> list[dict]:
    """The modules with the largest cumulative import time in one run (``-X importtime``)."""
    stderr = fresh_python("import functions.gateway.asgi", env, "-X", "importtime").stderr
    rows = []
    for line in stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append({"module": parts[2].strip(), "self_ms": int(parts[0]) / 1000,
                         "cumulative_ms": int(parts[1]) / 1000, "depth": (len(parts[2]) - len(parts[2].lstrip())) // 2})
    top_level = [r for r in rows if r["depth"] <= 2]
    return sorted(top_level, key=lambda r: r["cumulative_ms"], reverse=True)[:top]


def build_bundles() -> tuple[list[str], Path, Path] | str:
    """The bundle's Python, the bundle as deployed and a copy without bytecode; or why not."""
    from functions.core.errors import DeployError
    from infra.bundle_python import find_bundle_python
    from infra.bundling import PYTHON_VERSION, LocalPythonBundler, host_wheel_platforms

    try:
        python = find_bundle_python(PYTHON_VERSION)
    except DeployError as exc:
        return exc.message
    compiled, source_only = BUNDLE_DIR / "compiled", BUNDLE_DIR / "source-only"
    shutil.rmtree(BUNDLE_DIR, ignore_errors=True)
    compiled.mkdir(parents=True)
    LocalPythonBundler(ROOT, CONFIG, python_command=python,
                       wheel_platforms=host_wheel_platforms()).try_bundle(str(compiled))
    shutil.copytree(compiled, source_only, ignore=shutil.ignore_patterns("__pycache__"))
    return python, compiled, source_only


def bundle_import_ms(python: list[str], bundle: Path, env: dict) -> float:
    """``import functions.gateway.asgi`` from ``bundle`` alone, in ``python`` without site."""
    env = {**env, "TIERUP_CONFIG": str(bundle / "tierup.toml"), "PYTHONDONTWRITEBYTECODE": "1"}
    run = subprocess.run([*python, "-s", "-S", "-c", TIMED_IMPORT], cwd=bundle, env=env,
                         capture_output=True, text=True, check=True, timeout=120)
    return float(run.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters per figure")
    args = parser.parse_args()

    from tierup.local_stack import LOCAL_CREDENTIALS, moto_server, prepare_tables

    os.environ.update(LOCAL_CREDENTIALS)
    with moto_server() as endpoint:
        env = gateway_environment(CONFIG, endpoint)
        from functions.core.config import load_config
        from functions.gateway.composition import Runtime

        prepare_tables(Runtime(config=load_config(CONFIG), environ=env))
        # fill the bytecode cache once, as a deployed bundle has it (even where the shell says not to)
        fresh_python(TIMED_IMPORT, {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"})
        bundles = build_bundles()
        imports, interpreters, ready, with_bytecode, without_bytecode = [], [], [], [], []
        for _ in range(args.runs):  # interleaved, so the machine's drift hits every figure alike
            imports.append(float(fresh_python(TIMED_IMPORT, env).stdout.strip().splitlines()[-1]))
            interpreters.append(interpreter_ms(env))
            with GatewayProcess(env, cpu=None) as gateway:
                ready.append(gateway.ready_after_s * 1000)
            if not isinstance(bundles, str):
                python, compiled, source_only = bundles
                with_bytecode.append(bundle_import_ms(python, compiled, env))
                without_bytecode.append(bundle_import_ms(python, source_only, env))
        top = biggest_imports(env)

    figures = {
        "import_ms_median": statistics.median(imports), "import_ms_runs": [round(x, 1) for x in imports],
        "interpreter_start_ms_median": statistics.median(interpreters),
        "ready_ms_median": statistics.median(ready), "ready_ms_runs": [round(x, 1) for x in ready],
    }
    met = figures["import_ms_median"] <= TARGET_IMPORT_MS
    print("| figure | median ms | min ms | max ms |")
    print("|---|---:|---:|---:|")
    for name, runs in (("import functions.gateway.asgi (builds the app)", imports),
                       ("python -c pass (interpreter start-up)", interpreters),
                       ("process start -> first /health 200 (uvicorn)", ready)):
        print(f"| {name} | {statistics.median(runs):.0f} | {min(runs):.0f} | {max(runs):.0f} |")
    print(f"\nimport target <= {TARGET_IMPORT_MS:.0f} ms: {'met' if met else 'NOT met'} "
          f"({args.runs} runs each, interleaved; 1-minute load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs: the spread between min and max is other processes)")
    if isinstance(bundles, str):
        print(f"\nbundle import time skipped: {bundles}")
    else:
        ratio = statistics.median(without_bytecode) / statistics.median(with_bytecode)
        figures.update({
            "bundle_python": bundles[0][0],
            "bundle_import_ms_with_bytecode_median": statistics.median(with_bytecode),
            "bundle_import_ms_with_bytecode_runs": [round(x, 1) for x in with_bytecode],
            "bundle_import_ms_without_bytecode_median": statistics.median(without_bytecode),
            "bundle_import_ms_without_bytecode_runs": [round(x, 1) for x in without_bytecode],
            "bundle_bytecode_speedup": ratio,
        })
        print(f"\nthe Lambda bundle alone, `import functions.gateway.asgi` in {bundles[0][0]} -s -S:\n")
        print("| bundle | median ms | min ms | max ms |")
        print("|---|---:|---:|---:|")
        for name, runs in (("with its bytecode (as deployed)", with_bytecode),
                           ("without bytecode (compiled on every cold start)", without_bytecode)):
            print(f"| {name} | {statistics.median(runs):.0f} | {min(runs):.0f} | {max(runs):.0f} |")
        print(f"\nwithout bytecode / with bytecode: {ratio:.2f}x")
    print("\nbiggest imports (cumulative ms, one run):")
    for row in top:
        print(f"  {row['cumulative_ms']:7.1f}  {row['module']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "benchmark": "cold_start", "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "runs": args.runs, "config": CONFIG.name, "load_average_1m": os.getloadavg()[0], **figures,
        "target_import_ms": TARGET_IMPORT_MS, "import_target_met": met, "biggest_imports": top,
    }, indent=1))
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
