"""The serverless tier end to end: the openai SDK against the gateway under uvicorn (moto server
for DynamoDB) with the real Bedrock provider on a real boto3 client.

Bedrock itself cannot run locally, so its answers are served under botocore: ``Stubber`` for
Converse and InvokeModel, event-stream frames on the wire for ConverseStream. Everything above
that (serialisation, parsing, the provider, the pipeline, SSE) is the real code.
"""

from __future__ import annotations

import io
import time
import json

import openai
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from tests.fakes.bedrock_wire import ConverseStreamWire

from ..support import openai_client

MODEL = "us.meta.llama3-1-8b-instruct-v1:0"  # the example's chat route (a US inference profile)
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]


@pytest.fixture
def bedrock_gateway(make_runtime, serve):
    """A gateway whose serverless tier is Bedrock, and the (stubbed) client it calls."""
    from functions.gateway.composition import build_gateway
    from tierup.local_stack import create_key

    runtime = make_runtime(environ={"TIERUP_PROVIDER": ""})
    region = runtime.config.tiers["serverless"].region
    client = runtime.aws.client("bedrock-runtime", region)  # the one the provider factory will reuse
    stubber = Stubber(client)
    stubber.activate()
    url = serve(build_gateway(runtime))
    yield type("BedrockGateway", (), {"client": openai_client(url, create_key(runtime, "acme", "pro")),
                                      "bedrock": client, "stubber": stubber})
    stubber.deactivate()


def test_chat_completion_through_converse(bedrock_gateway):
    bedrock_gateway.stubber.add_response(
        "converse",
        {"output": {"message": {"role": "assistant", "content": [{"text": "Hi!"}]}}, "stopReason": "end_turn",
         "usage": {"inputTokens": 11, "outputTokens": 2, "totalTokens": 13}, "metrics": {"latencyMs": 90}},
        {"modelId": MODEL, "system": [{"text": "be brief"}],
         "messages": [{"role": "user", "content": [{"text": "hello"}]}],
         "inferenceConfig": {"maxTokens": 8, "temperature": 0.5}})
    raw = bedrock_gateway.client.chat.completions.with_raw_response.create(
        model="chat", messages=MESSAGES, max_tokens=8, temperature=0.5)
    completion = raw.parse()
    assert raw.headers["x-tierup-tier"] == "serverless"
    assert raw.headers.get("x-tierup-simulated") != "true"
    assert completion.choices[0].message.content == "Hi!"
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (11, 2)


def test_stream_through_converse_stream(bedrock_gateway):
    bedrock_gateway.stubber.deactivate()  # the Stubber would answer before the wire is reached
    wire = ConverseStreamWire(bedrock_gateway.bedrock)
    wire.add([{"messageStart": {"role": "assistant"}},
              {"contentBlockDelta": {"delta": {"text": "Hel"}, "contentBlockIndex": 0}},
              {"contentBlockDelta": {"delta": {"text": "lo"}, "contentBlockIndex": 0}},
              {"messageStop": {"stopReason": "max_tokens"}},
              {"metadata": {"usage": {"inputTokens": 7, "outputTokens": 2, "totalTokens": 9},
                            "metrics": {"latencyMs": 50}}}])
    chunks = list(bedrock_gateway.client.chat.completions.create(
        model="chat", messages=MESSAGES, max_tokens=2, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (7, 2)
    assert wire.requests[0]["inferenceConfig"] == {"maxTokens": 2}


@pytest.mark.parametrize("code, http_status, sdk_error", [
    ("ValidationException", 400, openai.BadRequestError),
    ("AccessDeniedException", 403, openai.PermissionDeniedError),
])
def test_bedrock_refusals_reach_the_client_as_openai_errors(bedrock_gateway, code, http_status, sdk_error):
    bedrock_gateway.stubber.add_client_error("converse", code, "max_tokens is too large", http_status)
    with pytest.raises(sdk_error) as caught:
        bedrock_gateway.client.chat.completions.create(model="chat", messages=MESSAGES, max_tokens=8)
    assert caught.value.status_code == http_status
    assert caught.value.body["code"] in ("provider_rejected_request", "provider_access_denied")


def test_embeddings_through_titan(bedrock_gateway):
    for vector, tokens in (([0.6, 0.8], 3), ([1.0, 0.0], 4)):
        data = json.dumps({"embedding": vector, "inputTextTokenCount": tokens}).encode()
        bedrock_gateway.stubber.add_response(
            "invoke_model", {"body": StreamingBody(io.BytesIO(data), len(data)), "contentType": "application/json"},
            {"modelId": "amazon.titan-embed-text-v2:0", "body": ANY, "contentType": "application/json",
             "accept": "application/json"})
    response = bedrock_gateway.client.embeddings.create(model="embed", input=["one", "two"])
    # the two InvokeModel calls run concurrently, so which stubbed answer each input gets is not fixed
    assert sorted(d.embedding for d in response.data) == [pytest.approx([0.6, 0.8]), pytest.approx([1.0, 0.0])]
    assert response.usage.prompt_tokens == 7


def test_a_client_that_leaves_mid_stream_stops_the_bedrock_stream(bedrock_gateway):
    bedrock_gateway.stubber.deactivate()
    wire = ConverseStreamWire(bedrock_gateway.bedrock)
    # a model decoding 200 tokens at ~40 tokens/s: reading all of it would take 5 s
    wire.answer_every_request([{"messageStart": {"role": "assistant"}}]
                              + [{"contentBlockDelta": {"delta": {"text": f" w{i}"}, "contentBlockIndex": 0}}
                                 for i in range(200)]
                              + [{"messageStop": {"stopReason": "end_turn"}}], gap_s=0.025)
    stream = bedrock_gateway.client.chat.completions.create(model="chat", messages=MESSAGES, stream=True)
    received = [chunk for _, chunk in zip(range(3), stream)]
    stream.close()  # the client goes away after three chunks
    assert len(received) == 3
    for _ in range(100):
        if wire.bodies and wire.bodies[0].closed.is_set():
            break
        time.sleep(0.02)
    assert wire.bodies[0].closed.is_set(), "the gateway kept reading Bedrock for a client that left"
