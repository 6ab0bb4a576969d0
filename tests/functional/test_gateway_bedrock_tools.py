"""Tools and structured outputs through the whole path on the serverless tier: the openai SDK ->
gateway -> Bedrock provider on a real boto3 client (Converse stubbed with ``Stubber``,
ConverseStream served as event-stream frames)."""

from __future__ import annotations

import json

from botocore.stub import ANY
from pydantic import BaseModel

from tests.fakes.bedrock_wire import ConverseStreamWire

from .test_gateway_bedrock import bedrock_gateway  # noqa: F401  (the fixture)

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


class Weather(BaseModel):
    city: str
    celsius: float


def test_sdk_parse_through_bedrocks_forced_tool(bedrock_gateway):  # noqa: F811
    bedrock_gateway.stubber.add_response(
        "converse",
        {"output": {"message": {"role": "assistant", "content": [
            {"toolUse": {"toolUseId": "tu1", "name": "Weather", "input": {"city": "Oslo", "celsius": 3.5}}}]}},
         "stopReason": "tool_use", "usage": {"inputTokens": 40, "outputTokens": 12, "totalTokens": 52},
         "metrics": {"latencyMs": 90}},
        {"modelId": ANY, "messages": ANY, "inferenceConfig": ANY,
         "toolConfig": {"tools": ANY, "toolChoice": {"tool": {"name": "Weather"}}}})
    completion = bedrock_gateway.client.chat.completions.parse(
        model="chat", response_format=Weather, messages=[{"role": "user", "content": "Oslo?"}])
    assert completion.choices[0].message.parsed == Weather(city="Oslo", celsius=3.5)
    assert completion.choices[0].finish_reason == "stop"


def test_streamed_tool_use_reassembled_by_the_sdk(bedrock_gateway):  # noqa: F811
    bedrock_gateway.stubber.deactivate()  # the Stubber would answer before the wire is reached
    wire = ConverseStreamWire(bedrock_gateway.bedrock)
    wire.add([{"messageStart": {"role": "assistant"}},
              {"contentBlockStart": {"start": {"toolUse": {"toolUseId": "tu7", "name": "get_weather"}},
                                     "contentBlockIndex": 0}},
              {"contentBlockDelta": {"delta": {"toolUse": {"input": '{"city":'}}, "contentBlockIndex": 0}},
              {"contentBlockDelta": {"delta": {"toolUse": {"input": ' "Lima"}'}}, "contentBlockIndex": 0}},
              {"contentBlockStop": {"contentBlockIndex": 0}},
              {"messageStop": {"stopReason": "tool_use"}},
              {"metadata": {"usage": {"inputTokens": 30, "outputTokens": 8, "totalTokens": 38},
                            "metrics": {"latencyMs": 50}}}])
    with bedrock_gateway.client.chat.completions.stream(
            model="chat", messages=[{"role": "user", "content": "Lima?"}], tools=[WEATHER]) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    (call,) = final.choices[0].message.tool_calls
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == ("tu7", "get_weather", {"city": "Lima"})
    assert final.choices[0].finish_reason == "tool_calls"
    assert wire.requests[0]["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"
