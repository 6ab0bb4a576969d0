"""The gateway's Lambda bundle, built for real and run alone: proof that it holds everything it
imports, and that its bytecode is what the runtime's Python loads.

The bundle is built as ``cdk synth`` builds it (the lock, installed with pip's hash checking;
bytecode compiled by the runtime's Python version) but with wheels for this machine's
architecture, so it can run here. Then ``run.sh`` starts it as Lambda Web Adapter does, with a
``python`` that is the runtime's version without ``site`` (no site-packages: the bundle directory
is all it has), moto server as its DynamoDB, and the simulated model as its provider; the
official openai SDK calls it. Skipped, saying why, where this machine has no such Python (see
``infra/bundle_python.py`` for where it is looked for). Needs the package index or pip's cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from functions.core.errors import DeployError
from infra.bundle_python import find_bundle_python
from infra.bundling import PYTHON_VERSION, LocalPythonBundler, host_wheel_platforms
from tests.support import ROOT

from .conftest import config_variant

pytestmark = pytest.mark.timeout(600)

#: what the Lambda bundle used to carry and never imports (the openai SDK, uvicorn[standard]'s rest)
NEVER_IMPORTED = {"openai", "websockets", "watchfiles", "dotenv", "yaml"}


@pytest.fixture(scope="module")
def bundle_python() -> list[str]:
    if sys.platform != "linux":
        pytest.skip("bundle smoke test skipped: the bundle's Linux wheels run only on Linux")
    try:
        return find_bundle_python(PYTHON_VERSION)
    except DeployError as exc:
        pytest.skip(f"bundle smoke test skipped: {exc.message}")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, bundle_python) -> Path:
    """The gateway's bundle of a deployed config whose serverless tier is the simulated model (and
    whose project name no other test uses, as moto server is shared)."""
    work = tmp_path_factory.mktemp("bundle-smoke")
    config = config_variant(work, {'project = "tierup"': 'project = "bundlesmoke"',
                                   'provider = "bedrock"\nregion = "us-east-1"': 'provider = "simulated"'})
    out = work / "bundle"
    out.mkdir()
    LocalPythonBundler(ROOT, config, python_command=bundle_python,
                       wheel_platforms=host_wheel_platforms()).try_bundle(str(out))
    return out


def _bytecode(bundle: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in bundle.rglob("*.pyc")}


def _wait_for_health(url: str, process: subprocess.Popen, deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the bundle's gateway exited ({process.returncode}):\n{process.stdout.read()}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    pytest.fail("the bundle's gateway never answered /health")


def _stdlib_only_python(bin_dir: Path, bundle_python: list[str]) -> Path:
    """A ``python`` (in ``bin_dir``, for PATH) that is the runtime's version minus ``site``, as
    Lambda's and the image's are: nothing importable but the bundle and the standard library."""
    bin_dir.mkdir()
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{bundle_python[0]}" -s -S "$@"\n')
    (bin_dir / "python").chmod(0o755)
    return bin_dir


@contextmanager
def _serving(command: list[str], env: dict, cwd: Path, port: int) -> Iterator[str]:
    """Run the gateway as ``command`` and yield its URL once it answers /health; stopped at the end
    (SIGTERM, killed if it does not stop within 10 s)."""
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for_health(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _client_answering_json(url: str, key: str):
    """The official openai SDK on ``url``, once it got a JSON completion from the simulated model."""
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30)
    answer = client.chat.completions.create(model="chat", max_tokens=16,
                                            messages=[{"role": "user", "content": "Say hi."}])
    assert answer.choices[0].message.content.startswith("[simulated]")
    assert answer.usage.completion_tokens > 0
    return client


def test_bundle_carries_only_what_lambda_imports(bundle):
    top_level = {path.name for path in bundle.iterdir()}
    assert not NEVER_IMPORTED & top_level
    assert {"functions", "uvicorn", "uvloop", "httptools", "tierup.toml", "run.sh"} <= top_level


def test_bundle_alone_answers_health_and_chat_without_compiling_anything(bundle, bundle_python,
                                                                         moto_endpoint, tmp_path):
    from functions.core.config import load_config
    from functions.gateway.composition import Runtime
    from tierup.local_stack import LOCAL_CREDENTIALS, create_key, free_port, prepare_tables

    env = {**LOCAL_CREDENTIALS, "TIERUP_CONFIG": str(bundle / "tierup.toml"),
           "TIERUP_AWS_ENDPOINT": moto_endpoint}
    runtime = Runtime(config=load_config(bundle / "tierup.toml"), environ=env)
    prepare_tables(runtime)
    key = create_key(runtime, "smoke", "pro")

    bin_dir = _stdlib_only_python(tmp_path / "bin", bundle_python)  # Lambda's python, as run.sh calls it
    port = free_port()
    process_env = {**env, "PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin", "HOME": str(tmp_path),
                   "LAMBDA_TASK_ROOT": str(bundle), "PORT": str(port), "PYTHONUNBUFFERED": "1"}
    compiled = _bytecode(bundle)
    with _serving([str(bundle / "run.sh")], process_env, tmp_path, port) as url:
        _client_answering_json(url, key)
    # Every module the gateway loaded had valid bytecode of the runtime's version: a missing,
    # stale or other-version pyc would have been written now (here /var/task is writable).
    assert _bytecode(bundle) == compiled


def test_bundle_zip_serves_as_a_container_task_starts_it(bundle, bundle_python, moto_endpoint, tmp_path):
    """``[gateway] hosting = "container"``: the same bundle, zipped as its CDK asset is, unpacked and
    started by the task's own command (infra/container_start.py) with the task's settings, answers
    a JSON and a streamed completion."""
    import shutil

    from functions.core.config import load_config
    from functions.gateway.composition import Runtime
    from infra.container_start import start_command, uvicorn_environment
    from tierup.local_stack import LOCAL_CREDENTIALS, create_key, free_port, prepare_tables

    archive = shutil.make_archive(str(tmp_path / "gateway"), "zip", root_dir=bundle)
    task_root = tmp_path / "task"
    config = load_config(bundle / "tierup.toml")
    env = {**LOCAL_CREDENTIALS, "TIERUP_CONFIG": str(task_root / "tierup.toml"), "TIERUP_AWS_ENDPOINT": moto_endpoint}
    runtime = Runtime(config=config, environ={**env, "TIERUP_CONFIG": str(bundle / "tierup.toml")})
    prepare_tables(runtime)
    key = create_key(runtime, "smoke", "pro")
    bin_dir = _stdlib_only_python(tmp_path / "bin", bundle_python)  # the image's python
    port = free_port()
    process_env = {**env, **uvicorn_environment(config, host="127.0.0.1"), "PORT": str(port),
                   "PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin", "HOME": str(tmp_path),
                   "LAMBDA_TASK_ROOT": str(task_root), "PYTHONUNBUFFERED": "1"}
    with _serving(["sh", "-c", start_command(archive, str(task_root))], process_env, tmp_path, port) as url:
        client = _client_answering_json(url, key)
        chunks = list(client.chat.completions.create(model="chat", max_tokens=16, stream=True,
                                                     messages=[{"role": "user", "content": "Say hi."}]))
        assert len(chunks) > 2
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).startswith("[simulated]")
