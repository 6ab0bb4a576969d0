"""Prompt caching end to end: the openai SDK against the gateway under uvicorn (moto server for
DynamoDB) with the real Bedrock provider on a real boto3 client, answered by ``Stubber``
(Converse) and event-stream frames on the wire (ConverseStream).

The client sees the cached prompt tokens as OpenAI reports them (``prompt_tokens_details`` in
Chat Completions, ``input_tokens_details`` in Responses), and the ledger bills the tokens read
from and written to Bedrock's cache at the model's own cache rates (the example config's).
"""

from __future__ import annotations

import time

import pytest
from botocore.stub import Stubber

from functions.adapters.dynamodb.ledger_records import DynamoLedgerRecords
from functions.core.tables import USAGE
from functions.gateway.composition import build_gateway
from tests.fakes.bedrock_wire import ConverseStreamWire
from tierup.local_stack import GatewayServer, create_key

from ..support import openai_client

NOVA = "us.amazon.nova-micro-v1:0"                      # $0.035 in, $0.14 out, $0.00875 read, $0.035 write
HAIKU = "us.anthropic.claude-3-5-haiku-20241022-v1:0"  # $0.80 in, $4 out, $0.08 read, $1.00 write
CACHE_POINT = {"cachePoint": {"type": "default"}}
SYSTEM = "cache" + " cache" * 2499  # 2,500 tokens: over both models' minimum


def _answer(usage: dict) -> dict:
    return {"output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}}, "stopReason": "end_turn",
            "usage": usage, "metrics": {"latencyMs": 80}}


@pytest.fixture
def caching_gateway(make_runtime):
    """Start a gateway whose chat route runs ``model`` on Bedrock (response cache off):
    ``with caching_gateway(model) as gw`` gives its SDK client, boto3 client and Stubber; leaving
    the block stops the gateway, which flushes the ledger, and ``gw.ledger()`` reads it."""
    from contextlib import contextmanager

    @contextmanager
    def start(model: str):
        runtime = make_runtime({"routes": {"chat": {"serverless": model,
                                                    "cache": {"exact": False, "semantic": False}}}},
                               environ={"TIERUP_PROVIDER": ""})
        client = runtime.aws.client("bedrock-runtime", runtime.config.tiers["serverless"].region)
        stubber = Stubber(client)
        stubber.activate()
        key = create_key(runtime, "acme", "pro")

        def ledger():
            return DynamoLedgerRecords(runtime.dynamodb, runtime.table(USAGE)).day(
                "acme", time.strftime("%Y-%m-%d", time.gmtime()))

        with GatewayServer(build_gateway(runtime)) as server:
            yield type("CachingGateway", (), {"client": openai_client(server.url, key), "bedrock": client,
                                              "stubber": stubber, "ledger": staticmethod(ledger)})
        stubber.deactivate()

    return start


def test_cached_tokens_reach_the_client_and_the_ledger_bills_them_at_the_read_rate(caching_gateway):
    with caching_gateway(NOVA) as gw:
        gw.stubber.add_response("converse", _answer({"inputTokens": 20, "outputTokens": 9, "totalTokens": 1229,
                                                     "cacheReadInputTokens": 1200, "cacheWriteInputTokens": 0}),
                                {"modelId": NOVA, "inferenceConfig": {"maxTokens": 16},
                                 "system": [{"text": SYSTEM}, CACHE_POINT],
                                 "messages": [{"role": "user", "content": [{"text": "hi"}]}]})
        completion = gw.client.chat.completions.create(
            model="chat", messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hi"}],
            max_tokens=16)
        gw.stubber.assert_no_pending_responses()
    assert completion.usage.prompt_tokens == 1220
    assert completion.usage.prompt_tokens_details.cached_tokens == 1200
    (record,) = gw.ledger()
    # 20 plain x 0.035 + 1,200 read x 0.00875 + 9 out x 0.14 = 0.7 + 10.5 + 1.26 = 12.46 per million
    assert record.cost_usd == pytest.approx(12.46e-6)
    assert (record.cached_tokens, record.cache_write_tokens) == (1200, 0)


def test_a_stream_reports_cached_tokens_in_its_usage_chunk_and_bills_writes_at_the_write_rate(caching_gateway):
    with caching_gateway(HAIKU) as gw:
        gw.stubber.deactivate()  # the Stubber would answer before the wire is reached
        wire = ConverseStreamWire(gw.bedrock)
        for read, written in ((0, 2500), (2500, 0)):  # the first turn writes the prefix, the next reads it
            wire.add([{"messageStart": {"role": "assistant"}},
                      {"contentBlockDelta": {"delta": {"text": "ok"}, "contentBlockIndex": 0}},
                      {"messageStop": {"stopReason": "end_turn"}},
                      {"metadata": {"usage": {"inputTokens": 5, "outputTokens": 1, "totalTokens": 2506,
                                              "cacheReadInputTokens": read, "cacheWriteInputTokens": written},
                                    "metrics": {"latencyMs": 50}}}])
        finals = []
        for _ in range(2):
            chunks = list(gw.client.chat.completions.create(
                model="chat", messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": "hi"}],
                max_tokens=16, stream=True, stream_options={"include_usage": True}))
            finals.append(chunks[-1].usage)
    assert all(request["system"] == [{"text": SYSTEM}, CACHE_POINT] for request in wire.requests)
    assert [usage.prompt_tokens for usage in finals] == [2505, 2505]
    assert finals[1].prompt_tokens_details.cached_tokens == 2500
    costs = sorted(record.cost_usd for record in gw.ledger())
    # read: 5 x 0.80 + 2,500 x 0.08 + 1 x 4 = 4 + 200 + 4 = 208; written: 5 x 0.80 + 2,500 x 1.00 + 4 = 2,508
    assert costs == [pytest.approx(208e-6), pytest.approx(2508e-6)]


def test_the_responses_api_reports_cached_input_tokens(caching_gateway):
    with caching_gateway(NOVA) as gw:
        gw.stubber.add_response("converse", _answer({"inputTokens": 3, "outputTokens": 1, "totalTokens": 2504,
                                                     "cacheReadInputTokens": 2000, "cacheWriteInputTokens": 500}),
                                None)
        response = gw.client.responses.create(model="chat", instructions=SYSTEM, input="hi", max_output_tokens=16)
    assert response.usage.input_tokens == 2503
    assert response.usage.input_tokens_details.cached_tokens == 2000
