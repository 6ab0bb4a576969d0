"""Modal proxy auth on the GPU tiers, against a real HTTP server on 127.0.0.1 playing Modal's proxy:
it answers 401 before anything reaches the container unless ``Modal-Key`` and ``Modal-Secret``
carry the workspace token. The gateway (through the openai SDK) and the policy's health probe
must both get through, and a request without the token must never reach (or wake) a container."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from functions.adapters.modal_control import ModalGpuControl
from functions.adapters.provider_keys import provider_key_names
from functions.policy_handler import modal_gpu_control
from tests.fakes.modal_sdk import FakeModal

from ..support import openai_client

TOKEN_ID, TOKEN_SECRET = "wk-test-id", "ws-test-secret"
TOKEN_ENV = "TIERUP_MODAL_PROXY_TOKEN"
ANSWER = {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "m",
          "choices": [{"index": 0, "message": {"role": "assistant", "content": "from the GPU"},
                       "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}}


class _ModalProxy(BaseHTTPRequestHandler):
    """Modal's proxy in front of one vLLM container: ``reached`` lists what got past it."""

    reached: list[str] = []

    def _authorised(self) -> bool:
        if self.headers.get("Modal-Key") == TOKEN_ID and self.headers.get("Modal-Secret") == TOKEN_SECRET:
            return True
        body = b"modal-http: missing credentials for proxy authorization"
        self.send_response(401)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return False

    def do_GET(self):
        if self._authorised():
            type(self).reached.append(self.path)
            self.send_response(200 if self.path == "/health" else 404)
            self.send_header("content-length", "0")
            self.end_headers()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        if self._authorised():
            type(self).reached.append(self.path)
            body = json.dumps(ANSWER).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def modal_proxy():
    _ModalProxy.reached = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ModalProxy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _gpu_tier(proxy_url: str) -> dict:
    endpoint = {"provider": "openai", "base-url": proxy_url + "/v1", "api-key-env": "TIERUP_GPU_API_KEY",
                "proxy-auth-env": TOKEN_ENV}
    return {"tiers": {"serverless-gpu": endpoint, "reserved": endpoint},
            "routes": {"chat": {"start-tier": "serverless-gpu"}}}


def _gateway(make_runtime, serve, proxy_url: str, environ: dict):
    from functions.gateway.composition import build_gateway
    from tierup.local_stack import create_key

    runtime = make_runtime(_gpu_tier(proxy_url), environ={"TIERUP_PROVIDER": "", **environ})
    return openai_client(serve(build_gateway(runtime)), create_key(runtime, "acme", "pro"))


def test_the_gateway_sends_the_workspace_token_to_the_gpu_tier(make_runtime, serve, modal_proxy):
    client = _gateway(make_runtime, serve, modal_proxy, {TOKEN_ENV: f"{TOKEN_ID}:{TOKEN_SECRET}",
                                                         "TIERUP_GPU_API_KEY": "sk-gpu"})
    raw = client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "hi"}], max_tokens=8)
    assert raw.headers["x-tierup-tier"] == "serverless-gpu"
    assert raw.parse().choices[0].message.content == "from the GPU"
    assert _ModalProxy.reached == ["/v1/chat/completions"]


def test_without_the_token_nothing_reaches_a_container(make_runtime, serve, modal_proxy):
    from functions.gateway.composition import build_gateway
    from tierup.local_stack import create_key

    overrides = _gpu_tier(modal_proxy)
    overrides["tiers"]["serverless"] = {"provider": "simulated"}  # the fallback, instead of Bedrock
    runtime = make_runtime(overrides, environ={"TIERUP_PROVIDER": "", TOKEN_ENV: "", "TIERUP_GPU_API_KEY": "sk"})
    client = openai_client(serve(build_gateway(runtime)), create_key(runtime, "acme", "pro"))
    raw = client.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "hi"}], max_tokens=8)
    assert raw.headers["x-tierup-tier"] == "serverless"  # Modal's 401 made it fall back
    assert _ModalProxy.reached == []


def test_the_health_probe_sends_the_token_and_is_refused_without_it(modal_proxy):
    from tests.support import make_config

    config = make_config(_gpu_tier(modal_proxy))
    with_token = ModalGpuControl.from_config(config, environ={TOKEN_ENV: f"{TOKEN_ID}:{TOKEN_SECRET}"},
                                             modal_module=FakeModal().module)
    without = ModalGpuControl.from_config(config, environ={}, modal_module=FakeModal().module)
    assert with_token._probe("chat") is True
    assert without._probe("chat") is False
    assert _ModalProxy.reached == ["/health"]


def test_the_token_is_a_provider_key_so_the_stack_stores_it_and_the_policy_loads_it(make_runtime, modal_proxy):
    runtime = make_runtime(_gpu_tier(modal_proxy))
    assert TOKEN_ENV in provider_key_names(runtime.config)
    secrets = runtime.aws.client("secretsmanager")
    runtime.environ["TIERUP_MODAL_SECRET_ARN"] = secrets.create_secret(
        Name="proxy-test-modal",
        SecretString=json.dumps({"MODAL_TOKEN_ID": "ak-1", "MODAL_TOKEN_SECRET": "as-1"}))["ARN"]
    runtime.environ["TIERUP_PROVIDER_KEYS_SECRET_ARN"] = secrets.create_secret(
        Name="proxy-test-keys", SecretString=json.dumps({TOKEN_ENV: f"{TOKEN_ID}:{TOKEN_SECRET}"}))["ARN"]
    runtime.environ.pop(TOKEN_ENV, None)
    gpu = modal_gpu_control(runtime, environ={})
    assert gpu._probe("chat") is True
