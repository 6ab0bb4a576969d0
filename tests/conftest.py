"""Shared fixtures. Functional tests run on real local servers: moto in server mode as the AWS
endpoint and the gateway under uvicorn, both on 127.0.0.1, called with the official openai SDK."""

from __future__ import annotations

import os

import pytest

from tierup.local_stack import LOCAL_CREDENTIALS, GatewayServer, create_key, moto_server, prepare_tables

from .support import make_config


@pytest.fixture(scope="session")
def moto_endpoint():
    saved = {name: os.environ.get(name) for name in LOCAL_CREDENTIALS}
    os.environ.update(LOCAL_CREDENTIALS)
    with moto_server() as endpoint:
        yield endpoint
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def make_runtime(moto_endpoint):
    """Build a Runtime on moto with fresh tables: ``make_runtime(overrides_dict)``."""
    from functions.gateway.composition import Runtime

    def build(overrides: dict | None = None, *, fast: bool = True, environ: dict | None = None) -> Runtime:
        env = {**os.environ, "TIERUP_AWS_ENDPOINT": moto_endpoint, "TIERUP_PROVIDER": "simulated",
               **(environ or {})}
        runtime = Runtime(config=make_config(overrides, fast=fast), environ=env)
        prepare_tables(runtime)
        return runtime

    return build


@pytest.fixture
def serve():
    """Start the gateway for a runtime under uvicorn: ``url = serve(app)``; stopped after the test."""
    servers: list[GatewayServer] = []

    def start(app) -> str:
        server = GatewayServer(app).start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def gateway(make_runtime, serve):
    """A running gateway on the example config with one key for tenant ``acme`` on plan ``pro``."""
    from functions.gateway.composition import build_gateway

    runtime = make_runtime()
    url = serve(build_gateway(runtime))
    key = create_key(runtime, "acme", "pro")
    return type("Gateway", (), {"url": url, "key": key, "runtime": runtime})


@pytest.fixture
def no_fail_fast_window(monkeypatch):
    """For tests that bring a store back at once: the fail-fast window after a store's failed
    call (``functions/adapters/store_calls.py``, tested in tests/unit/test_store_calls.py) would
    hold back the first call after recovery, which is not what those tests are about."""
    from functions.adapters import store_calls

    monkeypatch.setattr(store_calls, "FAIL_FAST_S", 0.0)
