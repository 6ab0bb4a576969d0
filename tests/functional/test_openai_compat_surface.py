"""Tools, structured outputs, images and sampling parameters on an OpenAI-compatible tier (vLLM,
OpenAI): passed through as the client sent them, tool calls and logprobs relayed. A real aiohttp
upstream on 127.0.0.1 (``tests/openai_upstream.py``); the whole path with the openai SDK."""

from __future__ import annotations

import asyncio
import base64

import openai
import pytest
from pydantic import BaseModel

from functions.adapters.openai_compat import OpenAICompatibleProvider
from functions.core.chat import ChatRequest, ProviderCall
from functions.core.chat_params import passthrough_params

from ..openai_upstream import ANSWER_PIECES, TOOL_CALLS, ScriptedUpstream
from ..support import openai_client

WEATHER = {"type": "function", "function": {"name": "get_weather", "strict": True, "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
    "additionalProperties": False}}}
CLOCK = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}},
          "required": ["city", "celsius"], "additionalProperties": False}
IMAGE = "data:image/png;base64," + base64.b64encode(b"\x89PNG fake").decode()


@pytest.fixture(scope="module")
def upstream():
    server = ScriptedUpstream(chunk_bytes=7).start()
    yield server
    server.stop()


def call_for(model: str, body: dict) -> ProviderCall:
    chat = ChatRequest.model_validate({"model": "chat", **body})
    return ProviderCall(model=model, messages=chat.messages, max_tokens=32, tools=chat.tools,
                        tool_choice=chat.tool_choice, parallel_tool_calls=chat.parallel_tool_calls,
                        response_format=chat.response_format, passthrough=passthrough_params(chat))


def run(action, url: str):
    async def main():
        provider = OpenAICompatibleProvider(url, "sk-test", timeout_s=10, name="upstream")
        try:
            return await action(provider)
        finally:
            await provider.close()

    return asyncio.run(main())


async def collect(provider, call):
    return [delta async for delta in provider.stream(call)]


