"""Interactive latency with and without a batch being drained on the same route, side by side.

    .venv/bin/python bench/batch_latency.py [--rounds 2] [--duration 10] [--rate 10] [--lines 600]
                                            [--worker in-process|process]

One process runs the real gateway (``build_gateway``, uvicorn on loopback) against a moto server
and the simulated provider, with the batch worker inside it (``--worker in-process``, as ``tierup
dev`` runs it), or in a process of its own (``--worker process``: ``functions.batch.queue_poller``,
as on AWS, where the worker is a function of its own and shares only the tables and the provider). Interactive chat requests (the official openai SDK, distinct prompts,
the route's cache off so every request reaches the provider) arrive at a fixed rate, open loop,
for ``--duration`` seconds. Each round runs that load twice, interleaved: alone, then while a
batch of ``--lines`` chat lines for the same route is being drained (created just before the
load starts; the lines still waiting when it ends are cancelled). ``--rounds`` rounds give each
side at least two runs, so the spread between runs of one side is the noise to read the
difference against.

What is shared, and so what batch load can disturb: the gateway's event loop and CPU (in-process),
the one moto server (which answers one call at a time, like a slow DynamoDB) and the provider. What is
not modelled: a provider or GPU whose capacity the batch lines would take (on a promoted route
they take only ``[batch] reserved-share`` of the reserved slots; ``functions/batch/routing.py``).

Reports per run interactive p50 / p99 (ms), the batch lines answered meanwhile, and the ratio of
the "with batch" medians to the "alone" medians. Writes bench/results/batch_latency_<worker>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
TENANT = "bench"
#: simulated provider: about 0.2 s a request (first token after 100 ms, 16 tokens at 200/s)
SIMULATED = {"ttft-ms": 100, "tokens-per-s": 200}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def interactive_load(client, rate: float, duration: float, tag: str) -> list[float]:
    """Open loop: one request every 1/rate s whatever the answers; latencies in ms (errors raise)."""
    latencies: list[float] = []

    async def one(n: int) -> None:
        started = time.perf_counter()
        await client.chat.completions.create(model="chat", max_tokens=16,
                                             messages=[{"role": "user", "content": f"{tag} question {n}"}])
        latencies.append((time.perf_counter() - started) * 1000)

    tasks = []
    start = time.perf_counter()
    for n in range(int(rate * duration)):
        await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    return latencies


def start_worker(runtime):
    """The batch worker in a process of its own, on the same tables, bucket and queue."""
    import subprocess
    import tempfile

    from tierup.local_stack import LOCAL_CREDENTIALS

    config_file = Path(tempfile.mkdtemp()) / "config.json"
    config_file.write_text(json.dumps(runtime.config.model_dump(by_alias=True, mode="json")))
    env = {**os.environ, **LOCAL_CREDENTIALS, **runtime.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "functions.batch.queue_poller", str(config_file)], env=env,
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def batch_file(lines: int, tag: str) -> bytes:
    rows = [{"custom_id": f"{tag}-{n}", "method": "POST", "url": "/v1/chat/completions",
             "body": {"model": "chat", "max_tokens": 16, "messages": [{"role": "user", "content": f"{tag} line {n}"}]}}
            for n in range(lines)]
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


async def run(args) -> dict:
    from openai import AsyncOpenAI, OpenAI

    from functions.batch.wiring import batch_store
    from functions.gateway.composition import Runtime, build_gateway
    from tests.support import make_config
    from tierup.local_stack import LOCAL_CREDENTIALS, GatewayServer, create_key, moto_server, prepare_tables

    os.environ.update(LOCAL_CREDENTIALS)
    overrides = {"simulated": SIMULATED, "routes": {"chat": {"cache": {"exact": False, "semantic": False}}}}
    runs = []
    with moto_server() as endpoint:
        in_process = {"TIERUP_BATCH_WORKER": "in-process"} if args.worker == "in-process" else {}
        runtime = Runtime(config=make_config(overrides, fast=False), environ={
            **os.environ, "TIERUP_AWS_ENDPOINT": endpoint, "TIERUP_PROVIDER": "simulated", **in_process})
        prepare_tables(runtime)
        worker = start_worker(runtime) if args.worker == "process" else None
        key = create_key(runtime, TENANT, "pro", label="benchmark")
        store = batch_store(runtime)  # to count the lines answered (the API counts finished chunks)
        with GatewayServer(build_gateway(runtime)) as server:
            sync = OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
            client = AsyncOpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=30)
            await interactive_load(client, args.rate, 2.0, "warm-up")
            for round_ in range(args.rounds):
                for side in ("alone", "with batch"):
                    tag = f"r{round_}-{side.replace(' ', '')}"
                    batch = None
                    if side == "with batch":
                        uploaded = sync.files.create(file=("in.jsonl", batch_file(args.lines, tag)), purpose="batch")
                        batch = sync.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                                    completion_window="24h")
                        await asyncio.sleep(1.0)  # the worker has taken the first chunks
                        before = len(store.lines(batch.id))
                    latencies = await interactive_load(client, args.rate, args.duration, tag)
                    drained = None
                    if batch is not None:
                        drained = len(store.lines(batch.id)) - before
                        sync.batches.cancel(batch.id)
                        await asyncio.sleep(2.0)  # the worker notices and stops before the next run
                    row = {"round": round_, "side": side, "requests": len(latencies),
                           "p50_ms": round(percentile(latencies, 0.50), 1),
                           "p99_ms": round(percentile(latencies, 0.99), 1), "batch_lines_during": drained}
                    runs.append(row)
                    print(f"round {round_}  {side:10}  n={row['requests']:4}  p50 {row['p50_ms']:7.1f} ms  "
                          f"p99 {row['p99_ms']:7.1f} ms  batch lines answered meanwhile: {drained}", flush=True)
            await client.close()
        if worker is not None:
            worker.kill()
            worker.wait(timeout=10)
    summary = {}
    for side in ("alone", "with batch"):
        mine = [row for row in runs if row["side"] == side]
        summary[side] = {"p50_ms": statistics.median(r["p50_ms"] for r in mine),
                         "p99_ms": statistics.median(r["p99_ms"] for r in mine),
                         "p50_range_ms": [min(r["p50_ms"] for r in mine), max(r["p50_ms"] for r in mine)],
                         "p99_range_ms": [min(r["p99_ms"] for r in mine), max(r["p99_ms"] for r in mine)]}
    ratio = {name: round(summary["with batch"][name] / summary["alone"][name], 3) for name in ("p50_ms", "p99_ms")}
    return {"worker": args.worker, "rate_rps": args.rate, "duration_s": args.duration, "lines": args.lines, "runs": runs,
            "summary": summary, "ratio_with_to_alone": ratio}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=10.0, help="interactive requests per second")
    parser.add_argument("--lines", type=int, default=600)
    parser.add_argument("--worker", choices=("in-process", "process"), default="in-process")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    for side, figures in result["summary"].items():
        print(f"{side:10}  median p50 {figures['p50_ms']:.1f} ms (runs {figures['p50_range_ms']})  "
              f"median p99 {figures['p99_ms']:.1f} ms (runs {figures['p99_range_ms']})")
    print(f"with batch / alone: p50 x{result['ratio_with_to_alone']['p50_ms']}, "
          f"p99 x{result['ratio_with_to_alone']['p99_ms']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"batch_latency_{args.worker}.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
