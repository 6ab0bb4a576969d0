"""The GPU tier's health probe against a real HTTP server on 127.0.0.1 (standing in for vLLM's
``/health``): healthy, unhealthy, unreachable and too slow."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from functions.adapters.modal_control import HttpHealthProbe


class _VllmHealth(BaseHTTPRequestHandler):
    status = 200
    delay_s = 0.0
    paths: list[str] = []

    def do_GET(self):
        type(self).paths.append(self.path)
        time.sleep(self.delay_s)
        self.send_response(self.status if self.path == "/health" else 404)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server():
    _VllmHealth.status, _VllmHealth.delay_s, _VllmHealth.paths = 200, 0.0, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _VllmHealth)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_probe_gets_health_at_the_server_root_of_the_routes_base_url(health_server):
    probe = HttpHealthProbe(health_server + "/v1")
    assert probe("chat") is True
    assert _VllmHealth.paths == ["/health"]


def test_an_unhealthy_answer_is_not_ready(health_server):
    _VllmHealth.status = 503
    assert HttpHealthProbe(health_server + "/v1")("chat") is False


def test_a_slow_answer_is_not_ready(health_server):
    _VllmHealth.delay_s = 1.0
    started = time.monotonic()
    assert HttpHealthProbe(health_server + "/v1", timeout_s=0.2)("chat") is False
    assert time.monotonic() - started < 0.9


def test_nothing_listening_is_not_ready():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert HttpHealthProbe(f"http://127.0.0.1:{port}/v1")("chat") is False
