"""What route-table routing and one policy run cost.

    .venv/bin/python bench/promotion_runtime.py [--requests 200000] [--runs 20]

1. Routing: microseconds per request for ``targets()`` + ``report()``, side by side for the
   ``StaticRouter`` and the ``TableRouter`` (route on its start tier, promoted to reserved, and
   promoted but saturated so every request spills). The table router reads only its in-memory
   copy of the route table, so this is the whole per-request price of tiering.
2. One policy run (read route table and policy state, decide for every route from a full
   ``history-minutes`` of usage, plan, apply, record) against DynamoDB on moto server, the way
   the policy Lambda runs it each minute; moto on loopback stands in for DynamoDB's latency.

Prints a markdown table; writes bench/results/promotion_runtime.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from functions.adapters.simulated import SimulatedProvider  # noqa: E402
from functions.core.chat import ChatRequest  # noqa: E402
from functions.core.config import load_config  # noqa: E402
from functions.core.context import RequestContext, Tenant  # noqa: E402
from functions.core.ports import MinuteUsage  # noqa: E402
from functions.core.route_table import RouteEntry  # noqa: E402
from functions.gateway.route_table_cache import RouteTableCache  # noqa: E402
from functions.gateway.routing import ProviderRegistry, StaticRouter  # noqa: E402
from functions.gateway.table_router import TableRouter  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "promotion_runtime.json"


class StaticTable:
    def __init__(self, entries: dict[str, RouteEntry]) -> None:
        self._entries = entries

    def read_routes(self) -> dict[str, RouteEntry]:
        return dict(self._entries)


class SteadyUsage:
    """A full history of steady traffic for every route (what a busy route's aggregates hold)."""

    def minutes(self, scope: str, since_minute: int, until_minute: int) -> list[MinuteUsage]:
        return [MinuteUsage(minute=m, scope=scope, requests=600, prompt_tokens=300_000, completion_tokens=60_000)
                for m in range(since_minute, until_minute + 1)]


def _ctx(config) -> RequestContext:
    chat = ChatRequest.model_validate({"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
    return RequestContext(request_id="r", route_name="chat", route=config.routes["chat"], kind="chat",
                          tenant=Tenant("acme", "pro", config.plans["pro"]), chat=chat, max_tokens=16)


def time_router(router, config, requests: int) -> float:
    """Microseconds per request: choose the targets, then report the first one's success."""
    ctx = _ctx(config)
    started = time.perf_counter()
    for _ in range(requests):
        targets = router.targets(ctx)
        router.report(targets[0], True)
    return (time.perf_counter() - started) / requests * 1e6


def routing_rows(config, requests: int) -> list[dict]:
    simulated = SimulatedProvider(config.simulated)
    registry = ProviderRegistry(config, lambda tier, route: simulated)
    promoted = RouteEntry("chat", tier="reserved", replicas=1, target_replicas=1, max_in_flight=64)
    saturated = RouteEntry("chat", tier="reserved", replicas=1, target_replicas=1, max_in_flight=0)
    cases = [("StaticRouter (start tier)", StaticRouter(registry), "serverless")]
    for label, entries, first in (("TableRouter, start tier", {}, "serverless"),
                                  ("TableRouter, promoted", {"chat": promoted}, "reserved"),
                                  ("TableRouter, saturated (spill)", {"chat": saturated}, "serverless")):
        cache = RouteTableCache(StaticTable(entries), refresh_s=5)
        cache.refresh()
        cases.append((label, TableRouter(registry, cache, config), first))
    rows = []
    for label, router, first in cases:
        assert router.targets(_ctx(config))[0].tier == first, label
        best = min(time_router(router, config, requests) for _ in range(3))
        rows.append({"case": label, "first_tier": first, "us_per_request": round(best, 3)})
    return rows


def policy_run_ms(config, runs: int) -> dict:
    from functions.adapters.dynamodb.route_table import DynamoPolicyJournal, DynamoRouteTable
    from functions.core.tables import STATE
    from functions.gateway.composition import Runtime
    from functions.promotion.cycle import PolicyCycle
    from tierup.local_stack import LOCAL_CREDENTIALS, moto_server, prepare_tables

    os.environ.update(LOCAL_CREDENTIALS)

    class ReadyGpu:
        def set_min_replicas(self, route: str, replicas: int) -> None:
            return None

        def ready_replicas(self, route: str) -> int:
            return 8

    with moto_server() as endpoint:
        runtime = Runtime(config=config, environ={**os.environ, "TIERUP_AWS_ENDPOINT": endpoint})
        prepare_tables(runtime)
        state = runtime.table(STATE)
        cycle = PolicyCycle(config, usage=SteadyUsage(), table=DynamoRouteTable(runtime.dynamodb, state),
                            journal=DynamoPolicyJournal(runtime.dynamodb, state), gpu=ReadyGpu())
        now = time.time()
        cycle.run(now)  # first run creates clients and connections
        samples = []
        for index in range(runs):
            started = time.perf_counter()
            cycle.run(now + 60 * (index + 1))
            samples.append((time.perf_counter() - started) * 1000)
    return {"routes": len(cycle.promotable_routes()), "history_minutes": config.policy.history_minutes,
            "runs": runs, "median_ms": round(statistics.median(samples), 1), "max_ms": round(max(samples), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    config = load_config(ROOT / "tierup.toml")
    routing = routing_rows(config, args.requests)
    policy = policy_run_ms(config, args.runs)
    print("| routing case | first tier | µs per request |\n|---|---|---:|")
    for row in routing:
        print(f"| {row['case']} | {row['first_tier']} | {row['us_per_request']:.2f} |")
    print(f"\n| policy run (moto server) | routes | history minutes | median ms | max ms |\n|---|---:|---:|---:|---:|")
    print(f"| decide + plan + apply + record | {policy['routes']} | {policy['history_minutes']} | "
          f"{policy['median_ms']} | {policy['max_ms']} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"routing": routing, "policy_run": policy, "requests": args.requests}, indent=2))


if __name__ == "__main__":
    main()
