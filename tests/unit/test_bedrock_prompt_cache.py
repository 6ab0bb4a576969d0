"""Prompt caching on the Bedrock provider, against a real boto3 client: ``Stubber`` checks each
Converse request (cache points included) against the service model; ConverseStream answers are
real event-stream frames read by botocore's own decoder (``tests/fakes/bedrock_wire.py``).

A cache point goes after the tools (models whose ``toolConfig`` takes one), after the system
prompt and after the messages before the newest, each where the prefix since the last point is
at least the model's minimum (``functions/core/prompt_cache.py``); never for a model without a
prompt cache, a model whose cache rates are not priced, or a route that turned it off.
"""

from __future__ import annotations

import asyncio

import pytest

from functions.adapters.bedrock import BedrockProvider
from functions.core.chat import ChatRequest, ProviderCall, Usage
from functions.core.tokens import count_tokens
from tests.fakes.bedrock_wire import ConverseStreamWire

from .test_bedrock_provider import client, stubber  # noqa: F401  (the Stubbed client fixtures)

NOVA = "us.amazon.nova-micro-v1:0"                      # 1,000 tokens a cache point, no tools point
HAIKU = "us.anthropic.claude-3-5-haiku-20241022-v1:0"  # 2,048 tokens a cache point, tools take one
LLAMA = "us.meta.llama3-1-8b-instruct-v1:0"             # no prompt cache
PRICED = frozenset({NOVA, HAIKU, LLAMA})
CACHE_POINT = {"cachePoint": {"type": "default"}}
USAGE = {"inputTokens": 30, "outputTokens": 9, "totalTokens": 39}


def words(tokens: int) -> str:
    """Text of about ``tokens`` tokens (" cache" is one cl100k token)."""
    return "cache" + " cache" * (tokens - 1)


SYSTEM = words(1200)     # over Nova's 1,000, under Claude 3.5 Haiku's 2,048
ANSWER = words(1100)     # an earlier answer long enough for a point of its own on Nova
DOCUMENT = words(2500)   # a document sent ahead of the question


def call_for(model: str, *messages: dict, tools: list | None = None, prompt_cache: bool = True) -> ProviderCall:
    body: dict = {"model": "chat", "messages": list(messages)}
    if tools:
        body["tools"] = tools
    chat = ChatRequest.model_validate(body)
    return ProviderCall(model=model, messages=chat.messages, max_tokens=64, tools=chat.tools,
                        prompt_cache=prompt_cache)


def answer(usage: dict | None = None) -> dict:
    return {"output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}}, "stopReason": "end_turn",
            "usage": usage or USAGE, "metrics": {"latencyMs": 80}}


def complete(client, call, priced=PRICED):
    return asyncio.run(BedrockProvider(client, cache_priced_models=priced).complete(call))


def test_the_texts_are_as_long_as_the_tests_assume():
    assert count_tokens(SYSTEM) == 1200 and count_tokens(ANSWER) == 1100 and count_tokens(DOCUMENT) == 2500


def test_the_system_prompt_and_the_earlier_turns_end_with_cache_points(client, stubber):
    stubber.add_response("converse", answer(), {
        "modelId": NOVA, "inferenceConfig": {"maxTokens": 64},
        "system": [{"text": SYSTEM}, CACHE_POINT],
        "messages": [{"role": "user", "content": [{"text": "first question"}]},
                     {"role": "assistant", "content": [{"text": ANSWER}, CACHE_POINT]},
                     {"role": "user", "content": [{"text": "second question"}]}]})
    complete(client, call_for(NOVA, {"role": "system", "content": SYSTEM},
                              {"role": "user", "content": "first question"},
                              {"role": "assistant", "content": ANSWER},
                              {"role": "user", "content": "second question"}))


def test_a_document_sent_ahead_of_the_question_is_cached_apart_from_it(client, stubber):
    # consecutive user messages become one Converse message: the point goes between its blocks
    stubber.add_response("converse", answer(), {
        "modelId": NOVA, "inferenceConfig": {"maxTokens": 64},
        "messages": [{"role": "user", "content": [{"text": DOCUMENT}, CACHE_POINT, {"text": "summarise it"}]}]})
    complete(client, call_for(NOVA, {"role": "user", "content": DOCUMENT}, {"role": "user", "content": "summarise it"}))


