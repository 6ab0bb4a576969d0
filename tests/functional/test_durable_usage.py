"""What a request owes is written before its response completes, where the host freezes the
process as soon as a response ends (Lambda).

The gateway runs as Lambda runs it (``functions/run.sh``, ``AWS_LAMBDA_FUNCTION_NAME`` set) with
the background flush pushed an hour away, so only ``durable-before-response`` can save the data.
After each response the process is frozen with SIGSTOP, as Lambda freezes it; while it is frozen,
the ledger record, the per-minute aggregates and the EMF metric line of every request answered so
far must already be written, and its tokens must count against the plan's limit. They do from
the moment they are reserved: a settle that would only move them from the instance's hold to
``settled`` waits for the next write due anyway (``QuotaLeases``, ``per_request_flush``), and a
hold whose instance never comes back is reclaimed as spent. At the end the process is killed
without a shutdown (a recycled instance): nothing was waiting for one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from bench.gateway_process import toml_text
from functions.adapters.dynamodb.ledger_records import DynamoLedgerRecords
from functions.adapters.dynamodb.usage_aggregates import DynamoUsageAggregates
from functions.core.tables import TABLES, USAGE, table_env_var
from tierup.local_stack import create_key, free_port

from ..support import FAST_SIMULATED, ROOT, example_config_data, openai_client
from .test_lambda_start_script import _wait_ready

#: the background flush never runs during the test
NO_BACKGROUND_FLUSH = {"quotas": {"flush-interval-s": 3600}}


@pytest.fixture
def frozen_after_each_response(make_runtime, moto_endpoint, tmp_path):
    runtime = make_runtime(NO_BACKGROUND_FLUSH)
    data = example_config_data() | {"simulated": FAST_SIMULATED}
    data["quotas"] = {**data.get("quotas", {}), **NO_BACKGROUND_FLUSH["quotas"]}
    config = tmp_path / "tierup.toml"
    config.write_text(toml_text(data))
    stdout = tmp_path / "stdout.log"
    port = free_port()
    env = {**os.environ,
           "PORT": str(port), "LAMBDA_TASK_ROOT": str(ROOT), "TIERUP_CONFIG": str(config),
           "AWS_LAMBDA_FUNCTION_NAME": "tierup-gateway", "PYTHONUNBUFFERED": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "TIERUP_AWS_ENDPOINT": moto_endpoint, "TIERUP_PROVIDER": "simulated",
           **{table_env_var(spec): runtime.table(spec) for spec in TABLES}}
    with open(stdout, "wb") as out:
        process = subprocess.Popen(["sh", str(ROOT / "functions" / "run.sh")], env=env, cwd="/",
                                   stdout=out, stderr=subprocess.PIPE, text=True)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(url, process)
            yield runtime, url, create_key(runtime, "acme", "pro"), process, stdout
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
                process.wait()


def _counted_tokens_today(runtime, tenant: str) -> tuple[float, float]:
    """(``used`` of the tokens-per-day counter, its ``settled`` plus what holds keep)."""
    client = runtime.dynamodb()
    items = [item for item in client.scan(TableName=runtime.table(USAGE), ConsistentRead=True)["Items"]
             if item["pk"]["S"].startswith(f"quota#{tenant}#tpd#")]
    used = sum(float(item["used"]["N"]) for item in items)
    settled_or_held = sum(float(value["N"]) for item in items for name, value in item.items()
                          if name == "settled" or name.startswith("h_"))
    return used, settled_or_held


def _emf_requests(stdout: Path) -> int:
    total = 0
    for line in stdout.read_text().splitlines():
        if line.startswith("{") and '"_aws"' in line:
            record = json.loads(line)
            per_route = [["Route"]] in (d["Dimensions"] for d in record["_aws"]["CloudWatchMetrics"])
            if per_route and "Requests" in record:  # the per-route directive (a line may carry several)
                total += int(sum(record["Requests"])) if isinstance(record["Requests"], list) \
                    else int(record["Requests"])
    return total


def test_usage_is_written_before_each_response_completes(frozen_after_each_response):
    runtime, url, key, process, stdout = frozen_after_each_response
    client = openai_client(url, key)
    table = runtime.table(USAGE)
    aggregates = DynamoUsageAggregates(runtime.dynamodb, table)
    records = DynamoLedgerRecords(runtime.dynamodb, table)
    started_minute = int(time.time() // 60)
    served_tokens = 0
    for index in range(4):
        prompt = [{"role": "user", "content": f"question {index}: how do leases work?"}]
        if index % 2:
            chunks = list(client.chat.completions.create(
                model="chat", messages=prompt, stream=True, stream_options={"include_usage": True}))
            usage = chunks[-1].usage
        else:
            usage = client.chat.completions.create(model="chat", messages=prompt).usage
        served_tokens += usage.prompt_tokens + usage.completion_tokens
        process.send_signal(signal.SIGSTOP)  # Lambda freezes the process once the response is out
        try:
            today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
            assert len(records.day("acme", today)) == index + 1
            rows = aggregates.minutes("tenant:acme", started_minute, int(time.time() // 60))
            assert sum(row.requests for row in rows) == index + 1
            assert sum(row.prompt_tokens + row.completion_tokens for row in rows) == served_tokens
            used, settled_or_held = _counted_tokens_today(runtime, "acme")
            assert used >= served_tokens and settled_or_held >= served_tokens
            assert _emf_requests(stdout) == index + 1
        finally:
            process.send_signal(signal.SIGCONT)
    process.kill()  # recycled without a shutdown: the last flush never runs
    process.wait()
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert len(records.day("acme", today)) == 4
    used, settled_or_held = _counted_tokens_today(runtime, "acme")
    assert used >= served_tokens and settled_or_held >= served_tokens
