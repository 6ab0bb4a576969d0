"""``tierup usage`` against moto server, after real traffic through the gateway."""

from __future__ import annotations

from typer.testing import CliRunner

from functions.gateway.composition import build_gateway
from tierup.cli import app
from tierup.local_stack import GatewayServer, create_key

from ..support import cli_config, openai_client


def test_usage_shows_counters_against_limits_and_route_traffic(tmp_path, monkeypatch, make_runtime, moto_endpoint):
    runtime = make_runtime({"routes": {"chat": {"cache": {"exact": False, "semantic": False}}}})
    key = create_key(runtime, "acme", "free")
    with GatewayServer(build_gateway(runtime)) as server:  # stopping it flushes the ledger
        client = openai_client(server.url, key)
        for n in range(3):
            client.chat.completions.create(model="chat", max_tokens=8,
                                           messages=[{"role": "user", "content": f"hello {n}"}])
    config_file = cli_config(tmp_path, runtime, monkeypatch, moto_endpoint)
    runner = CliRunner()

    result = runner.invoke(app, ["usage", "--tenant", "acme", "--config", str(config_file)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    rpm = next(line for line in lines if "requests-per-minute" in line)
    assert "acme" in rpm and "free" in rpm and " 3 " in rpm and " 20 " in rpm and "15.0%" in rpm
    assert any("max-concurrent" in line and "in flight" in line for line in lines)
    tenant_row = next(line for line in lines if "tenant:acme" in line)
    assert tenant_row.split("│")[3].strip() == "3"  # requests today

    by_route = runner.invoke(app, ["usage", "--route", "chat", "--config", str(config_file)])
    assert by_route.exit_code == 0, by_route.output
    assert "route:chat" in by_route.output and "Quota counters" not in by_route.output

    unknown = runner.invoke(app, ["usage", "--route", "nope", "--config", str(config_file)])
    assert unknown.exit_code == 2