def test_long_tool_definitions_end_with_a_cache_point_where_the_model_takes_one(client, stubber):
    tool = {"type": "function", "function": {"name": "lookup", "description": words(2100),
                                             "parameters": {"type": "object", "properties": {}}}}
    spec = {"toolSpec": {"name": "lookup", "description": words(2100),
                         "inputSchema": {"json": {"type": "object", "properties": {}}}}}
    stubber.add_response("converse", answer(), {
        "modelId": HAIKU, "inferenceConfig": {"maxTokens": 64},
        "system": [{"text": "be brief"}],  # 4 tokens past the tools' point: too short for another
        "messages": [{"role": "user", "content": [{"text": "hi"}]}],
        "toolConfig": {"tools": [spec, CACHE_POINT]}})
    complete(client, call_for(HAIKU, {"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
                              tools=[tool]))
    # Nova's toolConfig takes no point; its tools count towards the system prompt's instead
    stubber.add_response("converse", answer(), {
        "modelId": NOVA, "inferenceConfig": {"maxTokens": 64},
        "system": [{"text": "be brief"}, CACHE_POINT],
        "messages": [{"role": "user", "content": [{"text": "hi"}]}],
        "toolConfig": {"tools": [spec]}})
    complete(client, call_for(NOVA, {"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
                              tools=[tool]))


PLAIN = {"modelId": NOVA, "inferenceConfig": {"maxTokens": 64}, "system": [{"text": SYSTEM}],
         "messages": [{"role": "user", "content": [{"text": "hi"}]}]}


@pytest.mark.parametrize("model, prompt_cache, priced, system", [
    (NOVA, True, PRICED, "be brief"),      # a prefix short of the model's minimum
    (LLAMA, True, PRICED, SYSTEM),         # a model without a prompt cache (it would refuse the block)
    (NOVA, True, frozenset(), SYSTEM),     # a model whose cache rates have no price
    (NOVA, False, PRICED, SYSTEM),         # a route with prompt-caching = false
])
def test_no_cache_point_where_it_does_not_belong(client, stubber, model, prompt_cache, priced, system):
    stubber.add_response("converse", answer(), {**PLAIN, "modelId": model, "system": [{"text": system}]})
    complete(client, call_for(model, {"role": "system", "content": system}, {"role": "user", "content": "hi"},
                              prompt_cache=prompt_cache), priced)


def test_cached_tokens_are_read_from_a_converse_answer(client, stubber):
    usage = {"inputTokens": 20, "outputTokens": 9, "totalTokens": 1229, "cacheReadInputTokens": 1200,
             "cacheWriteInputTokens": 0}
    stubber.add_response("converse", answer(usage), None)
    completion = complete(client, call_for(NOVA, {"role": "system", "content": SYSTEM},
                                           {"role": "user", "content": "hi"}))
    assert completion.usage == Usage(prompt_tokens=1220, completion_tokens=9, cached_tokens=1200)


def test_a_stream_sends_the_cache_points_and_reports_cached_and_written_tokens(client):
    wire = ConverseStreamWire(client)
    wire.add([{"messageStart": {"role": "assistant"}},
              {"contentBlockDelta": {"delta": {"text": "ok"}, "contentBlockIndex": 0}},
              {"messageStop": {"stopReason": "end_turn"}},
              {"metadata": {"usage": {"inputTokens": 5, "outputTokens": 1, "totalTokens": 2306,
                                      "cacheReadInputTokens": 1200, "cacheWriteInputTokens": 1100},
                            "metrics": {"latencyMs": 50}}}])

    async def run():
        provider = BedrockProvider(client, cache_priced_models=PRICED)
        return [delta async for delta in provider.stream(call_for(
            NOVA, {"role": "system", "content": SYSTEM}, {"role": "user", "content": "first question"},
            {"role": "assistant", "content": ANSWER}, {"role": "user", "content": "second question"}))]

    deltas = asyncio.run(run())
    assert wire.requests[0]["system"] == [{"text": SYSTEM}, CACHE_POINT]
    assert wire.requests[0]["messages"][1]["content"] == [{"text": ANSWER}, CACHE_POINT]
    assert deltas[-1].usage == Usage(prompt_tokens=2305, completion_tokens=1, cached_tokens=1200,
                                     cache_write_tokens=1100)
