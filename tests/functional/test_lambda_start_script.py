"""The gateway function's start script (``functions/run.sh``, the Lambda handler under the Web
Adapter) run as Lambda runs it: a separate process, the table names and config from the
environment the CDK stack sets, answering the readiness check and a streamed chat completion
from the official openai SDK, then stopping promptly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from functions.core.tables import TABLES, table_env_var
from tierup.local_stack import create_key, free_port

from ..support import EXAMPLE_CONFIG, ROOT, assert_streams_and_refuses_unknown_keys


def _wait_ready(url: str, process: subprocess.Popen, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"run.sh exited with {process.returncode}: {process.stderr.read()}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise AssertionError("the gateway did not become ready")


@pytest.fixture
def started_by_run_sh(make_runtime, moto_endpoint):
    runtime = make_runtime()
    port = free_port()
    env = {**os.environ,
           "PORT": str(port), "LAMBDA_TASK_ROOT": str(ROOT), "TIERUP_CONFIG": str(EXAMPLE_CONFIG),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "TIERUP_AWS_ENDPOINT": moto_endpoint, "TIERUP_PROVIDER": "simulated",
           **{table_env_var(spec): runtime.table(spec) for spec in TABLES}}
    process = subprocess.Popen(["sh", str(ROOT / "functions" / "run.sh")], env=env, cwd="/",
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        yield url, create_key(runtime, "acme", "pro"), process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_run_sh_serves_the_gateway_and_streams(started_by_run_sh):
    url, key, process = started_by_run_sh
    with urllib.request.urlopen(url + "/health", timeout=5) as response:
        assert json.loads(response.read())["status"] == "ok"

    assert_streams_and_refuses_unknown_keys(url, key)

    started = time.monotonic()
    process.send_signal(signal.SIGTERM)  # what Lambda sends at shutdown; exec means uvicorn gets it
    # uvicorn shuts down gracefully, then re-raises the signal (so -SIGTERM is a clean stop)
    assert process.wait(timeout=10) in (0, -signal.SIGTERM)
    assert time.monotonic() - started < 5
    assert "Finished server process" in process.stderr.read()