def test_everything_is_passed_through_as_the_client_sent_it(upstream):
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                     {"type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}}]},
        {"role": "assistant", "content": None, "tool_calls": [TOOL_CALLS[0]]},
        {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
        {"role": "user", "content": "thanks"},
    ]
    response_format = {"type": "json_schema", "json_schema": {"name": "w", "schema": SCHEMA, "strict": True}}
    body = {"messages": messages, "tools": [WEATHER, CLOCK], "tool_choice": "required", "parallel_tool_calls": False,
            "response_format": response_format, "seed": 7, "presence_penalty": 0.5, "frequency_penalty": -0.5,
            "logprobs": True, "top_logprobs": 2, "logit_bias": {"50256": -100}, "reasoning_effort": "low"}
    run(lambda p: p.complete(call_for("ok", body)), upstream.url)
    sent = upstream.requests[-1]["body"]
    assert sent["messages"] == messages
    assert sent["tools"] == [WEATHER, CLOCK]
    assert sent["response_format"] == response_format  # "schema", as OpenAI names it
    for name in ("tool_choice", "parallel_tool_calls", "seed", "presence_penalty", "frequency_penalty", "logprobs",
                 "top_logprobs", "logit_bias", "reasoning_effort"):
        assert sent[name] == body[name], name


def test_plain_requests_are_sent_as_before(upstream):
    run(lambda p: p.complete(call_for("ok", {"messages": [{"role": "user", "content": "hi"}]})), upstream.url)
    assert upstream.requests[-1]["body"] == {"model": "ok", "max_tokens": 32,
                                             "messages": [{"role": "user", "content": "hi"}]}


def test_tool_calls_and_logprobs_are_read_from_the_answer(upstream):
    completion = run(lambda p: p.complete(call_for("tools", {"messages": [{"role": "user", "content": "x"}],
                                                             "tools": [WEATHER, CLOCK]})), upstream.url)
    assert completion.finish_reason == "tool_calls" and completion.text == ""
    assert [(c.id, c.name, c.arguments) for c in completion.tool_calls] == [
        (c["id"], c["function"]["name"], c["function"]["arguments"]) for c in TOOL_CALLS]
    with_logprobs = run(lambda p: p.complete(call_for("ok", {"messages": [{"role": "user", "content": "x"}],
                                                             "logprobs": True})), upstream.url)
    assert [entry["token"] for entry in with_logprobs.logprobs["content"]] == ANSWER_PIECES


@pytest.mark.parametrize("chunk_bytes", [1, 9, 4096])
def test_streamed_tool_call_pieces_are_relayed_in_order(chunk_bytes):
    server = ScriptedUpstream(chunk_bytes=chunk_bytes).start()
    try:
        deltas = run(lambda p: collect(p, call_for("tools", {"messages": [{"role": "user", "content": "x"}],
                                                             "tools": [WEATHER, CLOCK]})), server.url)
    finally:
        server.stop()
    pieces = [piece for delta in deltas for piece in delta.tool_calls or ()]
    firsts = [(p.index, p.id, p.name) for p in pieces if p.id]
    assert firsts == [(0, "call_a", "get_weather"), (1, "call_b", "get_time")]
    for index, call in enumerate(TOOL_CALLS):
        assert "".join(p.arguments for p in pieces if p.index == index) == call["function"]["arguments"]
    assert deltas[-1].finish_reason == "tool_calls"


# -- the whole path -----------------------------------------------------------------------------


@pytest.fixture
def client(upstream, make_runtime, serve):
    from functions.gateway.composition import build_gateway
    from tierup.local_stack import create_key

    def start(model: str):
        runtime = make_runtime({"tiers": {"serverless": {"provider": "openai", "base-url": upstream.url}},
                                "routes": {"chat": {"serverless": model}},
                                "pricing": {"models": {model: {"input-per-mtok": 1, "output-per-mtok": 2}}}},
                               environ={"TIERUP_PROVIDER": ""})
        return openai_client(serve(build_gateway(runtime)), create_key(runtime, "acme", "pro"))

    return start


class Weather(BaseModel):
    city: str
    celsius: float


def test_sdk_reassembles_streamed_tool_calls_through_the_gateway(client):
    with client("tools").chat.completions.stream(model="chat", messages=[{"role": "user", "content": "x"}],
                                                 tools=[WEATHER, CLOCK]) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert final.choices[0].finish_reason == "tool_calls"
    assert [(c.id, c.function.name, c.function.arguments) for c in final.choices[0].message.tool_calls] == [
        (c["id"], c["function"]["name"], c["function"]["arguments"]) for c in TOOL_CALLS]
    # strict tool arguments were checked, and parsed by the SDK
    assert final.choices[0].message.tool_calls[0].function.parsed_arguments == {"city": "Paris"}


def test_sdk_parse_and_logprobs_through_the_gateway(client):
    parsed = client("json").chat.completions.parse(model="chat", response_format=Weather,
                                                   messages=[{"role": "user", "content": "Oslo"}])
    assert parsed.choices[0].message.parsed == Weather(city="Oslo", celsius=4.5)
    answer = client("ok").chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}],
                                                  logprobs=True, top_logprobs=0)
    assert [entry.token for entry in answer.choices[0].logprobs.content] == ANSWER_PIECES
    chunks = list(client("ok").chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}],
                                                       logprobs=True, stream=True))
    assert [entry.token for c in chunks if c.choices and c.choices[0].logprobs
            for entry in c.choices[0].logprobs.content] == ANSWER_PIECES


def test_an_upstream_answer_that_is_not_the_requested_json_is_a_502(client):
    with pytest.raises(openai.APIStatusError) as caught:
        client("prose").chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}],
                                                response_format={"type": "json_object"})
    assert caught.value.status_code == 502 and caught.value.body["code"] == "invalid_structured_output"
    # an answer cut short is not labelled success: it is passed on as it is, finish_reason "length"
    schema_format = {"type": "json_schema", "json_schema": {"name": "w", "schema": SCHEMA}}
    cut = client("ok").chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}],
                                               response_format=schema_format)
    assert cut.choices[0].finish_reason == "length"
