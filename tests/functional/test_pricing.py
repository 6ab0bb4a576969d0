"""Prices as a running gateway and the CLI apply them: a request is billed at the price of the
model id the route configures, whatever id the upstream reports back, and ``tierup check``
refuses a config with an unpriced model, naming the key."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from functions.adapters.dynamodb.ledger_records import DynamoLedgerRecords
from functions.core.tables import USAGE
from functions.gateway.composition import build_gateway
from tierup.cli import app
from tierup.local_stack import GatewayServer, create_key

from ..openai_upstream import USAGE as UPSTREAM_USAGE
from ..openai_upstream import ScriptedUpstream
from ..support import EXAMPLE_CONFIG, openai_client


@pytest.fixture(scope="module")
def upstream():
    server = ScriptedUpstream().start()
    yield server
    server.stop()


def test_a_request_is_billed_at_the_configured_model_s_price_not_the_reported_one(upstream, make_runtime):
    # The upstream answers as model "m" (as OpenAI answers "gpt-4o-mini-2024-07-18" for "gpt-4o-mini");
    # "m" has no price, the configured "ok" has: the bill must use "ok".
    runtime = make_runtime({"tiers": {"serverless": {"provider": "openai", "base-url": upstream.url}},
                            "routes": {"chat": {"serverless": "ok", "cache": {"exact": False, "semantic": False}}},
                            "pricing": {"models": {"ok": {"input-per-mtok": 2.0, "output-per-mtok": 8.0}}}},
                           environ={"TIERUP_PROVIDER": ""})
    key = create_key(runtime, "acme", "pro")
    with GatewayServer(build_gateway(runtime)) as server:  # stopping it flushes the ledger
        completion = openai_client(server.url, key).chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hi"}], max_tokens=8)
    assert completion.model == "chat"
    records = DynamoLedgerRecords(runtime.dynamodb, runtime.table(USAGE)).day(
        "acme", time.strftime("%Y-%m-%d", time.gmtime()))
    expected = (UPSTREAM_USAGE["prompt_tokens"] * 2.0 + UPSTREAM_USAGE["completion_tokens"] * 8.0) / 1e6
    assert [r.cost_usd for r in records] == [pytest.approx(expected)]


def test_tierup_check_refuses_an_unpriced_model_naming_the_key(tmp_path):
    config_file = tmp_path / "tierup.toml"
    text = EXAMPLE_CONFIG.read_text()
    old = '[routes.summarize]\nserverless = "us.meta.llama3-1-8b-instruct-v1:0"'
    assert old in text
    config_file.write_text(text.replace(old, '[routes.summarize]\nserverless = "us.meta.llama3-2-3b-instruct-v1:0"'))
    result = CliRunner().invoke(app, ["check", "--config", str(config_file)])
    assert result.exit_code == 2
    assert "routes.summarize.serverless" in result.output
    assert "has no price in [pricing.models]" in result.output
    assert CliRunner().invoke(app, ["check", "--config", str(EXAMPLE_CONFIG)]).exit_code == 0
