"""Interactive latency with and without a batch being drained on the same route, side by side.

    .venv/bin/python bench/batch_latency.py [--rounds 3] [--duration 30] [--rate 10] [--lines 900]
                                            [--worker process|in-process]

The real gateway (``build_gateway``, uvicorn on loopback) serves interactive chat requests (the
official openai SDK, distinct prompts, the route's cache off so every request reaches the simulated
provider) arriving at a fixed rate, open loop, for ``--duration`` seconds. Each round runs that load
twice, interleaved: alone, then while a batch of ``--lines`` chat lines for the same route is being
drained (created just before the load starts; the lines still waiting when it ends are cancelled).
The tenant's plan (enterprise) leaves room in its quota for both.

Two setups, each modelling where the parts run:

* ``--worker process`` (the default; as on AWS): the gateway and the load client in this process,
  pinned to one CPU core (``os.sched_setaffinity``); the worker (``functions.batch.queue_poller``)
  and the moto server each in a process of their own, pinned to the other core. On AWS the worker is
  a Lambda function with its own CPU, and DynamoDB, S3 and SQS are services: none of them uses the
  gateway's CPU.
* ``--worker in-process`` (as ``tierup dev`` runs it): the worker inside the gateway, on its event
  loop, and moto a thread of the same process (its calls hold the same interpreter lock); nothing
  pinned.

What is shared, and so what batch load can disturb. As in production: the route's provider (here
the simulated one, without a capacity limit; on a promoted route batch lines take only ``[batch]
reserved-share`` of the reserved slots, ``functions/batch/routing.py``), the tenant's quota and
spend counters, and the data store. Less kindly than production: the store is one moto server,
which answers one call at a time where DynamoDB serves calls in parallel, so the gateway's store
calls queue behind the worker's. Not controlled: the machine's other load (the pinned cores are not
reserved for the bench).

Measurement: each run has ``rate x duration`` requests (300 by default, so p99 is not just the
slowest request). The noise is the spread between runs of the same side. Verdict: interactive
latency is unchanged within noise when the "with batch" median p99 lies within the range of the
"alone" runs' p99, or when the 95 % bootstrap interval of the p99 ratio (with batch / alone;
requests resampled within each run, 2,000 resamples) contains 1.

Reports per run interactive p50 / p99 (ms), the batch lines answered meanwhile, the gateway's own
DynamoDB calls (count and latency, queueing at moto included; in-process, the worker's calls go
through the same client and are counted too) and the CPU cores each process used, then the
medians, the ratios, the interval and the verdict. Writes bench/results/batch_latency_<worker>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from contextlib import ExitStack
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


class StoreCalls:
    """How long the gateway's own DynamoDB calls take (botocore's before-call to after-call, queueing
    at the store included): the part of an interactive request's latency the store adds."""

    def __init__(self, client) -> None:
        self.durations: list[float] = []
        client.meta.events.register("before-call.dynamodb", self._started)
        client.meta.events.register("after-call.dynamodb", self._ended)

    def _started(self, context, **_) -> None:
        context["bench_started"] = time.perf_counter()

    def _ended(self, context, **_) -> None:
        if "bench_started" in context:
            self.durations.append((time.perf_counter() - context["bench_started"]) * 1000)

    def take(self) -> list[float]:
        taken, self.durations = self.durations, []
        return taken


