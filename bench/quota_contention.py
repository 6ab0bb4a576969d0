"""Quota contention: N concurrent clients against one tenant, over two gateway instances' quota
stages sharing one DynamoDB (moto server), with and without leasing.

    .venv/bin/python bench/quota_contention.py [--clients 8 64 256] [--limit 600] [--requests 1200]

Each cell runs the real quota stage (``QuotaGuard`` + ``QuotaLeases`` + the DynamoDB hold store,
the tokenizer included) for two instances in one event loop; a "provider call" is a 2 ms sleep.
The background flush runs every ``flush-interval-s`` as in the gateway.

* binding: a requests-per-minute limit of ``--limit`` with ``--requests`` of demand. Reported:
  admitted vs limit (equal when demand exceeds it), DynamoDB writes per request, the quota left
  stranded in instances' unspent leases when demand stopped and at its peak while it ran (what a
  shift of demand to another instance could have found taken), refusals answered without I/O.
* store timeouts: requests refused (503) because moto, which serialises calls, did not answer
  within the request path's store deadline (``functions/adapters/store_calls.py``): the stand-in's
  limit at high concurrency without leasing, not DynamoDB's.
* not binding: limits far above demand (the gateway's usual case). Reported: writes per request
  and the latency the quota stage adds (admit + release) at p50/p99.

Prints a markdown table; writes bench/results/quota_contention.json. The window is frozen at the
cell's start (the clock does not move), so a minute boundary cannot split a cell.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "quota_contention.json"
PROVIDER_S = 0.002


class CountingStore:
    """The DynamoDB hold store, counting its calls (writes: acquire, settle; reads: reclaim)."""

    def __init__(self, store) -> None:
        self._store = store
        self.writes = 0
        self.reads = 0

    def acquire(self, *args):
        self.writes += 1
        return self._store.acquire(*args)

    def settle(self, *args):
        self.writes += 1
        return self._store.settle(*args)

    def reclaim_expired(self, key, now, *, refund):
        self.reads += 1
        return self._store.reclaim_expired(key, now, refund=refund)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def run_cell(runtime, store, *, clients: int, requests: int, plan: dict, leasing: bool,
                   warmup: int) -> dict:
    from functions.core.chat import ChatRequest, Usage
    from functions.core.config import PlanConfig
    from functions.core.context import RequestContext, Tenant
    from functions.core.errors import RateLimitError, StorageUnavailableError
    from functions.quotas.leases import QuotaLeases
    from functions.quotas.quota_guard import QuotaGuard

    config = runtime.config
    frozen = time.time()
    counting = CountingStore(store)
    tenant = Tenant("bench" + uuid.uuid4().hex[:8], "bench", PlanConfig(**plan))
    instances = []
    for n in range(2):
        leases = QuotaLeases(counting, config.quotas, leasing=leasing, clock=lambda: frozen)
        instances.append((leases, QuotaGuard(config, leases, clock=lambda: frozen)))
    chat = ChatRequest.model_validate({"model": "chat", "max_tokens": 16,
                                       "messages": [{"role": "user", "content": "how many tokens is this?"}]})
    queue = list(range(requests, requests + warmup))
    admitted, refused, added_ms, refusal_ms = 0, 0, [], []
    #: refused because moto did not answer within the request path's store deadline
    store_timeouts = 0
    refusal_writes = 0
    peak_unspent = 0.0

    def unspent() -> float:
        return sum(leases.stranded().get("requests-per-minute", 0.0) for leases, _ in instances)

    model = config.routes["chat"].serverless  # priced: an unpriced model is never billed $0

    async def client(index: int) -> None:
        nonlocal admitted, refused, refusal_writes, peak_unspent, store_timeouts
        while queue:
            n = queue.pop()
            leases, guard = instances[n % 2]
            ctx = RequestContext(request_id=f"r{n}", route_name="chat", route=config.routes["chat"], kind="chat",
                                 tenant=tenant, chat=chat, max_tokens=16)
            if n >= requests:  # warm-up: the window's first leases taken, nothing measured or counted
                ctx.usage, ctx.model, ctx.tier = Usage(prompt_tokens=12, completion_tokens=16), model, "serverless"
                try:
                    await guard.admit(ctx)
                except (RateLimitError, StorageUnavailableError):
                    continue
                await guard.release(ctx)
                continue
            started, writes_before = time.perf_counter(), counting.writes
            try:
                await guard.admit(ctx)
            except StorageUnavailableError:
                store_timeouts += 1
                continue
            except RateLimitError:
                refused += 1
                refusal_ms.append((time.perf_counter() - started) * 1000)
                refusal_writes += counting.writes > writes_before
                continue
            admit_s = time.perf_counter() - started
            peak_unspent = max(peak_unspent, unspent())
            await asyncio.sleep(PROVIDER_S)
            ctx.usage, ctx.model, ctx.tier = Usage(prompt_tokens=12, completion_tokens=16), model, "serverless"
            released = time.perf_counter()
            await guard.release(ctx)
            added_ms.append((admit_s + time.perf_counter() - released) * 1000)
            admitted += 1

    async def flusher() -> None:
        while True:
            await asyncio.sleep(config.quotas.flush_interval_s)
            for leases, _ in instances:
                await leases.flush()

    background = asyncio.create_task(flusher())
    await asyncio.gather(*(client(i) for i in range(clients)))  # warm-up phase
    counting.writes = counting.reads = 0
    queue.extend(range(requests))
    wall = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(clients)))
    wall = time.perf_counter() - wall
    background.cancel()
    stranded = unspent()
    for leases, _ in instances:
        await leases.flush(final=True)
    return {"clients": clients, "leasing": leasing, "requests": requests, "admitted": admitted,
            "refused": refused, "store_timeouts": store_timeouts, "writes": counting.writes, "reads": counting.reads,
            "writes_per_request": counting.writes / requests, "stranded": stranded, "peak_unspent": peak_unspent,
            "refusals_without_io": (refused - refusal_writes) / refused if refused else None,
            "added_p50_ms": percentile(added_ms, 0.5), "added_p99_ms": percentile(added_ms, 0.99),
            "refusal_p50_ms": percentile(refusal_ms, 0.5), "seconds": wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 64, 256])
    parser.add_argument("--limit", type=int, default=600, help="requests-per-minute in the binding cells")
    parser.add_argument("--requests", type=int, default=1200, help="requests per cell")
    parser.add_argument("--warmup", type=int, default=200,
                        help="unmeasured requests first in the not-binding cells (the first leases of a window)")
    args = parser.parse_args()

    from functions.adapters.dynamodb.quota_holds import DynamoQuotaHoldStore
    from functions.core.tables import USAGE
    from functions.core.tokens import warm_up
    from functions.gateway.composition import Runtime
    from tests.support import make_config
    from tierup.local_stack import LOCAL_CREDENTIALS, moto_server, prepare_tables

    os.environ.update(LOCAL_CREDENTIALS)
    warm_up()
    binding = {"requests-per-minute": args.limit, "tokens-per-minute": 10**9, "max-concurrent": 10**6}
    loose = {"requests-per-minute": 10**9, "tokens-per-minute": 10**12, "tokens-per-day": 10**13,
             "max-concurrent": 10**6}
    rows = []
    with moto_server() as endpoint:
        runtime = Runtime(config=make_config(), environ={**os.environ, "TIERUP_AWS_ENDPOINT": endpoint})
        prepare_tables(runtime)
        store = DynamoQuotaHoldStore(runtime.dynamodb, runtime.table(USAGE))
        for clients in args.clients:
            for leasing in (True, False):
                for name, plan in (("binding", binding), ("not binding", loose)):
                    row = asyncio.run(run_cell(runtime, store, clients=clients, requests=args.requests,
                                               plan=plan, leasing=leasing,
                                               warmup=args.warmup if name == "not binding" else 0))
                    row["case"] = name
                    row["limit"] = args.limit if name == "binding" else None
                    rows.append(row)
                    print(f"  {name:12} N={clients:<4} leasing={leasing!s:5} admitted={row['admitted']} "
                          f"writes/req={row['writes_per_request']:.3f} ({row['seconds']:.1f}s)", file=sys.stderr)

    print("| case | N | leasing | admitted / limit | refused | DynamoDB writes / request | stranded at end | "
          "peak unspent leases | refusals without I/O | added p50 ms | added p99 ms | store timeouts |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        limit = f"{r['admitted']} / {r['limit']}" if r["limit"] else f"{r['admitted']} / -"
        stranded = f"{r['stranded']:.0f}" if r["limit"] else "-"
        peak = f"{r['peak_unspent']:.0f} ({r['peak_unspent'] / r['limit']:.1%})" if r["limit"] else "-"
        no_io = f"{r['refusals_without_io']:.0%}" if r["refusals_without_io"] is not None else "-"
        print(f"| {r['case']} | {r['clients']} | {'yes' if r['leasing'] else 'no'} | {limit} | {r['refused']} | "
              f"{r['writes_per_request']:.3f} | {stranded} | {peak} | {no_io} | {r['added_p50_ms']:.3f} | "
              f"{r['added_p99_ms']:.3f} | {r['store_timeouts']} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"args": vars(args), "provider_call_s": PROVIDER_S, "rows": rows}, indent=2))
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    bad = [r for r in rows if r["limit"] and r["admitted"] > r["limit"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
