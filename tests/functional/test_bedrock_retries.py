"""Bedrock calls over real HTTP to a stand-in on 127.0.0.1 that counts what reaches it, with the
botocore config the gateway gives its ``bedrock-runtime`` client: an answer lost after the request
was sent (dropped connection, 5xx, read timeout) is never asked for again, since the model may
already be generating it; a call throttled on arrival is."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

from functions.adapters import bedrock
from functions.adapters.aws import AwsClients
from functions.adapters.bedrock import PRE_GENERATION_ATTEMPTS, BedrockProvider
from functions.core.chat import Message, ProviderCall
from functions.core.errors import ProviderError, ProviderThrottledError, ProviderTimeoutError

READ_TIMEOUT_S = 0.5
ANSWER = {"output": {"message": {"role": "assistant", "content": [{"text": "Hello"}]}}, "stopReason": "end_turn",
          "usage": {"inputTokens": 5, "outputTokens": 1, "totalTokens": 6}, "metrics": {"latencyMs": 1}}


class BedrockStandIn(BaseHTTPRequestHandler):
    """``/model/<behaviour>/converse``: ``drop``, ``fail-500``, ``throttle``, ``slow``, else an answer."""

    received: list[str] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("content-length") or 0))
        behaviour = self.path.split("/")[2]
        self.received.append(behaviour)
        if behaviour == "drop":  # the request arrived; the connection dies before any answer
            self.close_connection = True
            return
        if behaviour == "fail-500":
            return self._json(500, {"message": "failed"}, "InternalServerException")
        if behaviour == "throttle":
            return self._json(429, {"message": "slow down"}, "ThrottlingException")
        if behaviour == "slow":
            time.sleep(READ_TIMEOUT_S * 6)
        self._json(200, ANSWER)

    def _json(self, status: int, body: dict, error_type: str | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        if error_type:
            self.send_header("x-amzn-errortype", error_type)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        return None


@pytest.fixture(scope="module")
def stand_in():
    server = ThreadingHTTPServer(("127.0.0.1", 0), BedrockStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def provider(stand_in, monkeypatch):
    monkeypatch.setattr(bedrock, "PRE_GENERATION_BACKOFF_S", 0.0)
    BedrockStandIn.received = []
    # the config the gateway builds for Bedrock, aimed at the stand-in
    config = AwsClients(region="us-east-1", model_timeout_s=READ_TIMEOUT_S).client("bedrock-runtime").meta.config
    client = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=stand_in, config=config,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    return BedrockProvider(client)


def _complete(provider, behaviour: str):
    call = ProviderCall(model=behaviour, messages=[Message(role="user", content="hi")], max_tokens=8)
    return asyncio.run(provider.complete(call))


@pytest.mark.parametrize("behaviour", ["drop", "fail-500"])
def test_an_answer_lost_after_the_request_arrived_is_asked_for_once(provider, behaviour):
    with pytest.raises(ProviderError):
        _complete(provider, behaviour)
    assert BedrockStandIn.received == [behaviour]


def test_a_slow_generation_times_out_at_the_provider_timeout_and_is_not_repeated(provider):
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError) as caught:
        _complete(provider, "slow")
    assert time.monotonic() - started < READ_TIMEOUT_S * 5
    assert caught.value.may_have_generated
    assert BedrockStandIn.received == ["slow"]


def test_throttling_on_arrival_is_retried_a_few_times(provider):
    with pytest.raises(ProviderThrottledError):
        _complete(provider, "throttle")
    assert BedrockStandIn.received == ["throttle"] * PRE_GENERATION_ATTEMPTS


def test_an_answer_is_read(provider):
    assert _complete(provider, "ok").text == "Hello"
    assert BedrockStandIn.received == ["ok"]
