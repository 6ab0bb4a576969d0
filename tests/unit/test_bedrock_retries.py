"""A Bedrock call is never repeated once the model may have started generating: botocore makes
one attempt with provider-timeout-s to read, and the provider retries only what provably never
reached the model (no connection, throttled on arrival). Also: a stream that ends before
``messageStop`` is incomplete, and an answer without usage is counted, never billed 0."""

from __future__ import annotations

import asyncio

import boto3
import pytest
from botocore.exceptions import (ConnectionClosedError, ConnectTimeoutError, EndpointConnectionError,
                                 ReadTimeoutError)
from botocore.stub import Stubber

from functions.adapters import bedrock
from functions.adapters.aws import AwsClients
from functions.adapters.bedrock import PRE_GENERATION_ATTEMPTS, BedrockProvider
from functions.core.chat import Message, ProviderCall
from functions.core.errors import (ProviderError, ProviderStreamIncompleteError, ProviderThrottledError,
                                   ProviderTimeoutError)
from functions.core.tokens import count_chat_tokens, count_tokens
from tests.fakes.bedrock_wire import ConverseStreamWire

MODEL = "meta.llama3-1-8b-instruct-v1:0"
ANSWER = {"output": {"message": {"role": "assistant", "content": [{"text": "Hello there"}]}},
          "stopReason": "end_turn", "usage": {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15},
          "metrics": {"latencyMs": 120}}


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(bedrock, "PRE_GENERATION_BACKOFF_S", 0.0)


@pytest.fixture
def client():
    return boto3.client("bedrock-runtime", region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _call() -> ProviderCall:
    return ProviderCall(model=MODEL, messages=[Message(role="user", content="hi")], max_tokens=64)


def _complete(client):
    return asyncio.run(BedrockProvider(client).complete(_call()))


# -- botocore config -----------------------------------------------------------------------------


def test_bedrock_clients_make_one_attempt_and_read_for_the_provider_timeout():
    aws = AwsClients(region="us-east-1", model_timeout_s=7.5)
    config = aws.client("bedrock-runtime").meta.config
    # botocore's own retries repeat read timeouts, dropped connections and 5xx: all may follow generation
    assert config.retries == {"mode": "standard", "total_max_attempts": 1}
    assert config.read_timeout == 7.5


def test_the_gateway_runtime_gives_bedrock_its_provider_timeout():
    from functions.gateway.composition import Runtime
    from tests.support import make_config

    runtime = Runtime(config=make_config({"gateway": {"provider-timeout-s": 42}}), environ={})
    assert runtime.aws.client("bedrock-runtime").meta.config.read_timeout == 42


def test_storage_clients_keep_their_own_config():
    aws = AwsClients(region="us-east-1", model_timeout_s=7.5)
    assert aws.client("dynamodb").meta.config.read_timeout != 7.5


# -- what the provider retries ---------------------------------------------------------------------


def test_throttling_on_arrival_is_retried_and_answered(client):
    with Stubber(client) as stub:
        stub.add_client_error("converse", "ThrottlingException", "slow down", 429)
        stub.add_response("converse", ANSWER)
        assert _complete(client).text == "Hello there"
        stub.assert_no_pending_responses()


def test_persistent_throttling_gives_up_after_a_few_attempts(client):
    with Stubber(client) as stub:
        for _ in range(PRE_GENERATION_ATTEMPTS):
            stub.add_client_error("converse", "ThrottlingException", "slow down", 429)
        with pytest.raises(ProviderThrottledError) as caught:
            _complete(client)
        stub.assert_no_pending_responses()
    assert not caught.value.may_have_generated


@pytest.mark.parametrize("code, status", [("ModelTimeoutException", 408), ("InternalServerException", 500),
                                          ("ServiceUnavailableException", 503), ("ModelErrorException", 424)])
def test_errors_that_may_follow_generation_are_not_retried(client, code, status):
    with Stubber(client) as stub:
        stub.add_client_error("converse", code, "failed", status)
        stub.add_response("converse", ANSWER)  # a retry would get this answer
        with pytest.raises(ProviderError):
            _complete(client)
        assert len(stub._queue) == 1  # the answer is still waiting: no second call was made


class CountingClient:
    """Raises ``errors`` one call at a time, then answers."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def converse(self, **_):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return ANSWER


@pytest.mark.parametrize("error", [EndpointConnectionError(endpoint_url="https://bedrock-runtime"),
                                   ConnectTimeoutError(endpoint_url="https://bedrock-runtime")])
def test_no_connection_is_retried(error):
    client = CountingClient(error)
    assert asyncio.run(BedrockProvider(client).complete(_call())).text == "Hello there"
    assert client.calls == 2


@pytest.mark.parametrize("error, error_class", [
    (ReadTimeoutError(endpoint_url="https://bedrock-runtime"), ProviderTimeoutError),
    (ConnectionClosedError(endpoint_url="https://bedrock-runtime"), ProviderError),
])
def test_a_call_lost_after_it_was_sent_is_not_retried_and_may_have_generated(error, error_class):
    client = CountingClient(error)
    with pytest.raises(error_class) as caught:
        asyncio.run(BedrockProvider(client).complete(_call()))
    assert client.calls == 1
    assert caught.value.may_have_generated


# -- incomplete streams and missing usage -----------------------------------------------------------


def _collect(client):
    async def run():
        return [delta async for delta in BedrockProvider(client).stream(_call())]

    return asyncio.run(run())


def test_a_stream_that_ends_before_message_stop_is_incomplete(client):
    ConverseStreamWire(client).add([{"messageStart": {"role": "assistant"}},
                                    {"contentBlockDelta": {"delta": {"text": "Hel"}, "contentBlockIndex": 0}}])
    with pytest.raises(ProviderStreamIncompleteError) as caught:
        _collect(client)
    assert caught.value.may_have_generated


def test_a_stream_without_usage_ends_with_no_usage_for_the_gateway_to_count(client):
    ConverseStreamWire(client).add([{"contentBlockDelta": {"delta": {"text": "Hi"}, "contentBlockIndex": 0}},
                                    {"messageStop": {"stopReason": "end_turn"}}])
    deltas = _collect(client)
    assert (deltas[-1].finish_reason, deltas[-1].usage) == ("stop", None)


def test_an_answer_without_usage_is_counted_and_marked_estimated():
    class NoUsageClient(CountingClient):  # Bedrock's model requires usage; a proxy may still drop it
        def converse(self, **_):
            return {key: value for key, value in ANSWER.items() if key != "usage"}

    usage = asyncio.run(BedrockProvider(NoUsageClient()).complete(_call())).usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.estimated) == (
        count_chat_tokens(["hi"]), count_tokens("Hello there"), True)
