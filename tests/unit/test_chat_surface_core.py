"""The pure parts of tools, structured outputs and images: request checks, schema examples and
validation, cache keys, token estimates, validation-error params, image limits."""

from __future__ import annotations

import base64
import json
from enum import Enum
from typing import Literal

import pytest
from pydantic import BaseModel, Field, ValidationError

from functions.core.cache.keys import cache_keys
from functions.core.chat import ChatRequest, Completion, ToolCall, Usage
from functions.core.chat_params import IGNORED_PARAMS, check_chat_request, requested_params
from functions.core.config import RouteConfig
from functions.core.config.images import RouteImagesConfig
from functions.core.errors import BodyTooLargeError, InvalidStructuredOutputError, RequestError
from functions.core.images import check_images, decode_data_url
from functions.core.schema_example import example_for
from functions.core.structured_output import check_completion
from functions.core.tokens import IMAGE_TOKENS, IMAGE_TOKENS_LOW, count_chat_tokens, count_request_tokens
from functions.gateway.validation import validation_message

USER = [{"role": "user", "content": "hi"}]
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {
    "type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}
PNG_URL = "data:image/png;base64," + base64.b64encode(b"\x89PNG" + b"\0" * 96).decode()


def chat(**body) -> ChatRequest:
    return ChatRequest.model_validate({"model": "chat", "messages": USER, **body})


def refusal(**body) -> RequestError:
    with pytest.raises(RequestError) as caught:
        check_chat_request(chat(**body))
    return caught.value


# -- request checks --------------------------------------------------------------------------


def test_unknown_fields_are_refused_by_name_and_harmless_ones_accepted():
    assert refusal(logit_bias_v2=1).param == "logit_bias_v2"
    assert refusal(functions=[{"name": "f"}]).param == "functions"  # the legacy API is not silently ignored
    check_chat_request(chat(**{name: "x" for name in IGNORED_PARAMS if name not in ("store", "metadata", "user")},
                            user="u", metadata={"k": "v"}, store=False))


def test_store_true_is_refused():
    assert refusal(store=True).param == "store"


def test_tool_checks_name_the_field():
    assert refusal(tools=[TOOL, TOOL]).param == "tools"
    assert refusal(tool_choice="required").param == "tool_choice"
    assert refusal(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "nope"}}).param == "tool_choice"
    assert refusal(messages=[*USER, {"role": "tool", "content": "r"}]).param == "messages[1].tool_call_id"
    assert refusal(top_logprobs=2).param == "top_logprobs"
    check_chat_request(chat(tool_choice="none"))


def test_schema_that_is_not_a_schema_is_refused_before_the_model_is_called():
    bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "bogus"}}}
    assert refusal(response_format=bad).param == "response_format.json_schema.schema"
    strict_tool = {"type": "function", "function": {"name": "f", "strict": True, "parameters": {"minimum": "x"}}}
    assert refusal(tools=[strict_tool]).param == "tools[0].function.parameters"


def test_requested_params_ignore_values_that_change_nothing():
    plain = chat(n=1, presence_penalty=0, logprobs=False, response_format={"type": "text"}, tool_choice="none")
    assert requested_params(plain) == []
    image = chat(messages=[{"role": "user", "content": [{"type": "text", "text": "x"},
                                                        {"type": "image_url", "image_url": {"url": PNG_URL}}]}])
    assert requested_params(image) == [("images", "messages[0].content[1]")]
    assert [name for name, _ in requested_params(chat(seed=1, n=3, tools=[TOOL], tool_choice="required"))] == [
        "tools", "tool_choice", "seed", "n"]


