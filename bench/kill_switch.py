"""Budget guardrails under load: how fast spend stops and how far it overshoots a cap.

    .venv/bin/python bench/kill_switch.py [--clients 8 64 256] [--cap 5]

Two gateway instances (uvicorn threads in this process) share moto server's tables, as two
Lambda instances share DynamoDB; the simulated provider answers at full speed; the clients run in
a second process, so that their own CPU does not queue the gateways' work. For each client count,
two drills with the official openai SDK (``tierup/spend_drill.py``):

* cap: the clients drive route ``chat`` past a daily cap of ``--cap`` USD (the price is set to
  $1 per 1000 tokens so that a few hundred requests cross it). Reported: the reaction time from
  the crossing (the answer after which the answered requests, in the order they ended, add up to
  more than the cap minus one estimate: no further request fits) to the first refusal, negative
  when a refusal came first (a full lease or the slack that counts a cap as reached); the time
  from the first refusal to the last answer (every instance stopped); and the spend beyond the
  cap next to its bound, the reservations in flight (clients x one estimate).
* flag: the clients load route ``summarize`` (no cap) and an operator engages its kill switch
  (the CLI's code path) a second after they are served; reported: from the flag's write to the
  first refusal and to the last answer, against ``[budgets] flag-refresh-s`` (1 s here).

Times are when each answer reached its client (``tierup/spend_drill.py`` says why).

Prints a markdown table; writes bench/results/kill_switch.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from functions.core.config import parse_config  # noqa: E402
from functions.core.killswitch import KillSwitchTrigger  # noqa: E402
from functions.core.spend_caps import all_caps, estimate_cost_usd  # noqa: E402
from functions.core.tokens import count_chat_tokens  # noqa: E402
from functions.gateway.composition import Runtime, build_gateway  # noqa: E402
from functions.guardrails.wiring import counter_store, kill_switch_for  # noqa: E402
from tierup.local_stack import (LOCAL_CREDENTIALS, GatewayServer, create_alert_topic, create_key,  # noqa: E402
                                moto_server, prepare_tables)
from tierup.spend_drill import MESSAGES, analyse, drive  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "kill_switch.json"
MODEL = "us.meta.llama3-1-8b-instruct-v1:0"  # the example's chat route
MAX_TOKENS = 8
FLAG_REFRESH_S = 1.0


def bench_config(run: int, cap_usd: float):
    import tomllib

    data = tomllib.loads((ROOT / "tierup.toml").read_text())
    data["project"] = f"bench-ks-{os.getpid()}-{run}"
    data["simulated"] = {"ttft-ms": 0, "tokens-per-s": 1_000_000, "answer-tokens": 16}
    for model in (MODEL, "gpt-4o-mini"):
        data["pricing"]["models"][model] = {"input-per-mtok": 1000.0, "output-per-mtok": 1000.0}
    data["budgets"].update({"flag-refresh-s": FLAG_REFRESH_S, "thresholds": [0.5, 0.8, 1.0]})
    data["budgets"]["global"] = {"monthly-usd": 100_000.0, "action": "refuse"}
    data["budgets"]["routes"] = {"chat": {"daily-usd": cap_usd, "action": "refuse"}}
    data["plans"]["pro"] = {}  # no plan limits: the budget is what stops the clients
    return parse_config(data)


class Stack:
    def __init__(self, endpoint: str, run: int, cap_usd: float) -> None:
        env = {**os.environ, "TIERUP_AWS_ENDPOINT": endpoint, "TIERUP_PROVIDER": "simulated"}
        self.runtime = Runtime(config=bench_config(run, cap_usd), environ=env)
        prepare_tables(self.runtime)
        create_alert_topic(self.runtime)
        self.servers = [GatewayServer(build_gateway(self.runtime)).start() for _ in range(2)]
        self.urls = [server.url for server in self.servers]
        self.key = create_key(self.runtime, "acme", "pro")

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def drive_elsewhere(*args, **kwargs):
    """``drive`` in a child process (CLOCK_MONOTONIC is system-wide, so its times compare)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_drive_sync, *args, **kwargs).result()


def _drive_sync(*args, **kwargs):
    return asyncio.run(drive(*args, **kwargs))


def p50(values: list[float]) -> float | None:
    return round(statistics.median(values), 4) if values else None


def crossing_time(shots, cap_usd: float, estimate: float) -> float | None:
    spent = 0.0
    for shot in sorted((s for s in shots if s.status == 200), key=lambda s: s.end):
        spent += shot.cost
        if spent > cap_usd - estimate:
            return shot.end
    return None


