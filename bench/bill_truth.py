"""The bill under faults: what the ledger recorded against what the upstream actually served.

    .venv/bin/python bench/bill_truth.py [--requests 400] [--clients 8] [--seeds 1 2 3]

For each seed, one gateway (uvicorn in this process) on moto server (its own process, so that it
can be frozen) in front of the fault-injecting OpenAI-compatible upstream of
``tests/openai_upstream.py``, which counts the tokens it served with the gateway's tokenizer. The
official openai SDK sends requests from ``--clients`` threads, half of them streamed, each asking
the upstream for one fault drawn at random: none, usage dropped, no ``[DONE]``, connection reset,
trickling past ``provider-timeout-s``, 429, 500, bad JSON. Two phases:

* faults: route ``chat``, no cap binding; its middle third is sent while DynamoDB is frozen
  (SIGSTOP) for ``--freeze-s`` seconds, so requests meet a store that has stopped answering too;
* cap: route ``summarize`` with a daily cap of ``--cap-share`` of what its requests would cost if
  all were served; it must stop them at the cap.

Then the gateway stops (its last flush) and the ledger is read back. Reported:

* a table of fault x outcome (200, or the error code the client saw, or ``stream-error:CODE``);
* requests sent and ledger records: every request, answered or refused, leaves one (goal: 0
  unrecorded);
* dollars the ledger recorded against the dollars the upstream served, priced the same way
  (goal: within 0.1%);
* answers above the cap's stated bound: answers, in the order they ended, after the cap phase's
  served dollars passed the cap plus the tokenizer's slack (1%) (goal: 0);
* p50/p99 time from sending to the error, for requests that ended in an error (goal: p99 <= 2 s);
* how long after the store answers again the gateway serves again (one request at a time, phase
  ``recovery``).

Prints markdown tables; writes bench/results/bill_truth.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from functions.adapters.dynamodb.ledger_records import DynamoLedgerRecords  # noqa: E402
from functions.core.chat import Usage  # noqa: E402
from functions.core.pricing import token_cost_usd  # noqa: E402
from functions.core.tables import USAGE  # noqa: E402
from functions.core.tokens import count_chat_tokens, count_tokens  # noqa: E402
from functions.gateway.composition import Runtime, build_gateway  # noqa: E402
from tests.openai_upstream import FAULT_PIECES, FAULTS, fault_tag, start_fault_upstream  # noqa: E402
from tests.support import FAST_SIMULATED, example_config_data, deep_merge  # noqa: E402
from tierup.local_stack import (LOCAL_CREDENTIALS, GatewayServer, create_key, prepare_tables,  # noqa: E402
                                start_moto_process, stop_moto_process)

RESULTS = ROOT / "bench" / "results" / "bill_truth.json"
MODEL = "fault-upstream-llama"
#: Llama 3.1 8B's on-demand price on Bedrock: a realistic size for per-request dollars
PRICE = {"input-per-mtok": 0.22, "output-per-mtok": 0.22}
DEADLINE_S = 1.5
MAX_TOKENS = 32
TENANT = "billed"
SYSTEM = "Answer in one sentence."


@dataclass
class Outcome:
    phase: str
    fault: str
    stream: bool
    outcome: str
    seconds: float
    ended_at: float
    cost_usd: float = 0.0


def bench_config(upstream: str, cap_usd: float):
    from functions.core.config import parse_config

    data = example_config_data()
    data["project"] = "bill" + os.urandom(4).hex()
    data["simulated"] = dict(FAST_SIMULATED)
    return parse_config(deep_merge(data, {
        "tiers": {"serverless": {"provider": "openai", "base-url": upstream}},
        "routes": {"chat": {"serverless": MODEL, "cache": {"exact": False, "semantic": False}},
                   "summarize": {"serverless": MODEL}},
        "pricing": {"models": {MODEL: PRICE}},
        "plans": {"metered": {"requests-per-minute": 100_000, "tokens-per-minute": 100_000_000,
                              "tokens-per-day": 1_000_000_000, "monthly-budget-usd": 1000.0,
                              "max-concurrent": 1000}},
        "gateway": {"provider-timeout-s": DEADLINE_S},
        "budgets": {"alert-emails": [], "global": {"monthly-usd": 1000.0},
                    "routes": {"chat": {"monthly-usd": 1000.0, "daily-usd": 1000.0},
                               "summarize": {"daily-usd": cap_usd, "action": "refuse"}}},
    }))


def messages(index: int, fault: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Request {index}: how are tokens counted? {fault_tag(fault)}"}]


def served_cost(prompt_tokens: int, completion_tokens: int, config) -> float:
    return token_cost_usd(config.pricing, "serverless", MODEL, Usage(prompt_tokens, completion_tokens))


def ask(client, route: str, index: int, fault: str, stream: bool, config, phase: str) -> Outcome:
    import openai

    started = time.monotonic()
    usage = None
    try:
        if stream:
            chunks = client.chat.completions.create(model=route, messages=messages(index, fault), stream=True,
                                                    max_tokens=MAX_TOKENS, stream_options={"include_usage": True})
            for chunk in chunks:
                usage = chunk.usage or usage
        else:
            usage = client.chat.completions.create(model=route, messages=messages(index, fault),
                                                   max_tokens=MAX_TOKENS).usage
        outcome = "200"
    except openai.APIStatusError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        outcome = str((body.get("error") or body).get("code") or exc.status_code)
    except openai.APIError as exc:  # an error event in a stream that had started
        body = exc.body if isinstance(exc.body, dict) else {}
        outcome = "stream-error:" + str((body.get("error") or body).get("code") or "unknown")
    except openai.APIConnectionError as exc:
        outcome = f"connection:{type(exc).__name__}"
    ended = time.monotonic()
    cost = served_cost(usage.prompt_tokens, usage.completion_tokens, config) if usage else 0.0
    return Outcome(phase, fault, stream, outcome, ended - started, ended, cost)


def freeze(process, for_s: float, log: list) -> float:
    """Freeze ``process`` (SIGSTOP, as a store that stops answering); returns when to thaw it."""
    os.kill(process.pid, signal.SIGSTOP)
    now = time.monotonic()
    log.append(("frozen", now))
    return now + for_s


def run_seed(seed: int, requests: int, clients: int, freeze_s: float, cap_share: float) -> dict:
    from tests.support import openai_client

    rng = random.Random(seed)
    prompt = count_chat_tokens([SYSTEM, "Request 100: how are tokens counted? [fault:none]"])
    per_request = served_cost(prompt, count_tokens("".join(FAULT_PIECES)), bench_config("http://x", 1.0))
    cap_requests = requests // 2
    cap_usd = round(cap_share * cap_requests * per_request, 8)

    upstream, served, stop_upstream = start_fault_upstream()
    endpoint, moto = start_moto_process()
    os.environ.update(LOCAL_CREDENTIALS)
    try:
        config = bench_config(upstream, cap_usd)
        runtime = Runtime(config=config, environ={**os.environ, "TIERUP_AWS_ENDPOINT": endpoint})
        prepare_tables(runtime)
        server = GatewayServer(build_gateway(runtime)).start()
        client = openai_client(server.url, create_key(runtime, TENANT, "metered"), timeout=30)
        plan = [("faults", "chat", i, rng.choice(FAULTS), rng.random() < 0.5) for i in range(requests)]
        plan += [("cap", "summarize", requests + i, rng.choice(("none", "drop-usage")), rng.random() < 0.5)
                 for i in range(cap_requests)]
        events: list = []
        outcomes: list[Outcome] = []
        third = requests // 3
        with ThreadPoolExecutor(clients) as pool:
            def run(part, spread_s: float = 0.0) -> None:
                """Send ``part``; with ``spread_s``, its requests start evenly over that time."""
                start = time.monotonic()

                def paced(item):
                    index, p = item
                    time.sleep(max(0.0, start + spread_s * index / len(part) - time.monotonic()))
                    return ask(client, p[1], p[2], p[3], p[4], config, p[0])

                outcomes.extend(pool.map(paced, enumerate(part)))

            run(plan[:third])
            # the middle third meets a frozen store, spread over the whole freeze: past twice the
            # kill-switch flags' refresh, the money guards must refuse (fail closed)
            thawed_at = freeze(moto, freeze_s, events)
            run(plan[third:2 * third], spread_s=freeze_s)
            time.sleep(max(0.0, thawed_at - time.monotonic()))
            os.kill(moto.pid, signal.SIGCONT)
            events.append(("thawed", time.monotonic()))
            # one request at a time until the gateway serves again: how long it takes to recover
            probe = requests + cap_requests
            while True:
                outcomes.append(ask(client, "chat", probe, "none", False, config, "recovery"))
                probe += 1
                if outcomes[-1].outcome == "200" or time.monotonic() - events[-1][1] > 30:
                    events.append(("recovered", outcomes[-1].ended_at))
                    break
                time.sleep(0.05)
            run(plan[2 * third:])  # the rest of the faults, then the cap phase
        server.stop()  # the last flush: everything the gateway owes is written now
        today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        records = DynamoLedgerRecords(runtime.dynamodb, runtime.table(USAGE)).day(TENANT, today)
    finally:
        stop_moto_process(moto)
        stop_upstream()

    served_usd = sum(served_cost(s.prompt_tokens, s.completion_tokens, config) for s in served.requests)
    recorded_usd = sum(r.cost_usd for r in records)
    answered_cap = sorted((o for o in outcomes if o.phase == "cap" and o.outcome == "200"), key=lambda o: o.ended_at)
    total, above = 0.0, 0
    for outcome in answered_cap:
        total += outcome.cost_usd
        above += total > cap_usd * 1.01
    errors = sorted(o.seconds for o in outcomes if o.outcome != "200")
    return {
        "seed": seed, "requests": len(outcomes), "ledger_records": len(records),
        "unrecorded": max(len(outcomes) - len(records), 0),
        "served_usd": served_usd, "recorded_usd": recorded_usd,
        "ledger_error_pct": 100 * abs(recorded_usd - served_usd) / served_usd if served_usd else 0.0,
        "estimated_records": sum(bool(getattr(r, "estimated", False)) for r in records),
        "cap_usd": cap_usd, "cap_served_usd": total, "answers_above_cap_bound": above,
        "error_p50_s": statistics.median(errors) if errors else 0.0,
        "error_p99_s": errors[min(len(errors) - 1, int(0.99 * len(errors)))] if errors else 0.0,
        "freeze": [(name, round(at, 3)) for name, at in events],
        "recovered_after_s": events[-1][1] - events[-2][1],
        "outcomes": [asdict(o) for o in outcomes],
    }


def fault_table(outcomes: list[dict]) -> list[str]:
    kinds = sorted({o["outcome"] for o in outcomes})
    lines = ["| phase | fault | " + " | ".join(kinds) + " |", "|---|---|" + "---:|" * len(kinds)]
    for phase in ("faults", "recovery", "cap"):
        for fault in FAULTS:
            rows = [o for o in outcomes if o["phase"] == phase and o["fault"] == fault]
            if rows:
                counts = [sum(o["outcome"] == kind for o in rows) for kind in kinds]
                lines.append(f"| {phase} | {fault} | " + " | ".join(str(c or "") for c in counts) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests of the faults phase (the cap phase sends half)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--freeze-s", type=float, default=8.0, help="how long DynamoDB is frozen")
    parser.add_argument("--cap-share", type=float, default=0.6, help="the cap as a share of the cap phase's cost")
    args = parser.parse_args()

    runs = [run_seed(seed, args.requests, args.clients, args.freeze_s, args.cap_share) for seed in args.seeds]
    print(f"## Outcomes by fault (seed {runs[0]['seed']}; {args.clients} clients, half streamed)\n")
    print("\n".join(fault_table(runs[0]["outcomes"])))
    print("\n## The bill\n")
    print("| seed | requests | ledger records | unrecorded | served $ | recorded $ | ledger error | "
          "estimated records | cap $ | served under cap $ | answers above bound | error p50 s | error p99 s | "
          "recovered after s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for run in runs:
        print(f"| {run['seed']} | {run['requests']} | {run['ledger_records']} | {run['unrecorded']} | "
              f"{run['served_usd']:.6f} | {run['recorded_usd']:.6f} | {run['ledger_error_pct']:.3f}% | "
              f"{run['estimated_records']} | {run['cap_usd']:.6f} | {run['cap_served_usd']:.6f} | "
              f"{run['answers_above_cap_bound']} | {run['error_p50_s']:.2f} | {run['error_p99_s']:.2f} | "
              f"{run['recovered_after_s']:.2f} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"args": vars(args), "runs": runs}, indent=1))
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
