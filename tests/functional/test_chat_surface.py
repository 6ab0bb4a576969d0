"""Tools, structured outputs, images and the remaining parameters, as the official openai SDK
uses them, against the gateway under uvicorn on moto server (simulated provider)."""

from __future__ import annotations

import base64
import json

import openai
import pytest
from pydantic import BaseModel

from ..support import openai_client

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "unit": {"type": "string", "enum": ["c", "f"]}},
                   "required": ["city", "unit"], "additionalProperties": False}}}
TIME_TOOL = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}},
                                       "required": ["zone"]}}}
# a 1x1 PNG
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
DATA_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


class Weather(BaseModel):
    city: str
    celsius: float
    conditions: list[str]


@pytest.fixture
def client(gateway):
    return openai_client(gateway.url, gateway.key)


def test_tool_round_trip_call_result_final_answer(client):
    messages = [{"role": "user", "content": "What is the weather in Paris? Use get_weather."}]
    first = client.chat.completions.create(model="chat", messages=messages, tools=[WEATHER_TOOL, TIME_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("call_")
    arguments = json.loads(call.function.arguments)
    assert set(arguments) == {"city", "unit"} and arguments["unit"] in ("c", "f")

    # the SDK's own message object goes back in, as apps (and the README) do it
    messages += [choice.message, {"role": "tool", "tool_call_id": call.id, "content": '{"celsius": 21}'}]
    final = client.chat.completions.create(model="chat", messages=messages, tools=[WEATHER_TOOL, TIME_TOOL])
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.content.startswith("[simulated]")
    assert final.choices[0].message.tool_calls is None


def test_tool_choice_required_named_none_and_parallel(client):
    ask = [{"role": "user", "content": "hello there"}]
    required = client.chat.completions.create(model="chat", messages=ask, tools=[WEATHER_TOOL],
                                              tool_choice="required")
    assert required.choices[0].message.tool_calls[0].function.name == "get_weather"
    named = client.chat.completions.create(model="chat", messages=ask, tools=[WEATHER_TOOL, TIME_TOOL],
                                           tool_choice={"type": "function", "function": {"name": "get_time"}})
    assert [c.function.name for c in named.choices[0].message.tool_calls] == ["get_time"]
    both = [{"role": "user", "content": "call get_weather and get_time"}]
    parallel = client.chat.completions.create(model="chat", messages=both, tools=[WEATHER_TOOL, TIME_TOOL])
    assert [c.function.name for c in parallel.choices[0].message.tool_calls] == ["get_weather", "get_time"]
    single = client.chat.completions.create(model="chat", messages=both, tools=[WEATHER_TOOL, TIME_TOOL],
                                            parallel_tool_calls=False)
    assert len(single.choices[0].message.tool_calls) == 1
    none = client.chat.completions.create(model="chat", messages=both, tools=[WEATHER_TOOL], tool_choice="none")
    assert none.choices[0].finish_reason == "stop" and none.choices[0].message.tool_calls is None


def test_streamed_tool_calls_are_reassembled_by_the_sdk(client):
    messages = [{"role": "user", "content": "call get_weather and get_time"}]
    raw_chunks = list(client.chat.completions.create(model="chat", messages=messages, stream=True,
                                                     tools=[WEATHER_TOOL, TIME_TOOL]))
    pieces = [c.choices[0].delta.tool_calls[0] for c in raw_chunks if c.choices and c.choices[0].delta.tool_calls]
    # exactly as OpenAI streams them: id, type and name first, then the arguments in pieces
    firsts = [p for p in pieces if p.id]
    assert [(p.index, p.function.name) for p in firsts] == [(0, "get_weather"), (1, "get_time")]
    assert all(p.function.arguments == "" for p in firsts)
    assert len([p for p in pieces if p.id is None]) >= 4
    assert all(p.function.name is None for p in pieces if p.id is None)
    with client.chat.completions.stream(model="chat", messages=messages, tools=[WEATHER_TOOL, TIME_TOOL]) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert final.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0].function.arguments)["unit"] in ("c", "f")
    assert "zone" in json.loads(calls[1].function.arguments)


def test_parse_with_a_pydantic_model_returns_the_parsed_object(client):
    completion = client.chat.completions.parse(model="chat", response_format=Weather,
                                               messages=[{"role": "user", "content": "Weather in Oslo as JSON"}])
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Weather)
    assert parsed.conditions and all(isinstance(c, str) for c in parsed.conditions)
    again = client.chat.completions.parse(model="chat", response_format=Weather,
                                          messages=[{"role": "user", "content": "Weather in Oslo as JSON"}])
    assert again.choices[0].message.parsed == parsed  # deterministic


