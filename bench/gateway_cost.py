"""What the gateway itself costs to run, per million requests, per Lambda memory size and per host.

    .venv/bin/python bench/gateway_cost.py [--requests 200] [--rps 100]

The real gateway (uvicorn, as ``bench/gateway_process.py`` starts it) serves a realistic mix on
moto server and the simulated provider, twice: as on Lambda (``AWS_LAMBDA_FUNCTION_NAME`` set: what
a request owes is written before its response completes, EMF lines on) and as in a container
(the ledger flushed in the background once a second). Mix: short streams (40 tokens), long
streams (400), non-streamed answers, exact cache hits, refusals (a tenant over its requests per
minute) and a few embeddings.

The Lambda run keeps the typical answer's pace, scaled down in time (``PACE_SCALE``): some of its
writes fall per unit of time (lease renewals), and a run faster than the pace would show fewer
of them per request than a busy Lambda instance makes.

Measured per request: the gateway's CPU time (from /proc), the part of it on the request's critical
path (the gateway's own marks, ``TIERUP_CPU_PROFILE``: before the provider's call and after its last
token; the rest overlaps the model's generation), its peak memory (VmHWM), and the AWS
units it used, read back from its own ledger records (DynamoDB read/write units as DynamoDB
reported them, log bytes; tests/functional/test_gateway_cost.py shows the records hold exactly
the units counted). The stream time is not measured (the simulated provider answers at once):
the table prices 1 s, 10 s and 60 s from request to last byte, the time a real model takes.
The simulated provider marks its answers (``system_fingerprint``); a real provider's chunks carry
no such field, so the Lambda run's bytes out leave the marker's bytes out.

moto is served with its connections kept open between calls (``kept_alive_moto_server``), as
DynamoDB keeps them: the gateway's CPU then holds what a DynamoDB call costs it on AWS, not a new
TCP connection per call as plain moto server would make it pay.

Prints dollars per million requests for Lambda memory sizes (arm64: every size from 128 to 512 MB
in 16 MB steps is priced, the common larger ones shown too), the container option (Fargate arm64
behind an ALB at ``--rps``) and Lambda Managed Instances, the share of the example route's model
cost each is, and the smallest memory size that meets the rules below (the default); writes
bench/results/gateway_cost.json with every size.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import tomllib
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gateway_process import (GatewayProcess, gateway_environment, kept_alive_moto_server,  # noqa: E402
                                   toml_text)
from functions.core.config.gateway import DEFAULT_LAMBDA_MEMORY_MB  # noqa: E402
from functions.core.gateway_cost import (AWS_PRICES, BYTES_PER_GB, HOURS_PER_MONTH,  # noqa: E402
                                         LAMBDA_PLATFORM_LOG_BYTES, RequestProfile, container_month,
                                         lambda_cpu_stretch, lambda_month, managed_instances_month)
from functions.gateway.openai_format import SIMULATED_FINGERPRINT  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "gateway_cost.json"
#: the sizes priced: Lambda takes any size from 128 MB in 1 MB steps; below 512 MB, where the
#: gateway's smallest fitting size lies, every 16 MB (finer would follow the CPU's noise from run
#: to run), and the sizes people commonly pick above it
MEMORY_SIZES_MB = (*range(128, 513, 16), 1024, 1769, 2048)
#: the Lambda rows printed (every size is in the JSON), besides the chosen and the default size
SHOWN_SIZES_MB = (256, 512, 1024, 1769, 2048)
STREAM_SECONDS = (1.0, 10.0, 60.0)
#: the example route (chat: Llama 3.1 8B on Bedrock, $0.22 per million tokens in and out) at a
#: typical answer: 500 prompt tokens, 300 answer tokens, about 4 s from request to last token
TYPICAL = {"prompt_tokens": 500, "completion_tokens": 300, "usd_per_mtok": 0.22, "stream_s": 4.0}
#: the Lambda memory size must leave this share of itself above the gateway's peak memory
MEMORY_HEADROOM = 0.75
#: the most a request's critical-path CPU may take once stretched by the function's CPU share
#: (below 1,769 MB Lambda gives a fraction of a vCPU): the latency the gateway adds to the model's.
#: Most of it is settling after the last token (with durable-before-response the request writes
#: its ledger page, aggregates and metrics): it delays the stream's end, not its first token
CPU_BUDGET_MS = 150
#: On Lambda some writes fall per unit of time, not per request (a quota lease is renewed a third
#: of ``lease-ttl-s`` after its last write, at most, however many requests it served meanwhile), so
#: the Lambda run keeps the typical answer's pace: one request at a time, each starting when the
#: previous one's typical time is up, with time scaled down by this factor (a request every 0.4 s,
#: and the quota timings shortened alike), so renewals and flushes fall per request as they would
PACE_SCALE = 10.0
#: the goals of the issue: Lambda at the default memory within 10% of the model's cost at the
#: typical answer, the container within 1% at 100 requests/s
LAMBDA_GOAL, CONTAINER_GOAL = 0.10, 0.01


def _config(project: str) -> dict:
    data = tomllib.loads((ROOT / "tierup.toml").read_text())
    data["project"] = project
    data["simulated"] = {"ttft-ms": 0, "tokens-per-s": 1_000_000, "answer-tokens": 400}
    data["routes"]["chat"]["cache"]["semantic"] = False  # exact hits only: no embedding model to load
    data["plans"]["tight"] = {"requests-per-minute": 2}
    data["tenants"] = {"bench": {"plan": "enterprise"}, "tight": {"plan": "tight"}}
    for tier in data["tiers"].values():
        tier["provider"] = "simulated"
    return data


def _mix(count: int) -> list[tuple[str, dict]]:
    """(tenant, request) pairs in a fixed order: the shares of a realistic day."""
    kinds = (["short"] * 8 + ["long"] * 6 + ["json"] * 3 + ["hit"] * 2 + ["refused"] * 1)
    mix = []
    for index in range(count):
        kind = kinds[index % len(kinds)]
        if kind == "refused":
            mix.append(("tight", {"model": "chat", "messages": [{"role": "user", "content": f"q{index}"}]}))
        elif kind == "hit":
            mix.append(("bench", {"model": "chat", "temperature": 0,
                                  "messages": [{"role": "user", "content": "the same question"}]}))
        else:
            mix.append(("bench", {"model": "chat", "stream": kind != "json",
                                  "max_tokens": 40 if kind == "short" else 400,
                                  "messages": [{"role": "user", "content": f"question {index} " * 20}]}))
    return mix


def _scaled_lease_ttl_s(ttl_s: float) -> float:
    """The lease TTL under which a hold is trusted (and renewed) ``PACE_SCALE`` times sooner than
    under ``ttl_s``: the safety margin is a third of a TTL this short, not its 2 s."""
    from functions.quotas.leases import SAFETY_MARGIN_S

    trusted_s = (ttl_s - min(SAFETY_MARGIN_S, ttl_s / 3)) / PACE_SCALE
    return max(1.0, trusted_s * 1.5)


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _measure(mode: str, requests: int, endpoint: str, workdir: Path, *, compress: bool | None = None) -> dict:
    """Serve the mix on one gateway process; return CPU, memory and AWS units per request.
    ``compress``: ``[gateway] compress-responses`` (None: the default for the host, on in a
    container, off on Lambda); the client asks for gzip as the openai SDK does."""
    import httpx

    from functions.adapters.dynamodb.ledger_records import DynamoLedgerRecords
    from functions.core.config import BudgetsConfig, PolicyConfig, QuotaConfig, parse_config
    from functions.core.tables import TABLES, USAGE, table_env_var
    from functions.gateway.composition import Runtime
    from tierup.local_stack import create_key, prepare_tables

    project = "c" + uuid.uuid4().hex[:8]
    data = _config(project)
    pace_s = 0.0
    if mode == "container":
        data["quotas"]["durable-before-response"] = False
    else:
        pace_s = TYPICAL["stream_s"] / PACE_SCALE
        quotas, budgets, policy = QuotaConfig(), BudgetsConfig(), PolicyConfig()
        data["quotas"] |= {"lease-ttl-s": _scaled_lease_ttl_s(quotas.lease_ttl_s),
                           "flush-interval-s": quotas.flush_interval_s / PACE_SCALE,
                           "refusal-recheck-s": quotas.refusal_recheck_s / PACE_SCALE}
        # the background reads of a busy instance (kill-switch flags, the route table) scale alike
        data.setdefault("budgets", {})["flag-refresh-s"] = budgets.flag_refresh_s / PACE_SCALE
        data.setdefault("policy", {})["route-table-refresh-s"] = policy.route_table_refresh_s / PACE_SCALE
    data["gateway"]["compress-responses"] = mode == "container" if compress is None else compress
    path = workdir / f"{mode}-{compress}.toml"
    path.write_text(toml_text(data))
    runtime = Runtime(config=parse_config(data), environ={**os.environ, "TIERUP_AWS_ENDPOINT": endpoint})
    prepare_tables(runtime)
    keys = {tenant: create_key(runtime, tenant, data["tenants"][tenant]["plan"]) for tenant in ("bench", "tight")}
    env = gateway_environment(path, endpoint) | {"TIERUP_PROVIDER": "simulated", "TIERUP_EMF": "stdout",
                                                  **{table_env_var(spec): runtime.table(spec) for spec in TABLES}}
    cpu_profile = workdir / f"{mode}-{compress}-cpu.json"
    env["TIERUP_CPU_PROFILE"] = str(cpu_profile)
    env |= ({"AWS_LAMBDA_FUNCTION_NAME": "bench-gateway", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}
            if mode == "lambda" else {"ECS_CONTAINER_METADATA_URI_V4": "http://127.0.0.1:9/bench"})
    statuses: dict[int, int] = {}
    marker_bytes = 0
    with GatewayProcess(env, cpu=None) as gateway, httpx.Client(base_url=gateway.url, timeout=30) as client:
        for tenant, body in _mix(20):  # warm-up: imports, first connections, tokenizer
            client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {keys[tenant]}"})
        time.sleep(1.2)  # the warm-up's last background flush
        cpu_before, started = gateway.cpu_seconds(), time.time()
        for index, (tenant, body) in enumerate(_mix(requests)):
            time.sleep(max(0.0, started + index * pace_s - time.time()))
            response = client.post("/v1/chat/completions", json=body,
                                   headers={"Authorization": f"Bearer {keys[tenant]}"})
            response.read()
            if not data["gateway"]["compress-responses"]:
                marker_bytes += _marker_bytes(response)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        cpu_s = gateway.cpu_seconds() - cpu_before
        peak_mb = _peak_rss_mb(gateway.pid)
    # written as the gateway stopped: each request's CPU before the provider's call, while the model
    # generated and after its last token, warm-up first
    split = json.loads(cpu_profile.read_text())[-requests:]
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    ledger = DynamoLedgerRecords(runtime.dynamodb, runtime.table(USAGE))
    entries = [e for tenant in ("bench", "tight") for e in ledger.day(tenant, day) if e.at >= started - 0.5]
    count = len(entries)
    return {"mode": mode, "compressed": data["gateway"]["compress-responses"], "requests": requests,
            "pace_s": pace_s,
            "recorded": count, "statuses": statuses,
            "cpu_ms_per_request": 1000 * cpu_s / requests,
            # the rest of the process's CPU (between the provider's call and its last token, and
            # background work) overlaps the model's generation; uvicorn's own parsing is not in either mark
            "critical_cpu_ms_per_request": 1000 * sum(before + after for before, _, after in split) / requests,
            "cpu_ms_before_provider": 1000 * sum(before for before, _, _ in split) / requests,
            "cpu_ms_while_generating": 1000 * sum(during for _, during, _ in split) / requests,
            "cpu_ms_after_last_token": 1000 * sum(after for _, _, after in split) / requests,
            "peak_rss_mb": peak_mb,
            "read_units_per_request": sum(e.read_units for e in entries) / count,
            "write_units_per_request": sum(e.write_units for e in entries) / count,
            # the Lambda platform's lines are priced apart (lambda_month adds them): the process's own here
            "log_bytes_per_request": sum(e.log_bytes - LAMBDA_PLATFORM_LOG_BYTES * e.gateway_invocations
                                         for e in entries) / count,
            "egress_bytes_per_request": (sum(e.egress_bytes for e in entries) - marker_bytes) / count,
            "simulator_marker_bytes_per_request": marker_bytes / count}


#: what the simulator's mark adds to each streamed chunk (a real provider's chunks leave the field
#: out), and to a whole answer (where a real provider's is null)
_CHUNK_MARK = b',"system_fingerprint":"' + SIMULATED_FINGERPRINT.encode() + b'"'
_ANSWER_MARK = len(f'"{SIMULATED_FINGERPRINT}"') - len("null")


def _marker_bytes(response) -> int:
    marks = response.content.count(_CHUNK_MARK)
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return marks * len(_CHUNK_MARK)
    return marks * _ANSWER_MARK


def _profile(measured: dict) -> RequestProfile:
    return RequestProfile(cpu_ms=measured["cpu_ms_per_request"],
                          critical_cpu_ms=measured["critical_cpu_ms_per_request"],
                          read_units=measured["read_units_per_request"],
                          write_units=measured["write_units_per_request"],
                          log_bytes=measured["log_bytes_per_request"],
                          egress_bytes=measured["egress_bytes_per_request"])


def _model_usd() -> float:
    return (TYPICAL["prompt_tokens"] + TYPICAL["completion_tokens"]) * TYPICAL["usd_per_mtok"] / 1e6


def price_table(lambda_units: dict, container_units: dict, rps: float) -> dict:
    lam, box = _profile(lambda_units), _profile(container_units)
    per_million = 1e6
    month = rps * HOURS_PER_MONTH * 3600
    rows = []
    for memory in MEMORY_SIZES_MB:
        fits = lambda_units["peak_rss_mb"] <= memory * MEMORY_HEADROOM
        cells = {f"{s:g}s": lambda_month(per_million, s, lam, memory_mb=memory).total_usd for s in STREAM_SECONDS}
        typical = lambda_month(per_million, TYPICAL["stream_s"], lam, memory_mb=memory).total_usd / per_million
        rows.append({"option": f"lambda {memory} MB", "memory_mb": memory, "fits": fits, **cells,
                     "typical_share_of_model": typical / _model_usd(),
                     "cpu_ms_stretched": lam.critical_ms * lambda_cpu_stretch(memory)})
    for name, build, profile in (("container", container_month, box), ("lambda-managed", managed_instances_month, lam)):
        cells = {f"{s:g}s": build(month, s, profile).total_usd / month * per_million for s in STREAM_SECONDS}
        typical = build(month, TYPICAL["stream_s"], profile)
        rows.append({"option": f"{name} at {rps:g} rps", "fits": True, **cells, "detail": typical.detail,
                     "typical_share_of_model": typical.total_usd / month / _model_usd()})
    return {"rows": rows, "rps": rps}


def choose_memory(rows: list[dict]) -> tuple[int, str]:
    """The smallest size that fits the gateway's memory and keeps its critical-path CPU within
    ``CPU_BUDGET_MS``."""
    for row in rows:
        if "memory_mb" in row and row["fits"] and row["cpu_ms_stretched"] <= CPU_BUDGET_MS:
            return row["memory_mb"], (f"the smallest size with {1 - MEMORY_HEADROOM:.0%} of memory to spare and "
                                      f"the gateway's critical-path CPU within {CPU_BUDGET_MS} ms a request "
                                      f"({row['cpu_ms_stretched']:.0f} ms); "
                                      "a stream bills memory x its whole time, so every larger size costs more "
                                      "in proportion and buys nothing while the model generates")
    return MEMORY_SIZES_MB[-1], "no smaller size fits"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rps", type=float, default=100.0)
    args = parser.parse_args()
    from tierup.local_stack import LOCAL_CREDENTIALS

    os.environ.update(LOCAL_CREDENTIALS)
    with kept_alive_moto_server() as endpoint, tempfile.TemporaryDirectory() as tmp:
        measured = {mode: _measure(mode, args.requests, endpoint, Path(tmp)) for mode in ("lambda", "container")}
        # the same container serving the same mix without compression: what compressing costs in CPU
        measured["container-uncompressed"] = _measure("container", args.requests, endpoint, Path(tmp),
                                                      compress=False)
    table = price_table(measured["lambda"], measured["container"], args.rps)
    memory, why = choose_memory(table["rows"])
    for mode, m in measured.items():
        print(f"{mode}: {m['cpu_ms_per_request']:.2f} ms CPU ({m['critical_cpu_ms_per_request']:.2f} ms on the "
              f"critical path: {m['cpu_ms_before_provider']:.2f} before the provider's call, "
              f"{m['cpu_ms_after_last_token']:.2f} after its last token; {m['cpu_ms_while_generating']:.2f} "
              f"while it generated, the rest outside requests), peak {m['peak_rss_mb']:.0f} MB, "
              f"{m['read_units_per_request']:.2f} RRU + {m['write_units_per_request']:.2f} WRU, "
              f"{m['log_bytes_per_request']:.0f} log bytes, {m['egress_bytes_per_request']:.0f} bytes out per request "
              f"({m['recorded']} recorded, {m['statuses']})")
    print(f"\n| option | {' | '.join(f'$/M at {s:g} s' for s in STREAM_SECONDS)} | share of model cost "
          f"(typical {TYPICAL['stream_s']:g} s answer) |")
    print("|---|" + "---:|" * (len(STREAM_SECONDS) + 1))
    for row in table["rows"]:
        if row.get("memory_mb") not in (None, memory, DEFAULT_LAMBDA_MEMORY_MB, *SHOWN_SIZES_MB):
            continue
        label = row["option"] + ("" if row["fits"] else " (does not fit)") \
            + (" (CPU over budget)" if row.get("cpu_ms_stretched", 0) > CPU_BUDGET_MS else "") \
            + (" (default)" if row.get("memory_mb") == DEFAULT_LAMBDA_MEMORY_MB else "")
        cells = " | ".join(f"${row[f'{s:g}s']:,.2f}" for s in STREAM_SECONDS)
        print(f"| {label} | {cells} | {row['typical_share_of_model']:.1%} |")
    plain, zipped = measured["container-uncompressed"], measured["container"]
    compression = {"cpu_ms_per_request": zipped["cpu_ms_per_request"] - plain["cpu_ms_per_request"],
                   "egress_bytes_uncompressed": plain["egress_bytes_per_request"],
                   "egress_bytes_compressed": zipped["egress_bytes_per_request"]}
    print(f"\ngzip (container, per request): {compression['egress_bytes_uncompressed']:,.0f} -> "
          f"{compression['egress_bytes_compressed']:,.0f} bytes out, "
          f"{compression['cpu_ms_per_request']:+.2f} ms CPU")
    model_per_million = _model_usd() * 1e6
    egress = measured["lambda"]["egress_bytes_per_request"] / BYTES_PER_GB * AWS_PRICES["internet-egress-gb"].usd
    zipped_egress = zipped["egress_bytes_per_request"] / BYTES_PER_GB * AWS_PRICES["internet-egress-gb"].usd
    print(f"model cost of the typical answer: ${model_per_million:,.2f} per million requests; the answers' bytes "
          f"out to the internet cost ${egress * 1e6:,.2f} per million on Lambda (not compressed: "
          f"{egress / _model_usd():.1%} of the model's cost) and ${zipped_egress * 1e6:,.2f} in a container "
          f"(gzip: {zipped_egress / _model_usd():.1%})")
    print(f"Lambda memory these figures choose: {memory} MB: {why}")
    if memory != DEFAULT_LAMBDA_MEMORY_MB:
        print(f"  (the configured default is {DEFAULT_LAMBDA_MEMORY_MB} MB: the goal is judged on it; the CPU a "
              "request takes varies from run to run on a shared machine, and with it the smallest size within "
              "the CPU budget)")
    # the goal is the default deployment's: the memory size the config defaults to
    default = next(r for r in table["rows"] if r.get("memory_mb") == DEFAULT_LAMBDA_MEMORY_MB)
    container = next(r for r in table["rows"] if r["option"].startswith("container"))
    goals = {"egress_share": egress / _model_usd(), "lambda_default_share": default["typical_share_of_model"],
             "lambda_goal_met": default["typical_share_of_model"] <= LAMBDA_GOAL,
             "container_share": container["typical_share_of_model"],
             "container_goal_met": container["typical_share_of_model"] <= CONTAINER_GOAL}
    print(f"goals: Lambda {DEFAULT_LAMBDA_MEMORY_MB} MB at {goals['lambda_default_share']:.1%} of model cost "
          f"({'met' if goals['lambda_goal_met'] else 'MISSED'}, goal <= {LAMBDA_GOAL:.0%}); container at "
          f"{args.rps:g} rps {goals['container_share']:.2%} ({'met' if goals['container_goal_met'] else 'MISSED'}, "
          f"goal <= {CONTAINER_GOAL:.0%})")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"measured": measured, "typical": TYPICAL, "table": table,
                                   "chosen_memory_mb": memory, "default_memory_mb": DEFAULT_LAMBDA_MEMORY_MB,
                                   "why": why, "goals": goals,
                                   "compression": compression}, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
