"""``tierup killswitch`` and ``tierup budgets`` against moto server: plan first, apply on
confirmation, every step audited; release restores the gateway's concurrency."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

from functions.adapters.dynamodb.guardrails import DynamoGuardrailStore
from functions.core.tables import STATE
from tierup.cli import app

from ..support import EXAMPLE_CONFIG
from .test_killswitch_handler import _concurrency, _gateway_function


@pytest.fixture
def cli(tmp_path, monkeypatch, make_runtime, moto_endpoint):
    runtime = make_runtime()
    config_file = tmp_path / "tierup.toml"
    text = EXAMPLE_CONFIG.read_text().replace('project = "tierup"', f'project = "{runtime.config.project}"', 1)
    config_file.write_text(text)
    function = f"tierup-cli-gateway-{time.time_ns()}"
    _gateway_function(moto_endpoint, function, concurrency=20)
    monkeypatch.setenv("TIERUP_AWS_ENDPOINT", moto_endpoint)
    monkeypatch.setenv("TIERUP_GATEWAY_FUNCTION_NAME", function)
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, [*args, "--config", str(config_file)])
        assert result.exit_code == code, result.output
        return result.output

    store = DynamoGuardrailStore(runtime.dynamodb, runtime.table(STATE))
    return type("Cli", (), {"run": staticmethod(run), "store": store, "function": function,
                            "endpoint": moto_endpoint})


def test_engage_status_budgets_release(cli):
    assert "no kill switch is engaged" in cli.run("killswitch", "status")

    plan = cli.run("killswitch", "engage", "--scope", "route:chat", "--action", "hard-stop", "--dry-run")
    assert "engage-flag" in plan and "stop-gateway" in plan and f"reserved concurrency of {cli.function} to 0" in plan
    assert cli.store.flags() == [] and _concurrency(cli.endpoint, cli.function) == 20

    applied = cli.run("killswitch", "engage", "--scope", "route:chat", "--action", "hard-stop",
                      "--reason", "runaway retry loop", "--yes")
    assert "done" in applied and "skipped" in applied  # no Modal token here: the GPU step says so
    [flag] = cli.store.flags()
    assert (flag.scope, flag.action, flag.reason, flag.until) == ("route:chat", "hard-stop", "runaway retry loop", None)
    assert _concurrency(cli.endpoint, cli.function) == 0

    status = cli.run("killswitch", "status")
    assert "ENGAGED" in status and "runaway retry loop" in status and "reserved concurrency 0" in status
    assert "stop-gateway" in status  # the audit trail

    budgets = cli.run("budgets")
    assert "route:chat" in budgets and "$500.00" in budgets and "$40.00" in budgets and "hard-stop" in budgets

    cli.run("killswitch", "release", "--scope", "route:chat", "--yes")
    assert cli.store.flags() == []
    assert _concurrency(cli.endpoint, cli.function) is None  # [gateway] reserved-concurrency unset: unreserved
    assert "nothing to do" in cli.run("killswitch", "release", "--scope", "route:chat", "--yes")


def test_bad_scope_and_action_exit_2(cli):
    assert "invalid scope" in cli.run("killswitch", "engage", "--scope", "route:nope", "--yes", code=2)
    assert "unknown action" in cli.run("killswitch", "engage", "--action", "explode", "--yes", code=2)


def test_status_shows_drift_between_the_flags_and_the_gateway(cli):
    """A deploy or a person lifted a hard stop: the flag says stopped, the gateway serves."""
    import boto3

    cli.run("killswitch", "engage", "--scope", "global", "--action", "hard-stop", "--yes")
    assert "DRIFT" not in cli.run("killswitch", "status")
    boto3.client("lambda", endpoint_url=cli.endpoint, region_name="us-east-1").delete_function_concurrency(
        FunctionName=cli.function)
    lifted = cli.run("killswitch", "status")
    assert "DRIFT" in lifted and "hard stop is engaged (global)" in lifted and "unreserved" in lifted
    assert "killswitch engage --scope global --action hard-stop" in lifted
    cli.run("killswitch", "engage", "--scope", "global", "--action", "hard-stop", "--yes")  # the fix it names
    assert _concurrency(cli.endpoint, cli.function) == 0 and "DRIFT" not in cli.run("killswitch", "status")

    cli.store.delete_flag("global")  # the opposite: stopped, and no hard stop engaged
    stopped = cli.run("killswitch", "status")
    assert "DRIFT" in stopped and "killswitch release --scope global" in stopped