def test_streamed_structured_output_and_json_object(client):
    with client.chat.completions.stream(model="chat", response_format=Weather,
                                        messages=[{"role": "user", "content": "Weather in Rome"}]) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert isinstance(final.choices[0].message.parsed, Weather)
    answer = client.chat.completions.create(model="chat", response_format={"type": "json_object"},
                                            messages=[{"role": "user", "content": "Answer in JSON"}])
    assert isinstance(json.loads(answer.choices[0].message.content), dict)


def test_an_answer_that_does_not_fit_the_schema_is_an_error_not_a_200(client):
    # the simulated model cannot satisfy a pattern it does not know how to write
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[0-9]{6}$"}},
              "required": ["code"], "additionalProperties": False}
    response_format = {"type": "json_schema", "json_schema": {"name": "code", "schema": schema, "strict": True}}
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="chat", response_format=response_format,
                                       messages=[{"role": "user", "content": "a code"}])
    assert caught.value.status_code == 502
    assert caught.value.body["code"] == "invalid_structured_output"
    chunks = client.chat.completions.create(model="chat", response_format=response_format, stream=True,
                                            messages=[{"role": "user", "content": "a code"}])
    finishes = []
    with pytest.raises(openai.APIError) as caught:  # the stream ends with an error event, not "stop"
        for chunk in chunks:
            finishes += [c.finish_reason for c in chunk.choices if c.finish_reason]
    assert finishes == [] and "does not match" in str(caught.value)


def test_invalid_schema_is_a_400_naming_it(client):
    response_format = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nonsense"}}}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="chat", response_format=response_format,
                                       messages=[{"role": "user", "content": "hi"}])
    assert caught.value.body["param"] == "response_format.json_schema.schema"


def test_image_data_url_is_accepted_and_changes_the_answer(client):
    def ask(url: str) -> str:
        content = [{"type": "text", "text": "What is in this image?"},
                   {"type": "image_url", "image_url": {"url": url}}]
        return client.chat.completions.create(model="chat", messages=[{"role": "user", "content": content}],
                                              temperature=0).choices[0].message.content

    first = ask(DATA_URL)
    other = ask("data:image/png;base64," + base64.b64encode(PNG + b"\0").decode())
    assert first != other  # the image is part of the prompt (and of the cache key)


def test_unknown_field_is_refused_by_name(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}],
                                       extra_body={"frobnicate": 1})
    assert caught.value.body["param"] == "frobnicate"
    assert caught.value.body["code"] == "unsupported_parameter"


def test_harmless_fields_are_accepted(client):
    answer = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}],
                                            user="u-1", metadata={"app": "x"}, store=False,
                                            service_tier="auto", extra_body={"prompt_cache_key": "k"})
    assert answer.choices[0].message.content.startswith("[simulated]")


def test_bad_part_is_named_in_openai_notation(client):
    content = [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": 5}}]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": content}])
    assert caught.value.body["param"] == "messages[0].content[1].image_url.url"


def test_tool_call_answers_are_cached_with_their_calls(client):
    messages = [{"role": "user", "content": "Use get_weather for Lima, please."}]
    first = client.chat.completions.with_raw_response.create(model="chat", messages=messages, tools=[WEATHER_TOOL],
                                                             temperature=0)
    again = client.chat.completions.with_raw_response.create(model="chat", messages=messages, tools=[WEATHER_TOOL],
                                                             temperature=0)
    assert (first.headers["x-tierup-cache"], again.headers["x-tierup-cache"]) == ("miss", "hit-exact")
    assert again.parse().choices[0].message.tool_calls == first.parse().choices[0].message.tool_calls
    assert again.parse().choices[0].finish_reason == "tool_calls"
    with client.chat.completions.stream(model="chat", messages=messages, tools=[WEATHER_TOOL], temperature=0) as stream:
        for _ in stream:
            pass
        streamed = stream.get_final_completion().choices[0].message.tool_calls
    assert [(c.id, c.function.arguments) for c in streamed] == [
        (c.id, c.function.arguments) for c in first.parse().choices[0].message.tool_calls]
    # other tools, another answer: the tools are part of the key
    other = client.chat.completions.with_raw_response.create(model="chat", messages=messages, temperature=0,
                                                             tools=[WEATHER_TOOL, TIME_TOOL])
    assert other.headers["x-tierup-cache"] == "miss"


def test_seed_is_honoured_by_the_simulated_tier(client):
    def ask(seed: int) -> str:
        return client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "pick"}],
                                              seed=seed).choices[0].message.content

    assert ask(1) == ask(1) and ask(1) != ask(2)
