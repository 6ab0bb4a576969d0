"""The gateway prices itself: each ledger record carries the AWS units serving it used, as the
DynamoDB adapters counted them from moto's ``ConsumedCapacity`` answers, and their price.

The gateway runs under uvicorn on moto as on Lambda at 512 MB (``AWS_LAMBDA_FUNCTION_MEMORY_SIZE``)
with EMF lines on; a second hook on the same client adds up every unit moto reported, on its own.
Every unit lands in exactly one ledger record (work shared by many requests, such as a ledger
flush, on the next record made), so the records plus what is still unattributed add up to it.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

import boto3
import openai
import pytest

from functions.adapters.dynamodb.ledger_records import DynamoLedgerRecords
from functions.core.gateway_cost import GatewayUnits, gateway_cost_usd, lambda_gb_seconds
from functions.core.tables import USAGE
from functions.gateway.composition import build_gateway
from tierup.local_stack import GatewayServer, create_key

from ..support import openai_client

MEMORY_MB = 512


def _independent_units(client) -> dict:
    """Every request unit moto reports to ``client``, added up without the gateway's code."""
    seen = {"units": 0.0, "calls": 0}

    def add(parsed=None, model=None, **_) -> None:
        consumed = (parsed or {}).get("ConsumedCapacity")
        if isinstance(consumed, dict):
            consumed = [consumed]
        for table in consumed or []:
            seen["units"] += float(table.get("CapacityUnits", 0.0))
        if (parsed or {}).get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            seen["units"] += 1.0
        seen["calls"] += 1

    client.meta.events.register("after-call.dynamodb", add)
    return seen


@pytest.fixture
def metered(make_runtime, moto_endpoint, capsys):
    runtime = make_runtime(environ={"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(MEMORY_MB), "TIERUP_EMF": "stdout"})
    app = build_gateway(runtime)
    seen = _independent_units(runtime.dynamodb())
    key = create_key(runtime, "acme", "pro")
    server = GatewayServer(app).start()
    try:
        yield runtime, server, key, seen
    finally:
        server.stop()


def _ledger(runtime, moto_endpoint) -> list:
    # a client of its own: reading the ledger must not count toward what is being checked
    client = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    return DynamoLedgerRecords(lambda: client, runtime.table(USAGE)).day("acme", day)


def test_ledger_gateway_units_equal_the_units_dynamodb_reported(metered, moto_endpoint):
    runtime, server, key, seen = metered
    client = openai_client(server.url, key)
    client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}], temperature=0)
    stream = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "a story"}],
                                            stream=True, stream_options={"include_usage": True})
    assert any(chunk.usage for chunk in stream)
    client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}], temperature=0)
    with pytest.raises(openai.AuthenticationError):  # never reaches the ledger: its units go to the next
        openai_client(server.url, "sk-unknown").chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hi"}])
    client.embeddings.create(model="embed", input="hello")
    server.stop()  # the last flush writes every record
    meter = runtime.aws.meter
    unattributed = meter.unattributed()
    entries = _ledger(runtime, moto_endpoint)

    assert len(entries) == 4 and seen["calls"] > 0
    counted = sum(e.read_units + e.write_units for e in entries) + unattributed.read_units + unattributed.write_units
    assert counted == pytest.approx(seen["units"])
    assert entries[0].read_units > 0  # the API key's first lookup (later ones hit the in-process cache)
    assert sum(e.write_units for e in entries) + unattributed.write_units > 0  # the flushes' pages and aggregates
    for entry in entries:
        units = GatewayUnits(entry.gateway_invocations, entry.gateway_gb_seconds, entry.read_units,
                             entry.write_units, entry.log_bytes, entry.egress_bytes)
        assert entry.gateway_cost_usd == pytest.approx(gateway_cost_usd(units, meter.arch))
        assert entry.gateway_invocations >= 1  # its own, plus the unauthenticated one's for the next
    assert sum(e.gateway_invocations for e in entries) + unattributed.invocations == 5
    # each invocation's whole duration is billed: its time up to its entry there, the rest on the next
    billed = sum(e.gateway_gb_seconds for e in entries) + unattributed.gb_seconds
    assert billed >= sum(lambda_gb_seconds(e.latency_ms, MEMORY_MB) for e in entries)
    assert all(e.gateway_gb_seconds > 0 for e in entries)
    assert sum(e.log_bytes for e in entries) + unattributed.log_bytes > 0  # the EMF lines written so far
    # the answers' bytes (a JSON answer is sent after its record is made: on the next one)
    assert sum(e.egress_bytes for e in entries) + unattributed.egress_bytes > 1000


def test_off_lambda_no_invocation_is_billed_and_storage_still_is(make_runtime, serve):
    runtime = make_runtime()  # no AWS_LAMBDA_FUNCTION_MEMORY_SIZE: a container or a laptop
    url = serve(build_gateway(runtime))
    key = create_key(runtime, "acme", "pro")
    openai_client(url, key).chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
    deadline = time.monotonic() + 5
    records = []
    while not records and time.monotonic() < deadline:  # the background flush writes it
        time.sleep(0.1)
        records = DynamoLedgerRecords(runtime.dynamodb, runtime.table(USAGE)).day(
            "acme", datetime.now(timezone.utc).strftime("%Y-%m-%d"))
    assert records and records[0].gateway_invocations == 0 and records[0].gateway_gb_seconds == 0
    assert records[0].read_units > 0 and records[0].gateway_cost_usd > 0


def test_usage_shows_gateway_cost_apart_and_costs_prices_each_hosting(tmp_path, monkeypatch, make_runtime,
                                                                      moto_endpoint):
    from typer.testing import CliRunner

    from tierup.cli import app

    from ..support import cli_config

    runtime = make_runtime(environ={"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256"})
    key = create_key(runtime, "acme", "pro")
    with GatewayServer(build_gateway(runtime)) as server:  # stopping it flushes the ledger
        client = openai_client(server.url, key)
        for n in range(3):
            client.chat.completions.create(model="chat", messages=[{"role": "user", "content": f"hello {n}"}])
    config_file = cli_config(tmp_path, runtime, monkeypatch, moto_endpoint)
    runner = CliRunner()

    usage = runner.invoke(app, ["usage", "--route", "chat", "--config", str(config_file)])
    assert usage.exit_code == 0, usage.output
    row = next(line for line in usage.output.splitlines() if "route:chat" in line)
    model, gpu, gateway = (float(cell.strip().lstrip("$")) for cell in row.split("│")[7:10])
    assert model > 0 and gpu == 0 and gateway > 0

    costs = runner.invoke(app, ["costs", "--config", str(config_file)])
    assert costs.exit_code == 0, costs.output
    assert "3 requests" in costs.output
    for option in ("lambda", "container", "lambda-managed"):
        assert any(line.strip("│ ").startswith(option) for line in costs.output.splitlines()), option
    assert "container pays from" in costs.output
