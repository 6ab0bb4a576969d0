"""The Bedrock provider against a real boto3 ``bedrock-runtime`` client.

Converse and InvokeModel calls go through botocore's ``Stubber``, which checks every request
against the real service model. ConverseStream answers are served as real event-stream frames
(``tests/fakes/bedrock_wire.py``), so botocore's own decoder and parser read them.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from functions.adapters import bedrock
from functions.adapters.bedrock import PRE_GENERATION_ATTEMPTS, BedrockProvider
from functions.adapters.bedrock_errors import PRE_GENERATION_CODES
from functions.adapters.converse_mapping import StreamFold, converse_request
from functions.core.chat import Message, ProviderCall, Usage
from functions.core.errors import (ProviderAccessDeniedError, ProviderBadRequestError, ProviderError,
                                   ProviderThrottledError, ProviderTimeoutError, ProviderUnavailableError)
from tests.fakes.bedrock_wire import ConverseStreamWire

MODEL = "meta.llama3-1-8b-instruct-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"


@pytest.fixture
def client():
    return boto3.client("bedrock-runtime", region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def stubber(client):
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()


def _call(*messages: tuple[str, str], **params) -> ProviderCall:
    return ProviderCall(model=MODEL, messages=[Message(role=role, content=text) for role, text in messages],
                        max_tokens=params.pop("max_tokens", 64), **params)


def _answer(text: str = "Hello there", stop_reason: str = "end_turn", usage: dict | None = None) -> dict:
    return {"output": {"message": {"role": "assistant", "content": [{"text": text}]}},
            "stopReason": stop_reason,
            "usage": usage or {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15},
            "metrics": {"latencyMs": 120}}


def _complete(client, call):
    return asyncio.run(BedrockProvider(client).complete(call))


def _collect(client, call):
    async def run():
        return [delta async for delta in BedrockProvider(client).stream(call)]

    return asyncio.run(run())


# -- request mapping ---------------------------------------------------------------------------


def test_every_parameter_is_sent_in_inference_config(client, stubber):
    expected = {"modelId": MODEL, "messages": [{"role": "user", "content": [{"text": "hi"}]}],
                "inferenceConfig": {"maxTokens": 100, "temperature": 0.3, "topP": 0.9,
                                    "stopSequences": ["END", "STOP"]}}
    stubber.add_response("converse", _answer(), expected)
    _complete(client, _call(("user", "hi"), max_tokens=100, temperature=0.3, top_p=0.9, stop=["END", "STOP"]))


def test_unset_parameters_are_left_out(client, stubber):
    expected = {"modelId": MODEL, "messages": ANY, "inferenceConfig": {"maxTokens": 64}}
    stubber.add_response("converse", _answer(), expected)
    _complete(client, _call(("user", "hi")))


def test_temperature_above_converse_range_is_clamped_to_one(client, stubber):
    stubber.add_response("converse", _answer(), {"modelId": MODEL, "messages": ANY,
                                                  "inferenceConfig": {"maxTokens": 64, "temperature": 1.0}})
    _complete(client, _call(("user", "hi"), temperature=1.7))


def test_system_and_developer_messages_become_system_blocks(client, stubber):
    expected = {"modelId": MODEL, "inferenceConfig": ANY,
                "system": [{"text": "You are terse."}, {"text": "Answer in French."}],
                "messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    stubber.add_response("converse", _answer(), expected)
    _complete(client, _call(("system", "You are terse."), ("developer", "Answer in French."), ("user", "hi")))


def test_consecutive_same_role_messages_are_merged_so_roles_alternate(client, stubber):
    expected = {"modelId": MODEL, "inferenceConfig": ANY,
                "messages": [{"role": "user", "content": [{"text": "one"}, {"text": "two"}]},
                             {"role": "assistant", "content": [{"text": "a"}, {"text": "b"}]},
                             {"role": "user", "content": [{"text": "three"}]}]}
    stubber.add_response("converse", _answer(), expected)
    _complete(client, _call(("user", "one"), ("user", "two"), ("assistant", "a"), ("assistant", "b"),
                            ("user", "three")))


def test_blank_messages_are_dropped_and_do_not_break_alternation():
    call = _call(("system", "  "), ("user", "one"), ("assistant", ""), ("user", "two"))
    request = converse_request(call)
    assert "system" not in request
    assert request["messages"] == [{"role": "user", "content": [{"text": "one"}, {"text": "two"}]}]


def test_text_parts_are_joined_into_one_block(client, stubber):
    call = ProviderCall(model=MODEL, max_tokens=8, messages=[Message.model_validate(
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]})])
    stubber.add_response("converse", _answer(), {"modelId": MODEL, "inferenceConfig": ANY,
                                                  "messages": [{"role": "user", "content": [{"text": "ab"}]}]})
    _complete(client, call)


# -- answers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("stop_reason, finish", [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
    ("model_context_window_exceeded", "length"), ("guardrail_intervened", "content_filter"),
    ("content_filtered", "content_filter"), ("tool_use", "tool_calls"), ("malformed_model_output", "stop"),
])
def test_stop_reason_maps_to_finish_reason(client, stubber, stop_reason, finish):
    stubber.add_response("converse", _answer(stop_reason=stop_reason), None)
    assert _complete(client, _call(("user", "hi"))).finish_reason == finish


def test_completion_carries_text_usage_and_model(client, stubber):
    stubber.add_response("converse", _answer("Bonjour", usage={"inputTokens": 20, "outputTokens": 4,
                                                               "totalTokens": 24}), None)
    completion = _complete(client, _call(("user", "hi")))
    assert (completion.text, completion.model, completion.simulated) == ("Bonjour", MODEL, False)
    assert completion.usage == Usage(prompt_tokens=20, completion_tokens=4, cached_tokens=0)


def test_prompt_cache_reads_count_as_prompt_tokens_and_cached_tokens(client, stubber):
    # Converse's inputTokens leaves out cache reads and writes; OpenAI's prompt_tokens includes them,
    # and the writes are kept apart to be billed at their own rate.
    usage = {"inputTokens": 10, "outputTokens": 5, "totalTokens": 145, "cacheReadInputTokens": 100,
             "cacheWriteInputTokens": 30}
    stubber.add_response("converse", _answer(usage=usage), None)
    assert _complete(client, _call(("user", "hi"))).usage == Usage(prompt_tokens=140, completion_tokens=5,
                                                                   cached_tokens=100, cache_write_tokens=30)


# -- errors ------------------------------------------------------------------------------------

ERROR_CASES = [
    ("ValidationException", 400, ProviderBadRequestError),
    ("AccessDeniedException", 403, ProviderAccessDeniedError),
    ("ThrottlingException", 429, ProviderThrottledError),
    ("ServiceQuotaExceededException", 429, ProviderThrottledError),
    ("ModelTimeoutException", 408, ProviderTimeoutError),
    ("ServiceUnavailableException", 503, ProviderUnavailableError),
    ("ModelNotReadyException", 429, ProviderUnavailableError),
    ("ModelErrorException", 424, ProviderError),
    ("InternalServerException", 500, ProviderError),
    ("ResourceNotFoundException", 404, ProviderError),
]


def _attempts(code: str) -> int:
    """Calls made for an error that persists: retried only when it came before the model ran."""
    return PRE_GENERATION_ATTEMPTS if code in PRE_GENERATION_CODES else 1


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(bedrock, "PRE_GENERATION_BACKOFF_S", 0.0)


@pytest.mark.parametrize("code, http_status, error_class", ERROR_CASES)
def test_converse_client_errors_are_translated(client, stubber, code, http_status, error_class):
    for _ in range(_attempts(code)):
        stubber.add_client_error("converse", code, "details from Bedrock", http_status)
    with pytest.raises(error_class) as caught:
        _complete(client, _call(("user", "hi")))
    assert type(caught.value) is error_class
    assert caught.value.__cause__ is not None  # raised ``from`` the botocore error


def test_validation_message_reaches_the_client_other_messages_do_not(client, stubber):
    stubber.add_client_error("converse", "ValidationException", "max_tokens exceeds the model limit", 400)
    stubber.add_client_error("converse", "AccessDeniedException", "role arn:aws:iam::123456789012:role/x", 403)
    with pytest.raises(ProviderBadRequestError, match="max_tokens exceeds the model limit"):
        _complete(client, _call(("user", "hi")))
    with pytest.raises(ProviderAccessDeniedError) as caught:
        _complete(client, _call(("user", "hi")))
    assert "123456789012" not in caught.value.message


@pytest.mark.parametrize("transport_error, error_class", [
    (ReadTimeoutError(endpoint_url="https://bedrock-runtime"), ProviderTimeoutError),
    (EndpointConnectionError(endpoint_url="https://bedrock-runtime"), ProviderError),
])
def test_transport_errors_are_translated(transport_error, error_class):
    class FailingClient:
        def converse(self, **_):
            raise transport_error

    with pytest.raises(error_class) as caught:
        asyncio.run(BedrockProvider(FailingClient()).complete(_call(("user", "hi"))))
    assert type(caught.value) is error_class and caught.value.__cause__ is transport_error


@pytest.mark.parametrize("code, http_status, error_class", ERROR_CASES[:4])
def test_converse_stream_call_errors_are_translated(client, stubber, code, http_status, error_class):
    for _ in range(_attempts(code)):
        stubber.add_client_error("converse_stream", code, "details", http_status)
    with pytest.raises(error_class):
        _collect(client, _call(("user", "hi")))


# -- streaming ---------------------------------------------------------------------------------

STREAM = [
    {"messageStart": {"role": "assistant"}},
    {"contentBlockDelta": {"delta": {"text": "Hel"}, "contentBlockIndex": 0}},
    {"contentBlockDelta": {"delta": {"text": "lo"}, "contentBlockIndex": 0}},
    {"contentBlockStop": {"contentBlockIndex": 0}},
    {"messageStop": {"stopReason": "max_tokens"}},
    {"metadata": {"usage": {"inputTokens": 9, "outputTokens": 2, "totalTokens": 11},
                  "metrics": {"latencyMs": 80}}},
]


def test_stream_yields_text_then_one_final_delta_with_finish_reason_and_usage(client):
    wire = ConverseStreamWire(client)
    wire.add(STREAM)
    deltas = _collect(client, _call(("system", "Be brief."), ("user", "hi"), temperature=0.2))
    assert [d.text for d in deltas[:-1]] == ["Hel", "lo"]
    assert all(d.finish_reason is None for d in deltas[:-1])
    assert deltas[-1].finish_reason == "length"
    assert deltas[-1].usage == Usage(prompt_tokens=9, completion_tokens=2)
    assert wire.requests == [{"messages": [{"role": "user", "content": [{"text": "hi"}]}],
                              "system": [{"text": "Be brief."}],
                              "inferenceConfig": {"maxTokens": 64, "temperature": 0.2}}]
    assert wire.urls[0].endswith("/model/meta.llama3-1-8b-instruct-v1%3A0/converse-stream")
    assert wire.bodies[0].closed.is_set()  # the HTTP body is released once the answer is read


@pytest.mark.parametrize("event_name, error_class", [
    ("throttlingException", ProviderThrottledError),
    ("modelStreamErrorException", ProviderError),
    ("validationException", ProviderBadRequestError),
    ("internalServerException", ProviderError),
    ("serviceUnavailableException", ProviderUnavailableError),
])
def test_errors_inside_the_stream_are_translated(client, event_name, error_class):
    wire = ConverseStreamWire(client)
    wire.add([STREAM[0], STREAM[1], {event_name: {"message": "went wrong"}}])
    seen = []

    async def run():
        async for delta in BedrockProvider(client).stream(_call(("user", "hi"))):
            seen.append(delta.text)

    with pytest.raises(error_class) as caught:
        asyncio.run(run())
    assert type(caught.value) is error_class
    assert seen == ["Hel"]


def test_error_events_handed_over_as_plain_dicts_are_translated_too():
    class DictStreamClient:
        def converse_stream(self, **_):
            return {"stream": [STREAM[0], {"throttlingException": {"message": "slow down"}}]}

    with pytest.raises(ProviderThrottledError):
        _collect(DictStreamClient(), _call(("user", "hi")))


def test_connection_lost_mid_stream_is_a_provider_error(client):
    wire = ConverseStreamWire(client)
    body = wire.add(STREAM, hold_after=2)
    body.close()  # the connection drops: reading past the second frame fails at once
    with pytest.raises(ProviderError):
        _collect(client, _call(("user", "hi")))


def test_closing_the_stream_early_stops_the_reader_and_closes_the_http_body(client):
    wire = ConverseStreamWire(client)
    body = wire.add(STREAM, hold_after=2)  # two frames, then the model goes quiet

    async def run():
        stream = BedrockProvider(client).stream(_call(("user", "hi")))
        first = await anext(stream)
        await stream.aclose()  # the client went away
        # closed by aclose itself, not later by the loop's async-generator finaliser
        assert body.closed.is_set()
        return first

    assert asyncio.run(run()).text == "Hel"
    assert body.closed.is_set()
    assert body.released.wait(timeout=5)  # the blocked reader woke up
    for thread in threading.enumerate():
        if thread.name == "bedrock-converse-stream":
            thread.join(timeout=5)
            assert not thread.is_alive()


def test_stream_fold_keeps_the_last_stop_reason_and_usage():
    fold = StreamFold()
    assert fold.delta({"contentBlockDelta": {"delta": {"toolUse": {"input": "{}"}}}}) is None
    fold.delta({"messageStop": {"stopReason": "guardrail_intervened"}})
    fold.delta({"metadata": {"usage": {"inputTokens": 1, "outputTokens": 1, "cacheReadInputTokens": 4}}})
    final = fold.final()
    assert (final.finish_reason, final.usage) == ("content_filter", Usage(5, 1, 4))


# -- embeddings --------------------------------------------------------------------------------


def _titan_answer(vector: list[float], tokens: int) -> dict:
    data = json.dumps({"embedding": vector, "inputTextTokenCount": tokens}).encode()
    return {"body": StreamingBody(io.BytesIO(data), len(data)), "contentType": "application/json"}


def test_embed_calls_titan_once_per_input_with_dimensions_and_normalize(client, stubber):
    for text, vector, tokens in (("first", [0.6, 0.8], 2), ("second", [1.0, 0.0], 3)):
        body = json.dumps({"inputText": text, "normalize": True, "dimensions": 256})
        stubber.add_response("invoke_model", _titan_answer(vector, tokens),
                             {"modelId": TITAN, "body": body, "contentType": "application/json",
                              "accept": "application/json"})
    provider = BedrockProvider(client, embed_concurrency=1)  # in order, as the stubbed answers are queued
    embeddings = asyncio.run(provider.embed(TITAN, ["first", "second"], 256))
    assert embeddings.vectors == [[0.6, 0.8], [1.0, 0.0]]
    assert embeddings.usage == Usage(prompt_tokens=5)
    assert embeddings.model == TITAN


def test_embed_without_dimensions_leaves_titans_default(client, stubber):
    stubber.add_response("invoke_model", _titan_answer([1.0], 1),
                         {"modelId": TITAN, "body": json.dumps({"inputText": "x", "normalize": True}),
                          "contentType": "application/json", "accept": "application/json"})
    assert asyncio.run(BedrockProvider(client).embed(TITAN, ["x"], None)).vectors == [[1.0]]


def test_embed_errors_are_translated(client, stubber):
    stubber.add_client_error("invoke_model", "ValidationException", "dimensions must be 256, 512 or 1024", 400)
    with pytest.raises(ProviderBadRequestError, match="dimensions"):
        asyncio.run(BedrockProvider(client).embed(TITAN, ["x"], 300))
