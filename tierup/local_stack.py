"""The local stack: moto in server mode as the AWS endpoint, the tables, and the gateway under
uvicorn, all on 127.0.0.1. ``tierup dev`` and the functional tests both run on this."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

from functions.adapters.dynamodb.keys import DynamoKeyStore
from functions.adapters.dynamodb.tables import create_all_tables
from functions.core.keys import ApiKeyRecord, generate_api_key, hash_api_key
from functions.core.tables import KEYS

LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                     "AWS_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _OneCallAtATime:
    """WSGI middleware that lets moto handle one AWS call at a time.

    moto's backends are not safe under concurrent calls: two conditional updates of one DynamoDB
    item can both pass their condition and one increment is lost (16 threads x 100 ``ADD 1``
    end below 1600). DynamoDB applies each write atomically, and quotas and spend caps rely on
    it, so the local endpoint must too.
    """

    def __init__(self, app) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self._lock:
            return list(self._app(environ, start_response))  # the body too is built under the lock


@contextmanager
def moto_server(port: int | None = None):
    """Yield the endpoint URL of a moto server on loopback; stop it on exit."""
    import logging

    from moto.server import DomainDispatcherApplication, MotoRequestHandler, ThreadedMotoServer, create_backend_app
    from werkzeug.serving import make_server

    class AtomicMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = _OneCallAtATime(DomainDispatcherApplication(create_backend_app))
            self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per AWS call
    _plain_notation_for_moto_sums()
    _write_units_as_dynamodb_bills_them()
    port = port or free_port()
    server = AtomicMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _wait_for_port(port: int, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with {process.returncode}")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("moto server did not start")


def start_moto_process(port: int | None = None, timeout_s: float = 60.0) -> tuple[str, subprocess.Popen]:
    """moto server (as ``moto_server`` makes it) in a process of its own, so that it can be
    killed (SIGKILL) or frozen (SIGSTOP) while a gateway uses it: ``(endpoint, process)``."""
    port = port or free_port()
    process = subprocess.Popen([sys.executable, "-m", "tierup.local_stack", str(port)],
                               env={**os.environ, **LOCAL_CREDENTIALS},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, process, timeout_s)
    except BaseException:
        stop_moto_process(process)
        raise
    return f"http://127.0.0.1:{port}", process


def stop_moto_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGCONT)  # a frozen process would not die of anything but SIGKILL
        process.kill()
    process.wait(timeout=10)


def _plain_notation_for_moto_sums() -> None:
    """moto keeps the result of a numeric ``ADD`` as ``str(Decimal)``, so a counter that returns
    to zero is stored as ``0E-8``, which its next ``ADD`` cannot parse (a 500). DynamoDB has no
    such limit; normalise moto's results to plain notation so the stand-in behaves like it."""
    from decimal import Decimal

    from moto.dynamodb.models.dynamo_type import DynamoType

    if getattr(DynamoType, "_plain_sums", False):
        return
    for name in ("__add__", "__sub__"):
        def plain(self, other, _original=getattr(DynamoType, name)):
            result = _original(self, other)
            if "E" in result.value or "e" in result.value:
                result.value = format(Decimal(result.value), "f")
            return result

        setattr(DynamoType, name, plain)
    DynamoType._plain_sums = True


def _write_units_as_dynamodb_bills_them() -> None:
    """moto answers every ``UpdateItem`` with 0.5 consumed units; DynamoDB bills a write one unit
    per KB of the larger of the item's before and after images, and at least one. Answer as
    DynamoDB bills, so the write units the gateway meters on moto (its ledger, ``tierup dev``,
    ``bench/gateway_cost.py``) are those AWS would charge."""
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler, "_billed_write_units", False):
        return
    original = DynamoHandler.update_item

    def size(handler) -> int:
        try:
            item = handler.dynamodb_backend.get_item(handler.body["TableName"], handler.body["Key"])
        except Exception:  # no such table or key: moto's own answer (an error) follows
            return 0
        return item.size() if item is not None else 0

    def update_item(self):
        before = size(self)
        result = original(self)
        consumed = result.result.get("ConsumedCapacity") if isinstance(result.result, dict) else None
        if consumed is not None:
            consumed["CapacityUnits"] = float(max(1, math.ceil(max(before, size(self)) / 1024)))
        return result

    DynamoHandler.update_item = update_item
    DynamoHandler._billed_write_units = True


def prepare_tables(runtime) -> dict[str, str]:
    """The tables, and the batch bucket and queues (their names go into the runtime's environment)."""
    from functions.batch.wiring import create_local_batch_resources

    names = create_all_tables(runtime.dynamodb(), runtime.config.project, runtime.environ)
    create_local_batch_resources(runtime)
    return names


def create_key(runtime, tenant_id: str, plan: str, label: str = "") -> str:
    """Create an API key for ``tenant_id`` on ``plan``; return the key (shown once, never stored).
    Raises ValueError for a reserved tenant id."""
    from functions.core.cache.keys import reserved_tenant_id

    reason = reserved_tenant_id(tenant_id)
    if reason:
        raise ValueError(reason)
    key = generate_api_key()
    store = DynamoKeyStore(runtime.dynamodb, runtime.table(KEYS))
    store.put(ApiKeyRecord(key_hash=hash_api_key(key), tenant_id=tenant_id, plan=plan,
                           created_at=int(time.time()), label=label))
    return key


def create_alert_topic(runtime) -> str:
    """The budget-alert SNS topic on the local endpoint; sets ``TIERUP_ALERT_TOPIC_ARN`` on the runtime."""
    from functions.guardrails.wiring import ALERT_TOPIC_ENV

    arn = runtime.aws.client("sns").create_topic(Name=f"{runtime.config.project}-alerts")["TopicArn"]
    runtime.environ[ALERT_TOPIC_ENV] = arn
    return arn


class GatewayServer:
    """The gateway under uvicorn in a background thread (tests, benchmarks, ``tierup dev``)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int | None = None, log_level: str = "warning"):
        import uvicorn

        self.port = port or free_port()
        self.url = f"http://{host}:{self.port}"
        config = uvicorn.Config(app, host=host, port=self.port, log_level=log_level, lifespan="on",
                                access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True, name="gateway")

    def start(self, timeout_s: float = 30.0) -> "GatewayServer":
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> "GatewayServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":  # ``python -m tierup.local_stack PORT``: moto server until killed
    with moto_server(int(sys.argv[1])):
        threading.Event().wait()