@pytest.mark.parametrize("body, param", [
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "input_audio"}]}]},
     "messages[0].content[1]"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
     "messages[0].content[0].image_url.url"),
    ({"messages": USER, "tools": [{"type": "function", "function": {"name": "bad name"}}]},
     "tools[0].function.name"),
    ({"messages": USER, "tool_choice": "sometimes"}, "tool_choice"),
    ({"messages": USER, "response_format": {"type": "yaml"}}, "response_format"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
])
def test_validation_errors_name_the_field_in_openai_notation(body, param):
    with pytest.raises(ValidationError) as caught:
        ChatRequest.model_validate_json(json.dumps({"model": "chat", **body}))
    message, found = validation_message(caught.value)
    assert found == param and message.startswith(param)


# -- schema examples and validation ----------------------------------------------------------


class Colour(str, Enum):
    red = "red"
    blue = "blue"


class Item(BaseModel):
    name: str = Field(min_length=12, max_length=40)
    qty: int = Field(ge=3, le=9)
    price: float = Field(gt=0, lt=1)
    colour: Colour
    kind: Literal["a", "b"]
    note: str | None
    tags: list[str] = Field(min_length=3)


class Order(BaseModel):
    id: int
    items: list[Item]
    gift: Item | None
    nested: dict[str, int]


def test_examples_match_pydantic_schemas_and_are_deterministic():
    schema = Order.model_json_schema()
    value = example_for(schema, b"seed")
    Order.model_validate(value)
    assert example_for(schema, b"seed") == value
    assert example_for(schema, b"other") != value


def test_examples_match_the_sdks_strict_schemas():
    from openai.lib._pydantic import to_strict_json_schema

    schema = to_strict_json_schema(Order)
    check_completion(response_format(schema), None, answer(json.dumps(example_for(schema, b"s"))))


def test_recursive_schemas_end():
    class Node(BaseModel):
        value: int
        children: list[Node]

    Node.model_validate(example_for(Node.model_json_schema(), b"x"))


def response_format(schema: dict):
    return chat(response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": schema}}).response_format


def answer(text: str, finish: str = "stop", tool_calls=None) -> Completion:
    return Completion(text=text, finish_reason=finish, usage=Usage(), model="m", tool_calls=tool_calls or [])


def test_answers_are_checked_against_the_schema():
    fmt = response_format({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]})
    check_completion(fmt, None, answer('{"n": 3}'))
    for text in ('{"n": "3"}', "{}", "not json", '[1]'):
        with pytest.raises(InvalidStructuredOutputError) as caught:
            check_completion(fmt, None, answer(text))
        assert caught.value.status == 502 and caught.value.code == "invalid_structured_output"
    check_completion(fmt, None, answer('{"n": ', finish="length"))  # cut short: passed on, labelled so


def test_json_mode_wants_an_object_and_strict_tools_want_valid_arguments():
    json_mode = chat(response_format={"type": "json_object"}).response_format
    check_completion(json_mode, None, answer('{"a": 1}'))
    with pytest.raises(InvalidStructuredOutputError):
        check_completion(json_mode, None, answer("[1, 2]"))
    strict = chat(tools=[{**TOOL, "function": {**TOOL["function"], "strict": True}}]).tools
    check_completion(None, strict, answer("", "tool_calls", [ToolCall("c", "lookup", '{"q": "x"}')]))
    with pytest.raises(InvalidStructuredOutputError):
        check_completion(None, strict, answer("", "tool_calls", [ToolCall("c", "lookup", '{"q": 1}')]))
    # a tool that is not strict is the client's to check, as with OpenAI
    check_completion(None, chat(tools=[TOOL]).tools, answer("", "tool_calls", [ToolCall("c", "lookup", "{oops")]))


# -- cache keys and token estimates ----------------------------------------------------------


def keys(**body):
    return cache_keys("chat", RouteConfig(), "acme", chat(**body), 64)


