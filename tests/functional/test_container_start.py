"""The gateway started as a container task starts it (``[gateway] hosting = "container"``): the
bundle's zip unpacked by the task's own command (infra/container_start.py), then the bundle's
``run.sh`` (the Lambda's start script) with the task's settings, as a separate process, against
moto server and the simulated model. The official openai SDK gets the same answers as from the
Lambda's start script (tests/functional/test_lambda_start_script.py): a JSON completion, a
streamed one, a 401; one connection carries several requests (the load balancer reuses its
connections); and a stream in flight when the task is told to stop (SIGTERM, after the load
balancer has drained it) still ends with its last chunk.

The zip here holds what the bundle holds of this repository (``functions/``, the config at the
root, ``run.sh``); the wheels come from this environment instead of the bundle's own (the bundle
itself, wheels and bytecode, is run by tests/infra/test_bundle_smoke.py).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from functions.core.config import load_config
from functions.core.tables import TABLES, table_env_var
from infra.container_start import start_command, uvicorn_environment
from tierup.local_stack import create_key, free_port

from ..support import EXAMPLE_CONFIG, ROOT, assert_streams_and_refuses_unknown_keys, openai_client
from .test_lambda_start_script import _wait_ready


def bundle_zip(path: Path) -> Path:
    """A zip laid out as the gateway's Lambda bundle is (infra/bundling.py)."""
    with zipfile.ZipFile(path, "w") as archive:
        for source in sorted((ROOT / "functions").rglob("*")):
            if source.is_file() and "__pycache__" not in source.parts and source.suffix in (".py", ".sh", ".json"):
                archive.write(source, f"functions/{source.relative_to(ROOT / 'functions')}")
        archive.write(EXAMPLE_CONFIG, "tierup.toml")
        archive.write(ROOT / "functions" / "run.sh", "run.sh")
    return path


@pytest.fixture
def started_as_a_task(make_runtime, moto_endpoint, tmp_path):
    runtime = make_runtime()
    port = free_port()
    task_root = tmp_path / "task"
    settings = uvicorn_environment(load_config(EXAMPLE_CONFIG), host="127.0.0.1")
    env = {**os.environ, **settings, "PORT": str(port),
           "LAMBDA_TASK_ROOT": str(task_root), "TIERUP_CONFIG": str(task_root / "tierup.toml"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "TIERUP_AWS_ENDPOINT": moto_endpoint, "TIERUP_PROVIDER": "simulated",
           **{table_env_var(spec): runtime.table(spec) for spec in TABLES}}
    env.pop("PYTHONPATH", None)  # the task's code is the unpacked bundle, not this checkout
    command = start_command(str(bundle_zip(tmp_path / "gateway.zip")), str(task_root))
    process = subprocess.Popen(["sh", "-c", command], env=env, cwd="/",
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        yield url, create_key(runtime, "acme", "pro"), process, task_root
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_task_serves_the_gateway_from_the_unpacked_bundle(started_as_a_task):
    url, key, process, task_root = started_as_a_task
    assert (task_root / "run.sh").exists() and (task_root / "functions" / "gateway" / "asgi.py").exists()
    proc = Path(f"/proc/{process.pid}")
    if proc.exists():  # run.sh exec'd uvicorn in the unpacked bundle, with the task's settings
        assert proc.joinpath("cwd").resolve() == task_root.resolve()
        argv = proc.joinpath("cmdline").read_bytes().decode().split("\0")
        settings = uvicorn_environment(load_config(EXAMPLE_CONFIG))
        assert argv[argv.index("--timeout-keep-alive") + 1] == settings["KEEP_ALIVE_S"]
        assert argv[argv.index("--timeout-graceful-shutdown") + 1] == settings["GRACEFUL_SHUTDOWN_S"]
    client = openai_client(url, key)

    answer = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "Hello"}])
    assert answer.choices[0].message.content.startswith("[simulated]")
    assert answer.usage.completion_tokens > 0

    assert_streams_and_refuses_unknown_keys(url, key)


def test_one_connection_carries_several_requests(started_as_a_task):
    """HTTP/1.1 keep-alive, as the load balancer reuses its connections to a target."""
    url, key, _, _ = started_as_a_task
    connection = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
    body = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "Hello"}]})
    for _ in range(3):
        connection.request("POST", "/v1/chat/completions", body=body,
                           headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("connection", "").lower() != "close"
        json.loads(response.read())
    connection.close()


def test_a_stream_in_flight_at_stop_ends_whole(started_as_a_task):
    url, key, process, _ = started_as_a_task
    stream = openai_client(url, key).chat.completions.create(
        model="chat", stream=True, messages=[{"role": "user", "content": "Hello"}])
    chunks = iter(stream)
    first = next(chunks)
    process.send_signal(signal.SIGTERM)  # what ECS sends once the load balancer has drained the task
    rest = list(chunks)
    assert rest and rest[-1].choices[0].finish_reason == "stop"
    text = "".join(c.choices[0].delta.content or "" for c in [first, *rest] if c.choices)
    assert text.startswith("[simulated]")
    assert process.wait(timeout=10) in (0, -signal.SIGTERM)
