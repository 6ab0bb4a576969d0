"""``tierup batches list | show | cancel`` against moto server, after a batch ran through the gateway."""

from __future__ import annotations

from typer.testing import CliRunner

from functions.gateway.composition import build_gateway
from tierup.cli import app
from tierup.local_stack import create_key

from ..support import cli_config, openai_client
from .test_batch_api import WORKER, chat_line, jsonl, wait_for


def test_batches_list_show_and_cancel(tmp_path, monkeypatch, make_runtime, serve, moto_endpoint):
    runtime = make_runtime(environ=WORKER)
    client = openai_client(serve(build_gateway(runtime)), create_key(runtime, "acme", "pro"))
    uploaded = client.files.create(file=("in.jsonl", jsonl([chat_line(f"r{n}", "x") for n in range(4)])),
                                   purpose="batch")
    batch = wait_for(client, client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                                   completion_window="24h").id)
    config_file = cli_config(tmp_path, runtime, monkeypatch, moto_endpoint)
    runner = CliRunner()

    listed = runner.invoke(app, ["batches", "list", "--tenant", "acme", "--config", str(config_file)])
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if batch.id in line)
    assert "completed" in row and "/v1/chat/completions" in row

    shown = runner.invoke(app, ["batches", "show", batch.id, "--tenant", "acme", "--config", str(config_file)])
    assert shown.exit_code == 0, shown.output
    assert "4/4 lines, 0 failed" in shown.output and "100%" in shown.output
    assert batch.output_file_id in shown.output

    other = runner.invoke(app, ["batches", "show", batch.id, "--tenant", "globex", "--config", str(config_file)])
    assert other.exit_code == 1

    done = runner.invoke(app, ["batches", "cancel", batch.id, "--tenant", "acme", "--config", str(config_file)])
    assert done.exit_code == 0 and "nothing to cancel" in done.output
