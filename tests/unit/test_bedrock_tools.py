"""Tools, images and structured outputs on the Bedrock provider, against a real boto3 client:
``Stubber`` checks every Converse request against the service model; ConverseStream answers are
real event-stream frames (``tests/fakes/bedrock_wire.py``) read by botocore's own decoder."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from botocore.stub import ANY

from functions.adapters.bedrock import BedrockProvider
from functions.core.chat import ChatRequest, ProviderCall
from functions.core.chat_params import passthrough_params
from functions.core.errors import RequestError
from tests.fakes.bedrock_wire import ConverseStreamWire

from .test_bedrock_provider import client, stubber  # noqa: F401  (the Stubbed client fixtures)

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
CLOCK = {"type": "function", "function": {"name": "get_time"}}
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}},
          "required": ["city", "celsius"], "additionalProperties": False}


def call_for(body: dict, max_tokens: int = 64) -> ProviderCall:
    """The ProviderCall the pipeline builds for a chat request body."""
    chat = ChatRequest.model_validate({"model": "chat", **body})
    return ProviderCall(model=MODEL, messages=chat.messages, max_tokens=max_tokens, tools=chat.tools,
                        tool_choice=chat.tool_choice, parallel_tool_calls=chat.parallel_tool_calls,
                        response_format=chat.response_format, passthrough=passthrough_params(chat))


def answer(*blocks: dict, stop_reason: str = "end_turn") -> dict:
    return {"output": {"message": {"role": "assistant", "content": list(blocks)}}, "stopReason": stop_reason,
            "usage": {"inputTokens": 30, "outputTokens": 9, "totalTokens": 39}, "metrics": {"latencyMs": 80}}


def complete(client, call):
    return asyncio.run(BedrockProvider(client).complete(call))


def collect(client, call):
    async def run():
        return [delta async for delta in BedrockProvider(client).stream(call)]

    return asyncio.run(run())


WEATHER_SPEC = {"toolSpec": {"name": "get_weather", "description": "Weather in a city",
                             "inputSchema": {"json": WEATHER["function"]["parameters"]}}}


# -- requests ----------------------------------------------------------------------------------


def test_tools_become_tool_config_and_auto_is_left_to_the_default(client, stubber):
    expected = {"modelId": MODEL, "messages": ANY, "inferenceConfig": ANY,
                "toolConfig": {"tools": [WEATHER_SPEC, {"toolSpec": {
                    "name": "get_time", "inputSchema": {"json": {"type": "object", "properties": {}}}}}]}}
    stubber.add_response("converse", answer({"text": "hi"}), expected)
    complete(client, call_for({"messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER, CLOCK],
                               "tool_choice": "auto"}))


@pytest.mark.parametrize("tool_choice, converse_choice", [
    ("required", {"any": {}}),
    ({"type": "function", "function": {"name": "get_weather"}}, {"tool": {"name": "get_weather"}}),
])
def test_tool_choice_maps_to_converse_tool_choice(client, stubber, tool_choice, converse_choice):
    expected = {"modelId": MODEL, "messages": ANY, "inferenceConfig": ANY,
                "toolConfig": {"tools": [WEATHER_SPEC], "toolChoice": converse_choice}}
    stubber.add_response("converse", answer({"text": "hi"}), expected)
    complete(client, call_for({"messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER],
                               "tool_choice": tool_choice}))


def test_tool_choice_none_sends_no_tools_but_is_refused_once_tools_were_used(client, stubber):
    stubber.add_response("converse", answer({"text": "hi"}),
                         {"modelId": MODEL, "messages": ANY, "inferenceConfig": ANY})
    complete(client, call_for({"messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER],
                               "tool_choice": "none"}))
    history = [{"role": "user", "content": "weather?"},
               {"role": "assistant", "tool_calls": [{"id": "t1", "type": "function",
                                                     "function": {"name": "get_weather", "arguments": "{}"}}]},
               {"role": "tool", "tool_call_id": "t1", "content": "sunny"}]
    with pytest.raises(RequestError) as caught:
        complete(client, call_for({"messages": history, "tools": [WEATHER], "tool_choice": "none"}))
    assert caught.value.param == "tool_choice"


def test_tool_calls_and_results_become_tool_use_and_tool_result_blocks(client, stubber):
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "tooluse_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "tooluse_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]},
        {"role": "tool", "tool_call_id": "tooluse_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "tooluse_2", "content": ""},
        {"role": "user", "content": "Thanks, summarise."},
    ]
    expected_messages = [
        {"role": "user", "content": [{"text": "Weather in Paris and Rome?"}]},
        {"role": "assistant", "content": [
            {"text": "Checking."},
            {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}},
            {"toolUse": {"toolUseId": "tooluse_2", "name": "get_weather", "input": {"city": "Rome"}}}]},
        # tool results are the user's turn, merged with the user's next words (roles alternate)
        {"role": "user", "content": [
            {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "sunny"}]}},
            {"toolResult": {"toolUseId": "tooluse_2", "content": [{"text": "(empty)"}]}},
            {"text": "Thanks, summarise."}]},
    ]
    stubber.add_response("converse", answer({"text": "Sunny in Paris."}),
                         {"modelId": MODEL, "system": [{"text": "be brief"}], "messages": expected_messages,
                          "inferenceConfig": ANY, "toolConfig": {"tools": [WEATHER_SPEC]}})
    assert complete(client, call_for({"messages": messages, "tools": [WEATHER]})).text == "Sunny in Paris."


def test_tool_call_arguments_that_are_not_json_are_refused_by_name(client):
    messages = [{"role": "user", "content": "x"},
                {"role": "assistant", "tool_calls": [{"id": "t", "type": "function",
                                                      "function": {"name": "get_weather", "arguments": "{oops"}}]},
                {"role": "tool", "tool_call_id": "t", "content": "r"}]
    with pytest.raises(RequestError) as caught:
        complete(client, call_for({"messages": messages, "tools": [WEATHER]}))
    assert caught.value.param == "messages[1].tool_calls[0].function.arguments"


def test_images_become_image_blocks_between_text(client, stubber):
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    content = [{"type": "text", "text": "Compare "}, {"type": "text", "text": "these:"},
               {"type": "image_url", "image_url": {"url": url}},
               {"type": "image_url", "image_url": {"url": url.replace("image/png", "image/jpeg"), "detail": "low"}},
               {"type": "text", "text": "Which is brighter?"}]
    expected = [{"role": "user", "content": [
        {"text": "Compare these:"},
        {"image": {"format": "png", "source": {"bytes": PNG}}},
        {"image": {"format": "jpeg", "source": {"bytes": PNG}}},
        {"text": "Which is brighter?"}]}]
    stubber.add_response("converse", answer({"text": "the first"}),
                         {"modelId": MODEL, "messages": expected, "inferenceConfig": ANY})
    complete(client, call_for({"messages": [{"role": "user", "content": content}]}))


def test_structured_output_is_a_forced_tool_whose_input_is_the_answer(client, stubber):
    response_format = {"type": "json_schema", "json_schema": {"name": "weather", "schema": SCHEMA, "strict": True}}
    expected = {"modelId": MODEL, "messages": ANY, "inferenceConfig": ANY, "toolConfig": {
        "tools": [{"toolSpec": {"name": "weather", "description": "Give the answer as this tool's input.",
                                "inputSchema": {"json": SCHEMA}}}],
        "toolChoice": {"tool": {"name": "weather"}}}}
    stubber.add_response("converse", answer(
        {"text": "Here it is."},
        {"toolUse": {"toolUseId": "tu1", "name": "weather", "input": {"city": "Oslo", "celsius": 4.5}}},
        stop_reason="tool_use"), expected)
    completion = complete(client, call_for({"messages": [{"role": "user", "content": "Oslo?"}],
                                            "response_format": response_format}))
    assert json.loads(completion.text) == {"city": "Oslo", "celsius": 4.5}
    assert completion.finish_reason == "stop" and completion.tool_calls == []


def test_structured_output_with_tools_lets_the_model_call_either(client, stubber):
    expected = {"modelId": MODEL, "messages": ANY, "inferenceConfig": ANY, "toolConfig": {
        "tools": [WEATHER_SPEC, {"toolSpec": {"name": "json_object", "description": ANY,
                                              "inputSchema": {"json": {"type": "object"}}}}],
        "toolChoice": {"any": {}}}}
    stubber.add_response("converse", answer(
        {"toolUse": {"toolUseId": "tu9", "name": "get_weather", "input": {"city": "Oslo"}}}, stop_reason="tool_use"),
        expected)
    completion = complete(client, call_for({"messages": [{"role": "user", "content": "Oslo?"}], "tools": [WEATHER],
                                            "response_format": {"type": "json_object"}}))
    assert completion.finish_reason == "tool_calls"
    assert [(c.id, c.name, json.loads(c.arguments)) for c in completion.tool_calls] == [
        ("tu9", "get_weather", {"city": "Oslo"})]


# -- answers -----------------------------------------------------------------------------------


def test_tool_use_answer_becomes_tool_calls(client, stubber):
    stubber.add_response("converse", answer(
        {"text": "Let me check."},
        {"toolUse": {"toolUseId": "tu1", "name": "get_weather", "input": {"city": "Paris"}}},
        {"toolUse": {"toolUseId": "tu2", "name": "get_weather", "input": {"city": "Rome"}}},
        stop_reason="tool_use"), None)
    completion = complete(client, call_for({"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER]}))
    assert completion.finish_reason == "tool_calls"
    assert completion.text == "Let me check."
    assert [(c.id, json.loads(c.arguments)) for c in completion.tool_calls] == [
        ("tu1", {"city": "Paris"}), ("tu2", {"city": "Rome"})]


def test_parallel_tool_calls_false_keeps_the_first_call(client, stubber):
    stubber.add_response("converse", answer(
        {"toolUse": {"toolUseId": "tu1", "name": "get_weather", "input": {"city": "Paris"}}},
        {"toolUse": {"toolUseId": "tu2", "name": "get_weather", "input": {"city": "Rome"}}},
        stop_reason="tool_use"), None)
    completion = complete(client, call_for({"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER],
                                            "parallel_tool_calls": False}))
    assert [c.id for c in completion.tool_calls] == ["tu1"]


def _tool_stream(name: str = "get_weather", stop_reason: str = "tool_use") -> list[dict]:
    return [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"delta": {"text": "Checking."}, "contentBlockIndex": 0}},
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"contentBlockStart": {"start": {"toolUse": {"toolUseId": "tu1", "name": name}}, "contentBlockIndex": 1}},
        {"contentBlockDelta": {"delta": {"toolUse": {"input": '{"ci'}}, "contentBlockIndex": 1}},
        {"contentBlockDelta": {"delta": {"toolUse": {"input": 'ty": "Paris"}'}}, "contentBlockIndex": 1}},
        {"contentBlockStop": {"contentBlockIndex": 1}},
        {"contentBlockStart": {"start": {"toolUse": {"toolUseId": "tu2", "name": "get_time"}}, "contentBlockIndex": 2}},
        {"contentBlockStop": {"contentBlockIndex": 2}},
        {"messageStop": {"stopReason": stop_reason}},
        {"metadata": {"usage": {"inputTokens": 20, "outputTokens": 12, "totalTokens": 32},
                      "metrics": {"latencyMs": 40}}},
    ]


def test_tool_use_stream_events_become_openai_tool_call_pieces(client):
    wire = ConverseStreamWire(client)
    wire.add(_tool_stream())
    deltas = collect(client, call_for({"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER, CLOCK]}))
    pieces = [(p.index, p.id, p.name, p.arguments) for d in deltas for p in d.tool_calls or ()]
    assert pieces == [(0, "tu1", "get_weather", ""), (0, None, None, '{"ci'), (0, None, None, 'ty": "Paris"}'),
                      (1, "tu2", "get_time", ""), (1, None, None, "{}")]  # no input at all still parses
    assert "".join(d.text for d in deltas) == "Checking."
    assert deltas[-1].finish_reason == "tool_calls" and deltas[-1].usage.completion_tokens == 12
    assert wire.requests[0]["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"


def test_structured_output_streams_the_forced_tools_input_as_text(client):
    wire = ConverseStreamWire(client)
    wire.add(_tool_stream(name="weather")[3:7] + _tool_stream()[9:])
    response_format = {"type": "json_schema", "json_schema": {"name": "weather", "schema": SCHEMA}}
    deltas = collect(client, call_for({"messages": [{"role": "user", "content": "x"}],
                                       "response_format": response_format}))
    assert "".join(d.text for d in deltas) == '{"city": "Paris"}'
    assert all(d.tool_calls is None for d in deltas)
    assert deltas[-1].finish_reason == "stop"
    assert wire.requests[0]["toolConfig"]["toolChoice"] == {"tool": {"name": "weather"}}
