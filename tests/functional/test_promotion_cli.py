"""``tierup load`` and ``tierup status`` against a running gateway on moto server."""

from __future__ import annotations

from typer.testing import CliRunner

from functions.adapters.dynamodb.route_table import DynamoPolicyJournal, DynamoRouteTable
from functions.core.route_table import RouteEntry
from functions.core.tables import STATE, USAGE
from functions.gateway.composition import build_gateway
from tests.support import EXAMPLE_CONFIG
from tierup.cli import app
from tierup.local_stack import create_key

CONFIG_ARGS = ["-c", str(EXAMPLE_CONFIG)]


def test_load_drives_the_route_and_counts_tiers(make_runtime, serve):
    runtime = make_runtime()
    url = serve(build_gateway(runtime))
    key = create_key(runtime, "acme", "pro")
    result = CliRunner().invoke(app, ["load", "--rate", "20", "--duration", "1", "--route", "chat",
                                      "--base-url", f"{url}/v1", "--api-key", key], terminal_width=200)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "serverless" in line and "│" in line)
    assert 18 <= int(row.split("│")[2]) <= 21, result.output  # 20 req/s for 1 s, all on serverless
    assert "error" not in result.output, result.output


def test_load_without_a_key_says_how_to_get_one():
    result = CliRunner().invoke(app, ["load", "--duration", "0.1"], env={"OPENAI_API_KEY": ""})
    assert result.exit_code == 2 and "OPENAI_API_KEY" in result.output


def test_status_shows_tier_replicas_warm_up_and_the_latest_reason(make_runtime):
    runtime = make_runtime()
    state = runtime.table(STATE)
    table = DynamoRouteTable(runtime.dynamodb, state)
    table.write_route(RouteEntry("chat", tier="reserved", replicas=1, target_replicas=2, max_in_flight=64,
                                 warming_since_s=1.0, updated_s=1.0))
    DynamoPolicyJournal(runtime.dynamodb, state).record_decision("chat", 1_800_000_000.0, {
        "reason": "Raising reserved replicas 1->2: busy.",
        "decision": {"forecast_rps": 12.5, "projected_cost_usd_per_hour": 3.9}})
    env = {"TIERUP_AWS_ENDPOINT": runtime.environ["TIERUP_AWS_ENDPOINT"], "TIERUP_TABLE_STATE": state,
           "TIERUP_TABLE_USAGE": runtime.table(USAGE), "COLUMNS": "200"}
    result = CliRunner().invoke(app, ["status", *CONFIG_ARGS], env=env, terminal_width=200)
    assert result.exit_code == 0, result.output
    chat = next(line for line in result.output.splitlines() if "│ chat " in line)
    cells = [cell.strip() for cell in chat.split("│")[1:-1]]
    assert cells[:3] == ["chat", "reserved", "1/2"] and cells[3].startswith("2 for")
    assert cells[6:] == ["12.50", "$3.900"]
    summarize = next(line for line in result.output.splitlines() if "│ summarize " in line)
    assert "serverless" in summarize and "0/0" in summarize
    assert "chat: Raising reserved replicas 1->2: busy." in result.output
