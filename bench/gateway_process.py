"""The gateway as production starts it, in its own process, for benchmarks.

    uvicorn functions.gateway.asgi:app --loop uvloop --http httptools --no-access-log (one worker)

pinned to one CPU with ``taskset``, configured by a tierup.toml written from a plain dict, with
moto server (``tierup.local_stack``) as its DynamoDB, exactly as ``tierup dev`` runs it. What the
gateway wires is whatever ``build_gateway`` wires: a benchmark re-run measures the whole path as
it is then.

Benchmarks only: this module starts processes and must never be imported by ``functions/``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from tierup.local_stack import LOCAL_CREDENTIALS, free_port

ROOT = Path(__file__).resolve().parents[1]

#: how production runs the app (Lambda Web Adapter starts the same command)
UVICORN_ARGS = ["-m", "uvicorn", "functions.gateway.asgi:app", "--host", "127.0.0.1", "--loop", "uvloop",
                "--http", "httptools", "--no-access-log", "--no-server-header", "--log-level", "warning"]


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def toml_text(data: dict, prefix: tuple[str, ...] = ()) -> str:
    """``data`` as TOML (tables, scalars, arrays; ``None`` values are left out, as TOML has no null)."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items()
             if v is not None and not isinstance(v, dict)]
    tables = [k for k, v in data.items() if isinstance(v, dict)]
    header = bool(prefix) and (bool(lines) or not tables)  # an empty table still exists
    out = ([f"[{'.'.join(_toml_key(p) for p in prefix)}]"] if header else []) + lines
    text = "\n".join(out) + ("\n\n" if out else "")
    for key, value in data.items():
        if isinstance(value, dict):
            text += toml_text(value, (*prefix, key))
    return text


def gateway_environment(config_path: Path, aws_endpoint: str) -> dict[str, str]:
    env = {**os.environ, **LOCAL_CREDENTIALS, "TIERUP_CONFIG": str(config_path),
           "TIERUP_AWS_ENDPOINT": aws_endpoint, "PYTHONUNBUFFERED": "1"}
    env.pop("TIERUP_PROVIDER", None)  # the config's providers, never the simulated override
    return env


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def health_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


class GatewayProcess:
    """``with GatewayProcess(env, cpu=0) as gw:`` starts uvicorn and waits for ``/health``."""

    def __init__(self, env: dict[str, str], *, cpu: int | None = 0, port: int | None = None,
                 log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = env
        self._cpu = cpu
        self._log_path = log_path
        self._proc: subprocess.Popen | None = None
        self._log = None
        #: seconds from spawning the process to the first ``/health`` 200
        self.ready_after_s: float | None = None

    def start(self, timeout_s: float = 60.0) -> "GatewayProcess":
        pin = ["taskset", "-c", str(self._cpu)] if self._cpu is not None else []
        self._log = open(self._log_path, "wb") if self._log_path else None
        started = time.perf_counter()
        self._proc = subprocess.Popen([*pin, sys.executable, *UVICORN_ARGS, "--port", str(self.port)],
                                      cwd=ROOT, env=self._env, stdout=self._log or subprocess.DEVNULL,
                                      stderr=subprocess.STDOUT)
        while not health_ok(self.url):
            if self._proc.poll() is not None:
                raise RuntimeError(f"the gateway exited with {self._proc.returncode}"
                                   + (f"; see {self._log_path}" if self._log_path else ""))
            if time.perf_counter() - started > timeout_s:
                self.stop()
                raise RuntimeError("the gateway did not answer /health in time")
            time.sleep(0.005)
        self.ready_after_s = time.perf_counter() - started
        return self

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "GatewayProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextmanager
def kept_alive_moto_server():
    """Like ``tierup.local_stack.moto_server`` (one call at a time, units as DynamoDB bills
    them), but served over HTTP/1.1 with connections kept open between calls, as DynamoDB's
    endpoints keep them: werkzeug, which ``moto_server`` runs on, closes the connection after
    every answer, so each DynamoDB call of the gateway would pay a new TCP connection's CPU that
    it never pays on AWS (botocore reuses its pooled connections). For benchmarks that measure
    the gateway's CPU per request."""
    import warnings

    import uvicorn
    from moto.server import DomainDispatcherApplication, create_backend_app
    from uvicorn.middleware.wsgi import WSGIMiddleware

    from tierup.local_stack import _OneCallAtATime, _plain_notation_for_moto_sums, _write_units_as_dynamodb_bills_them

    _plain_notation_for_moto_sums()
    _write_units_as_dynamodb_bills_them()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # uvicorn's WSGI adapter: fine for a stand-in
        app = WSGIMiddleware(_OneCallAtATime(DomainDispatcherApplication(create_backend_app)))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                           timeout_keep_alive=60))
    thread = threading.Thread(target=server.run, name="moto-keep-alive", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("moto did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
