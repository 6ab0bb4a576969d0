"""The Responses API on an OpenAI-compatible tier: what the upstream is sent (the request as
chat, tools nested, ``text.format`` as ``response_format``) and what the client gets back
(tool calls streamed as Responses events, logprobs relayed). A real aiohttp upstream on
127.0.0.1 (``tests/openai_upstream.py``); the whole path with the openai SDK."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from ..openai_upstream import ANSWER_PIECES, TOOL_CALLS, ScriptedUpstream
from ..support import openai_client

WEATHER = {"type": "function", "name": "get_weather", "strict": True, "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
    "additionalProperties": False}}
CLOCK = {"type": "function", "name": "get_time", "strict": False, "parameters": {"type": "object", "properties": {}}}


class Weather(BaseModel):
    city: str
    celsius: float


@pytest.fixture(scope="module")
def upstream():
    server = ScriptedUpstream(chunk_bytes=7).start()
    yield server
    server.stop()


@pytest.fixture
def client(upstream, make_runtime, serve):
    from functions.gateway.composition import build_gateway
    from tierup.local_stack import create_key

    def start(model: str):
        runtime = make_runtime({"tiers": {"serverless": {"provider": "openai", "base-url": upstream.url}},
                                "routes": {"chat": {"serverless": model, "cache": {"exact": False,
                                                                                   "semantic": False}}},
                                "pricing": {"models": {model: {"input-per-mtok": 1, "output-per-mtok": 2}}}},
                               environ={"TIERUP_PROVIDER": ""})
        return openai_client(serve(build_gateway(runtime)), create_key(runtime, "acme", "pro"))

    return start


def test_the_upstream_gets_the_request_as_chat(client, upstream):
    client("tools").responses.create(model="chat", instructions="Be brief.", tools=[WEATHER, CLOCK],
                                     tool_choice="required", parallel_tool_calls=False, max_output_tokens=40,
                                     input=[{"role": "user", "content": "Paris?"},
                                            {"type": "function_call", "call_id": "call_a", "name": "get_weather",
                                             "arguments": '{"city": "Paris"}'},
                                            {"type": "function_call_output", "call_id": "call_a", "output": "sunny"}])
    sent = upstream.requests[-1]["body"]
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [TOOL_CALLS[0]]},
        {"role": "tool", "tool_call_id": "call_a", "content": "sunny"}]
    assert sent["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "strict": True, "parameters": WEATHER["parameters"]}},
        {"type": "function", "function": {"name": "get_time", "strict": False, "parameters": CLOCK["parameters"]}}]
    assert (sent["tool_choice"], sent["parallel_tool_calls"], sent["max_tokens"]) == ("required", False, 40)


def test_streamed_tool_calls_from_the_upstream_arrive_as_function_call_items(client):
    with client("tools").responses.stream(model="chat", input="x", tools=[WEATHER, CLOCK]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    added = [event.item for event in events if event.type == "response.output_item.added"]
    assert [(item.type, item.call_id, item.name) for item in added] == [
        ("function_call", "call_a", "get_weather"), ("function_call", "call_b", "get_time")]
    assert [(item.call_id, item.arguments) for item in final.output] == [
        (call["id"], call["function"]["arguments"]) for call in TOOL_CALLS]


def test_text_format_goes_up_as_response_format_and_logprobs_come_back(client, upstream):
    parsed = client("json").responses.parse(model="chat", input="Oslo", text_format=Weather)
    assert parsed.output_parsed == Weather(city="Oslo", celsius=4.5)
    sent = upstream.requests[-1]["body"]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Weather"
    assert sent["json_schema"]["strict"] is True and sent["json_schema"]["schema"]["required"] == ["city", "celsius"]
    answer = client("ok").responses.create(model="chat", input="x", include=["message.output_text.logprobs"])
    assert [entry.token for entry in answer.output[0].content[0].logprobs] == ANSWER_PIECES
    assert upstream.requests[-1]["body"]["logprobs"] is True
    assert answer.status == "incomplete"  # the scripted answer is cut at its length
    with client("ok").responses.stream(model="chat", input="x", include=["message.output_text.logprobs"]) as stream:
        tokens = [entry.token for event in stream if event.type == "response.output_text.delta"
                  for entry in event.logprobs]
    assert tokens == ANSWER_PIECES
    assert json.loads(parsed.output_text) == {"city": "Oslo", "celsius": 4.5}
