"""``tierup killswitch`` for a gateway that runs in containers (``[gateway] hosting = "container"``):
no function to stop, so a hard stop is its flags alone, and ``status`` says so instead of warning
that the gateway function is unknown."""

from __future__ import annotations

from typer.testing import CliRunner

from functions.adapters.dynamodb.guardrails import DynamoGuardrailStore
from functions.core.tables import STATE
from tierup.cli import app

from ..support import EXAMPLE_CONFIG

CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0b6a8c37-1f7e-4a0e-9f3b-2c1d4e5f6a7b"


def test_a_hard_stop_of_a_container_gateway_is_its_flags(tmp_path, monkeypatch, make_runtime, moto_endpoint):
    runtime = make_runtime()
    text = EXAMPLE_CONFIG.read_text().replace('project = "tierup"', f'project = "{runtime.config.project}"', 1)
    text = text.replace("provider-timeout-s = 120\n", 'provider-timeout-s = 120\nhosting = "container"\n\n'
                        f'[gateway.container]\ncertificate-arn = "{CERTIFICATE}"\n', 1)
    config_file = tmp_path / "tierup.toml"
    config_file.write_text(text)
    monkeypatch.setenv("TIERUP_AWS_ENDPOINT", moto_endpoint)
    monkeypatch.delenv("TIERUP_GATEWAY_FUNCTION_NAME", raising=False)
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, [*args, "--config", str(config_file)])
        assert result.exit_code == 0, result.output
        return result.output

    run("killswitch", "engage", "--scope", "global", "--action", "hard-stop", "--reason", "drill", "--yes")
    [flag] = DynamoGuardrailStore(runtime.dynamodb, runtime.table(STATE)).flags()
    assert (flag.scope, flag.action) == ("global", "hard-stop")
    status = run("killswitch", "status")
    assert "ENGAGED" in status and "gateway runs in containers" in status
    assert "gateway function unknown" not in status and "DRIFT" not in status
