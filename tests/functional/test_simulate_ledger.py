"""``tierup simulate --from-ledger``: the deployment's own usage ledger (DynamoDB on moto) replayed."""

from __future__ import annotations

import dataclasses
import time

from typer.testing import CliRunner

from functions.adapters.dynamodb.ledger_records import DynamoLedgerRecords
from functions.core.tables import USAGE
from functions.core.usage_ledger import LedgerEntry
from functions.gateway.composition import build_gateway
from tierup.cli import app
from tierup.local_stack import GatewayServer, create_key

from ..support import cli_config, openai_client


def _entry(n: int, at: float, **changes) -> LedgerEntry:
    entry = LedgerEntry(request_id=f"r{n}", at=at, tenant_id="acme", route="chat", tier="serverless", outcome="ok",
                        status=200, error_code=None, cache_status="miss", prompt_tokens=4000, completion_tokens=50,
                        cached_tokens=0, cost_usd=0.0009, latency_ms=900.0)
    return dataclasses.replace(entry, **changes)


def test_simulate_replays_the_route_s_answered_requests_from_the_ledger(tmp_path, monkeypatch, make_runtime,
                                                                          moto_endpoint):
    runtime = make_runtime({"routes": {"chat": {"cache": {"exact": False, "semantic": False}}}})
    key = create_key(runtime, "acme", "enterprise")
    with GatewayServer(build_gateway(runtime)) as server:  # stopping it flushes the ledger
        client = openai_client(server.url, key)
        for n in range(3):
            client.chat.completions.create(model="chat", max_tokens=8,
                                           messages=[{"role": "user", "content": f"hi {n}"}])
    # half an hour of a busy route written through the ledger's own adapter, with records that
    # must not count: another route, a cache hit, a refusal
    now = time.time()
    start = now - 1900
    busy = [_entry(n, start + n * 0.5) for n in range(3600)]
    others = [_entry(90001, start, route="summarize"), _entry(90002, start + 1, cache_status="hit-exact"),
              _entry(90003, start + 2, tier=None, outcome="refused", status=429)]
    DynamoLedgerRecords(runtime.dynamodb, runtime.table(USAGE)).put_many(busy + others)

    config_file = cli_config(tmp_path, runtime, monkeypatch, moto_endpoint, columns=200)
    result = CliRunner().invoke(app, ["simulate", "--from-ledger", "--days", "2", "--route", "chat",
                                      "--config", str(config_file)])
    assert result.exit_code == 0, result.output
    assert "ledger:chat: 3,603 requests" in result.output
    for policy in ("always-serverless", "always-reserved", "reactive", "tierup", "hindsight"):
        assert policy in result.output

    other = CliRunner().invoke(app, ["simulate", "--from-ledger", "--route", "summarize", "--config",
                                     str(config_file)])
    assert other.exit_code == 0 and "ledger:summarize: 1 requests" in other.output