def cap_drill(endpoint: str, run: int, clients: int, cap_usd: float) -> dict:
    stack = Stack(endpoint, run, cap_usd)
    try:
        config = stack.runtime.config
        estimate = estimate_cost_usd(config, "chat", count_chat_tokens(m["content"] for m in MESSAGES), MAX_TOKENS)
        shots = drive_elsewhere(stack.urls, stack.key, "chat", clients, config, max_tokens=MAX_TOKENS,
                                linger_s=2.0)
    finally:
        stack.stop()
    result = analyse(shots, clients, cap_usd, estimate)
    refusals = [s.end for s in shots if s.status == 503]
    crossed = crossing_time(shots, cap_usd, estimate)
    reaction = min(refusals) - crossed if refusals and crossed is not None else None
    return {"clients": clients, "requests": result.requests, "answered": result.answered,
            "refused": result.refused, "cap_usd": cap_usd, "spent_usd": round(result.spent_usd, 6),
            "overspend_usd": round(result.overspend_usd, 6), "bound_usd": round(result.bound_usd, 6),
            "reaction_s": None if reaction is None else round(reaction, 4),
            "stop_s": None if result.stop_s is None else round(result.stop_s, 4),
            "latency_p50_s": p50([s.end - s.start for s in shots])}


def flag_drill(endpoint: str, run: int, clients: int) -> dict:
    stack = Stack(endpoint, run, 1_000.0)
    engaged: dict = {}

    def engage_under_load() -> None:
        """Once the clients are being served (the global cap's counter moves), engage; the clock
        starts when the flag is written."""
        counters = counter_store(stack.runtime)
        key = next(cap.counter_key for cap in all_caps(stack.runtime.config, time.time()) if cap.scope == "global")
        deadline = time.monotonic() + 60
        while counters.read([key])[key] <= 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        kill_switch_for(stack.runtime).engage(KillSwitchTrigger(
            scope="route:summarize", action="refuse", reason="bench", source="bench"))
        engaged["at"] = time.monotonic()

    try:
        thread = threading.Thread(target=engage_under_load)
        thread.start()
        shots = drive_elsewhere(stack.urls, stack.key, "summarize", clients, stack.runtime.config,
                                max_tokens=MAX_TOKENS, linger_s=FLAG_REFRESH_S + 1.5)
        thread.join()
    finally:
        stack.stop()
    at = engaged["at"]
    refusals = [s.end for s in shots if s.status == 503]
    late = [s.end for s in shots if s.status == 200 and s.end > at]
    return {"clients": clients, "requests": len(shots), "flag_first_refusal_s": round(min(refusals) - at, 4),
            "flag_stop_s": round(max(late) - at, 4) if late else 0.0,
            "answered_after_engage": len(late), "flag_refresh_s": FLAG_REFRESH_S,
            "flag_latency_p50_s": p50([s.end - s.start for s in shots if s.end < at])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 64, 256])
    parser.add_argument("--cap", type=float, default=5.0, help="daily cap of the chat route, USD")
    args = parser.parse_args()
    os.environ.update({k: v for k, v in LOCAL_CREDENTIALS.items() if k not in os.environ})
    import logging

    logging.getLogger("tierup").setLevel(logging.ERROR)  # one alert log line per threshold otherwise
    rows = []
    with moto_server() as endpoint:
        for run, clients in enumerate(args.clients):
            row = cap_drill(endpoint, run, clients, args.cap)
            row.update({k: v for k, v in flag_drill(endpoint, 1000 + run, clients).items()
                        if k.startswith("flag") or k == "answered_after_engage"})
            rows.append(row)
            print(f"clients={clients} done", file=sys.stderr)
    header = ("| clients | requests | answered | refused | latency p50 s | cap $ | spent $ | overspend $ "
              "| bound $ (in flight) | crossing→first refusal s | first refusal→all stopped s "
              "| flag→first refusal s | flag→all stopped s | answered after flag |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for r in rows:
        print(f"| {r['clients']} | {r['requests']} | {r['answered']} | {r['refused']} | {r['latency_p50_s']} "
              f"| {r['cap_usd']:.2f} | {r['spent_usd']:.4f} | {r['overspend_usd']:+.4f} | {r['bound_usd']:.4f} "
              f"| {r['reaction_s']} | {r['stop_s']} | {r['flag_first_refusal_s']} | {r['flag_stop_s']} "
              f"| {r['answered_after_engage']} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"benchmark": "kill_switch", "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                   "settings": {"cap_usd": args.cap, "instances": 2, "max_tokens": MAX_TOKENS,
                                                "flag_refresh_s": FLAG_REFRESH_S, "price_per_1k_tokens_usd": 1.0},
                                   "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