def test_cache_key_covers_tools_choice_format_seed_and_images():
    base = keys()
    variants = [keys(tools=[TOOL]), keys(tools=[TOOL], tool_choice="required"), keys(seed=1), keys(seed=2),
                keys(response_format={"type": "json_object"}), keys(logprobs=True),
                keys(messages=[{"role": "user", "content": [{"type": "text", "text": "hi"},
                                                            {"type": "image_url", "image_url": {"url": PNG_URL}}]}]),
                keys(messages=[{"role": "user", "content": [{"type": "text", "text": "hi"},
                                                            {"type": "image_url", "image_url": {"url": PNG_URL + "A"}}]}])]
    exact = {base.exact, *(v.exact for v in variants)}
    semantic = {base.semantic_scope, *(v.semantic_scope for v in variants)}
    assert len(exact) == len(semantic) == len(variants) + 1
    assert keys(user="someone", metadata={"a": "b"}).exact == base.exact  # ignored fields change nothing


def test_cache_key_covers_tool_calls_and_results_in_the_history():
    call = {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                                 "function": {"name": "lookup", "arguments": '{"q": "a"}'}}]}
    other = {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                                  "function": {"name": "lookup", "arguments": '{"q": "b"}'}}]}
    result = {"role": "tool", "tool_call_id": "c1", "content": "42"}
    first = keys(messages=[*USER, call, result], tools=[TOOL])
    second = keys(messages=[*USER, other, result], tools=[TOOL])
    assert first.exact != second.exact and first.semantic_scope != second.semantic_scope


def test_token_estimates_count_tool_schemas_and_images():
    plain = chat()
    assert count_request_tokens(plain.messages) == count_chat_tokens(m.text for m in plain.messages)
    with_tools = chat(tools=[TOOL])
    assert count_request_tokens(with_tools.messages, with_tools.tools) > count_request_tokens(plain.messages) + 10
    images = chat(messages=[{"role": "user", "content": [
        {"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": PNG_URL}},
        {"type": "image_url", "image_url": {"url": PNG_URL, "detail": "low"}}]}])
    assert count_request_tokens(images.messages) == count_request_tokens(plain.messages) + IMAGE_TOKENS + IMAGE_TOKENS_LOW


# -- images -----------------------------------------------------------------------------------


def image_chat(*urls: str) -> ChatRequest:
    parts = [{"type": "text", "text": "look"}] + [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    return chat(messages=[{"role": "user", "content": parts}])


def test_image_limits_name_the_part():
    settings = RouteImagesConfig(**{"max-count": 2, "max-bytes": 100})
    assert check_images(image_chat(PNG_URL, PNG_URL), "chat", settings) == []
    with pytest.raises(RequestError) as caught:
        check_images(image_chat(PNG_URL, PNG_URL, PNG_URL), "chat", settings)
    assert (caught.value.status, caught.value.param) == (400, "messages[0].content[3]")
    big = "data:image/png;base64," + base64.b64encode(b"x" * 101).decode()
    with pytest.raises(BodyTooLargeError) as caught:
        check_images(image_chat(PNG_URL, big), "chat", settings)
    assert (caught.value.status, caught.value.param) == (413, "messages[0].content[2]")


@pytest.mark.parametrize("url, code", [
    ("https://example.com/cat.png", "image_url_not_allowed"),
    ("http://example.com/cat.png", "invalid_image"),
    ("data:text/plain;base64,aGk=", "invalid_image"),
    ("data:image/png,raw", "invalid_image"),
])
def test_image_urls_other_than_data_urls_are_refused_by_default(url, code):
    with pytest.raises(RequestError) as caught:
        check_images(image_chat(url), "chat", RouteImagesConfig())
    assert (caught.value.code, caught.value.param) == (code, "messages[0].content[1].image_url.url")


def test_https_urls_are_returned_for_fetching_where_the_route_allows_them():
    parts = check_images(image_chat(PNG_URL, "https://example.com/a.png"), "chat", RouteImagesConfig(https=True))
    assert [param for param, _ in parts] == ["messages[0].content[2]"]


def test_data_urls_decode_to_format_and_bytes():
    image = decode_data_url(PNG_URL.replace("image/png", "image/JPEG"))
    assert (image.format, image.data[:4]) == ("jpeg", b"\x89PNG")
    with pytest.raises(ValueError):
        decode_data_url("data:image/png;base64,@@@")