def start_worker(runtime, cpus: set[int] | None):
    """The batch worker in a process of its own, on the same tables, bucket and queue; pinned to
    ``cpus`` when given."""
    import subprocess
    import tempfile

    from tierup.local_stack import LOCAL_CREDENTIALS

    config_file = Path(tempfile.mkdtemp()) / "config.json"
    config_file.write_text(json.dumps(runtime.config.model_dump(by_alias=True, mode="json")))
    env = {**os.environ, **LOCAL_CREDENTIALS, **runtime.environ, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen([sys.executable, "-m", "functions.batch.queue_poller", str(config_file)], env=env,
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if cpus:
        os.sched_setaffinity(worker.pid, cpus)
    return worker


def cpu_s(pid: int) -> float:
    """CPU seconds a process (all its threads) has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def split_cores() -> tuple[set[int], set[int]] | None:
    """(the gateway's and load client's cores, the worker's): the first core, and the rest."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return ({cores[0]}, set(cores[1:])) if len(cores) >= 2 else None


def p99_ratio_interval(alone: list[list[float]], loaded: list[list[float]], resamples: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval of p99(with batch) / p99(alone): requests resampled within each run,
    the runs of a side pooled."""
    import random

    draw = random.Random(seed)

    def p99(runs: list[list[float]]) -> float:
        return percentile([value for run in runs for value in draw.choices(run, k=len(run))], 0.99)

    ratios = sorted(p99(loaded) / p99(alone) for _ in range(resamples))
    return ratios[int(0.025 * resamples)], ratios[int(0.975 * resamples) - 1]


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
    from tierup.local_stack import (LOCAL_CREDENTIALS, GatewayServer, create_key, moto_server, prepare_tables,
                                    start_moto_process, stop_moto_process)

    os.environ.update(LOCAL_CREDENTIALS)
    overrides = {"simulated": SIMULATED, "routes": {"chat": {"cache": {"exact": False, "semantic": False}}}}
    runs = []
    samples: dict[str, list[list[float]]] = {"alone": [], "with batch": []}
    worker, cores, stack = None, None, ExitStack()
    processes = {"gateway": os.getpid()}
    if args.worker == "in-process":
        endpoint = stack.enter_context(moto_server())  # a thread of this process, as tierup dev runs it
    else:
        endpoint, moto = start_moto_process()
        stack.callback(stop_moto_process, moto)
        processes["moto"] = moto.pid
        cores = split_cores()
        if cores:
            os.sched_setaffinity(0, cores[0])  # this thread, and the gateway's threads started after it
            os.sched_setaffinity(moto.pid, cores[1])  # on AWS the store is not on the gateway's CPU either
    try:
        in_process = {"TIERUP_BATCH_WORKER": "in-process"} if args.worker == "in-process" else {}
        runtime = Runtime(config=make_config(overrides, fast=False), environ={
            **os.environ, "TIERUP_AWS_ENDPOINT": endpoint, "TIERUP_PROVIDER": "simulated", **in_process})
        prepare_tables(runtime)
        if args.worker == "process":
            worker = start_worker(runtime, cores[1] if cores else None)
            processes["worker"] = worker.pid
        key = create_key(runtime, TENANT, "enterprise", label="benchmark")  # 6,000 requests a minute: room for both
        store = batch_store(runtime)  # to count the lines answered (the API counts finished chunks)
        gateway = build_gateway(runtime)
        store_calls = StoreCalls(runtime.aws.client("dynamodb"))  # the gateway's client (not the worker process's)
        with GatewayServer(gateway) as server:
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
                    store_calls.take()
                    cpu_before = {name: cpu_s(pid) for name, pid in processes.items()}
                    latencies = await interactive_load(client, args.rate, args.duration, tag)
                    cores_used = {name: round((cpu_s(pid) - cpu_before[name]) / args.duration, 2)
                                  for name, pid in processes.items()}
                    calls = store_calls.take()
                    samples[side].append(latencies)
                    drained = None
                    if batch is not None:
                        drained = len(store.lines(batch.id)) - before
                        sync.batches.cancel(batch.id)
                        await asyncio.sleep(2.0)  # the worker notices and stops before the next run
                    row = {"round": round_, "side": side, "requests": len(latencies),
                           "p50_ms": round(percentile(latencies, 0.50), 1),
                           "p99_ms": round(percentile(latencies, 0.99), 1), "batch_lines_during": drained,
                           "store_calls": len(calls), "store_call_p50_ms": round(percentile(calls, 0.50), 1),
                           "store_call_p99_ms": round(percentile(calls, 0.99), 1), "cores_used": cores_used}
                    runs.append(row)
                    print(f"round {round_}  {side:10}  n={row['requests']:4}  p50 {row['p50_ms']:7.1f} ms  "
                          f"p99 {row['p99_ms']:7.1f} ms  batch lines answered meanwhile: {drained}  "
                          f"(gateway's store calls {len(calls)}: p50 {row['store_call_p50_ms']} ms, "
                          f"p99 {row['store_call_p99_ms']} ms; cores used {cores_used})", flush=True)
            await client.close()
    finally:
        if worker is not None:
            worker.kill()
            worker.wait(timeout=10)
        stack.close()
    summary = {}
    for side in ("alone", "with batch"):
        mine = [row for row in runs if row["side"] == side]
        summary[side] = {"p50_ms": statistics.median(r["p50_ms"] for r in mine),
                         "p99_ms": statistics.median(r["p99_ms"] for r in mine),
                         "p50_range_ms": [min(r["p50_ms"] for r in mine), max(r["p50_ms"] for r in mine)],
                         "p99_range_ms": [min(r["p99_ms"] for r in mine), max(r["p99_ms"] for r in mine)]}
    ratio = {name: round(summary["with batch"][name] / summary["alone"][name], 3) for name in ("p50_ms", "p99_ms")}
    low, high = p99_ratio_interval(samples["alone"], samples["with batch"])
    alone_low, alone_high = summary["alone"]["p99_range_ms"]
    unchanged = alone_low <= summary["with batch"]["p99_ms"] <= alone_high or low <= 1.0 <= high
    pinned = {"gateway": sorted(cores[0]), "worker_and_moto": sorted(cores[1])} if cores else None
    return {"worker": args.worker, "pinned": pinned,
            "rate_rps": args.rate, "duration_s": args.duration, "lines": args.lines, "runs": runs,
            "summary": summary, "ratio_with_to_alone": ratio, "p99_ratio_95ci": [round(low, 3), round(high, 3)],
            "unchanged_within_noise": unchanged}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=10.0, help="interactive requests per second")
    parser.add_argument("--lines", type=int, default=900)
    parser.add_argument("--worker", choices=("process", "in-process"), default="process")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    for side, figures in result["summary"].items():
        print(f"{side:10}  median p50 {figures['p50_ms']:.1f} ms (runs {figures['p50_range_ms']})  "
              f"median p99 {figures['p99_ms']:.1f} ms (runs {figures['p99_range_ms']})")
    print(f"with batch / alone: p50 x{result['ratio_with_to_alone']['p50_ms']}, "
          f"p99 x{result['ratio_with_to_alone']['p99_ms']} (95 % interval {result['p99_ratio_95ci']})")
    print("interactive latency " + ("unchanged within noise" if result["unchanged_within_noise"]
                                    else "changed beyond noise") + " by the batch load")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"batch_latency_{args.worker}.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
