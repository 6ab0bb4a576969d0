"""The Responses API's core: requests translated into chat requests, errors named back in the
Responses API's terms, stored conversations, and the stream's event sequence. No I/O."""

from __future__ import annotations

import base64
import os

import orjson
import pytest

from functions.core.chat import Completion, Message, StreamDelta, ToolCall, ToolCallDelta, Usage
from functions.core.errors import RequestError
from functions.core.responses_chat import answer_message, rename_param, responses_param, to_chat
from functions.core.responses_request import ResponsesRequest, check_responses_request
from functions.core.stored_responses import (MAX_STORED_BYTES, check_storable, decode_conversation, pack,
                                             stored_response)
from functions.gateway.responses_format import ResponseEventWriter, ResponseShape

TOOL = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {
    "city": {"type": "string"}}, "required": ["city"]}}


def request(**fields) -> ResponsesRequest:
    return ResponsesRequest.model_validate_json(orjson.dumps({"model": "chat", **fields}))


def test_instructions_history_and_items_become_chat_messages():
    history = [Message(role="user", content="earlier"), Message(role="assistant", content="answer")]
    translation = to_chat(request(instructions="Be brief.", tools=[TOOL], input=[
        {"role": "user", "content": [{"type": "input_text", "text": "look"},
                                     {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": "calling", "annotations": []}]},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}", "id": "fc_1"},
        {"type": "function_call", "call_id": "call_2", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "rain"}]},
    ]), history)
    chat = translation.chat
    assert [m.role for m in chat.messages] == ["system", "user", "assistant", "user", "assistant", "tool", "tool"]
    assert chat.messages[0].content == "Be brief."
    assert chat.messages[3].images[0].image_url.url == "data:image/png;base64,AAAA"
    # the assistant's text and both calls are one turn, as chat wants them
    turn = chat.messages[4]
    assert turn.content == "calling" and [c.id for c in turn.tool_calls] == ["call_1", "call_2"]
    assert (chat.messages[5].tool_call_id, chat.messages[5].text) == ("call_1", "sunny")
    assert chat.messages[6].text == "rain"
    assert chat.tools[0].function.name == "get_weather" and chat.tools[0].function.strict is True
    # instructions are not carried over to a continuation, as OpenAI does
    assert translation.conversation == chat.messages[1:]


def test_parameters_map_to_their_chat_twins():
    chat = to_chat(request(
        input="hi", tools=[TOOL], tool_choice={"type": "function", "name": "get_weather"},
        parallel_tool_calls=False, max_output_tokens=50, temperature=0.5, top_p=0.9, reasoning={"effort": "low"},
        include=["message.output_text.logprobs"], top_logprobs=3, stream=True, tierup={"cache": False},
        text={"format": {"type": "json_schema", "name": "w", "strict": True, "schema": {"type": "object"}}}),
        []).chat
    assert chat.tool_choice.function.name == "get_weather" and chat.parallel_tool_calls is False
    assert (chat.max_tokens, chat.temperature, chat.top_p, chat.stream) == (50, 0.5, 0.9, True)
    assert chat.reasoning_effort == "low" and chat.logprobs is True and chat.top_logprobs == 3
    assert chat.response_format.json_schema.json_schema == {"type": "object"}
    assert chat.response_format.json_schema.strict is True
    assert chat.model_extra == {"tierup": {"cache": False}}
    plain = to_chat(request(input="hi"), []).chat
    assert plain.response_format is None and plain.tools is None and plain.logprobs is None


def test_a_conversation_without_a_user_turn_is_refused_naming_input():
    with pytest.raises(RequestError) as caught:
        to_chat(request(input=[{"type": "function_call_output", "call_id": "c", "output": "x"}]), [])
    assert caught.value.param == "input"


def test_chat_field_names_become_the_responses_fields_sent():
    translation = to_chat(request(instructions="x", input=[
        {"role": "user", "content": "hi"},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "x"}]), [Message(role="user", content="old")])
    origins = translation.origins
    assert responses_param("messages[0]", origins) == "instructions"
    assert responses_param("messages[1].content[0]", origins) == "previous_response_id"
    assert responses_param("messages[2].content[1]", origins) == "input[0].content[1]"
    assert responses_param("messages[3].tool_calls", origins) == "input[1]"
    assert responses_param("messages[4].content[0]", origins) == "input[2].output[0]"
    assert responses_param("response_format.json_schema.schema", origins) == "text.format.schema"
    assert responses_param("tools[2].function.parameters", origins) == "tools[2].parameters"
    assert responses_param("max_tokens", origins) == "max_output_tokens"
    assert responses_param("reasoning_effort", origins) == "reasoning.effort"
    assert responses_param("tool_choice", origins) == "tool_choice"
    error = RequestError("response_format cannot be honoured", param="response_format")
    rename_param(error, origins)
    assert (error.param, error.message) == ("text.format", "text.format cannot be honoured")


@pytest.mark.parametrize("fields, param", [
    ({"background": True}, "background"),
    ({"max_tool_calls": 2}, "max_tool_calls"),
    ({"text": {"verbosity": "low"}}, "text.verbosity"),
    ({"reasoning": {"summary": "auto"}}, "reasoning.summary"),
    ({"include": ["file_search_call.results"]}, "include[0]"),
    ({"tools": [{"type": "file_search"}]}, "tools[0].type"),
    ({"tools": [{**TOOL, "defer_loading": True}]}, "tools[0].defer_loading"),
    ({"conversation": "conv_1"}, "conversation"),
    ({"prompt": {"id": "p"}}, "prompt"),
])
def test_what_no_tier_can_honour_is_refused_by_name(fields, param):
    with pytest.raises(RequestError) as caught:
        check_responses_request(request(input="hi", **fields))
    assert caught.value.param == param and caught.value.status == 400


def test_harmless_fields_pass():
    check_responses_request(request(input="hi", store=False, metadata={"a": "b"}, user="u", truncation="auto",
                                    safety_identifier="s", service_tier="auto", prompt_cache_key="k",
                                    include=["reasoning.encrypted_content"], stream_options={},
                                    tools=[{**TOOL, "defer_loading": False}]))


def test_conversations_are_stored_compressed_and_read_back():
    messages = [Message(role="user", content="hi"), answer_message(Completion(
        text="", finish_reason="tool_calls", usage=Usage(), model="m",
        tool_calls=[ToolCall(id="call_1", name="f", arguments='{"a": 1}')]))]
    stored = stored_response("resp_1", "acme", b'{"id": "resp_1"}', messages, 123)
    assert decode_conversation(stored.conversation) == messages
    assert messages[1].content is None and messages[1].tool_calls[0].function.arguments == '{"a": 1}'


def test_a_conversation_too_large_to_store_is_refused_before_the_model_runs():
    noise = base64.b64encode(os.urandom(MAX_STORED_BYTES)).decode()  # does not compress
    check_storable([Message(role="user", content="x" * MAX_STORED_BYTES * 2)])  # compresses: fits
    with pytest.raises(RequestError) as caught:
        check_storable([Message(role="user", content=noise)])
    assert caught.value.param == "store"
    assert len(pack(noise.encode())) > MAX_STORED_BYTES


def _events(data: bytes) -> list[tuple[str, dict]]:
    out = []
    for block in data.decode().strip().split("\n\n"):
        name, body = block.split("\n")
        out.append((name.removeprefix("event: "), orjson.loads(body.removeprefix("data: "))))
    return out


def test_text_then_tool_calls_stream_as_one_item_each():
    writer = ResponseEventWriter(ResponseShape("resp_abc", request(input="hi"), "chat"))
    data = writer.start() + writer.render(StreamDelta(text="Let me "))
    data += writer.render(StreamDelta(text="check."))
    data += writer.render(StreamDelta(tool_calls=[ToolCallDelta(0, "call_1", "f")]))
    data += writer.render(StreamDelta(tool_calls=[ToolCallDelta(0, arguments='{"a"')]))
    data += writer.render(StreamDelta(tool_calls=[ToolCallDelta(0, arguments=": 1}")]))
    data += writer.render(StreamDelta(tool_calls=[ToolCallDelta(1, "call_2", "g", "{}")]))
    data += writer.render(StreamDelta(finish_reason="tool_calls", usage=Usage(5, 7)))
    final = writer.final_body()
    data += writer.completed(final)
    events = _events(data)
    assert [name for name, _ in events] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed"]
    assert [body["sequence_number"] for _, body in events] == list(range(len(events)))
    assert [body["output_index"] for name, body in events if name == "response.output_item.added"] == [0, 1, 2]
    assert events[12][1]["arguments"] == '{"a": 1}' and events[12][1]["item_id"] == "fc_abc_0"
    assert [item["type"] for item in final["output"]] == ["message", "function_call", "function_call"]
    assert final["output"][0]["content"][0]["text"] == "Let me check."
    assert final["usage"]["input_tokens"] == 5 and final["usage"]["output_tokens"] == 7
    answer = writer.answer()
    assert answer.text == "Let me check." and [c.arguments for c in answer.tool_calls] == ['{"a": 1}', "{}"]


def test_a_cut_answer_is_incomplete_and_an_empty_one_is_still_a_message():
    writer = ResponseEventWriter(ResponseShape("resp_x", request(input="hi"), "chat"))
    data = writer.start() + writer.render(StreamDelta(text="a"))
    data += writer.render(StreamDelta(finish_reason="length", usage=Usage(1, 1)))
    final = writer.final_body()
    events = _events(data + writer.completed(final))
    assert events[-1][0] == "response.incomplete"
    assert final["status"] == "incomplete" and final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["output"][0]["status"] == "incomplete"
    empty = ResponseEventWriter(ResponseShape("resp_y", request(input="hi"), "chat"))
    empty.start()
    names = [name for name, _ in _events(empty.render(StreamDelta(finish_reason="stop", usage=Usage())))]
    assert names == ["response.output_item.added", "response.content_part.added", "response.output_text.done",
                     "response.content_part.done", "response.output_item.done"]


def test_a_failure_ends_with_error_then_response_failed():
    writer = ResponseEventWriter(ResponseShape("resp_z", request(input="hi"), "chat"))
    writer.start()
    writer.render(StreamDelta(text="partial"))
    events = _events(writer.failed({"message": "boom", "type": "server_error", "param": None,
                                    "code": "provider_error"}))
    assert [name for name, _ in events] == ["error", "response.failed"]
    assert events[0][1]["error"]["message"] == "boom" and events[0][1]["code"] == "provider_error"
    failed = events[1][1]["response"]
    assert failed["status"] == "failed" and failed["error"] == {"code": "provider_error", "message": "boom"}
    assert failed["output"] == []  # the message never finished


# -- GET / DELETE /v1/responses/{id} on an in-memory store --------------------------------------


class _Auth:
    async def authenticate(self, authorization):
        from functions.core.context import Tenant

        return Tenant(tenant_id=authorization.removeprefix("Bearer "), plan_name="pro", plan=None)


def _call(endpoint, method: str, path: str, tenant: str) -> tuple[int, dict]:
    import asyncio

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path,
             "headers": [(b"authorization", f"Bearer {tenant}".encode())]}
    try:
        asyncio.run(endpoint.by_id(scope, None, send, "req-1"))
    except RequestError as exc:
        return exc.status, exc.to_openai()["error"]
    return sent[0]["status"], orjson.loads(sent[1]["body"])


def test_a_stored_response_is_found_by_its_tenant_only():
    from functions.gateway.responses_endpoint import ResponsesEndpoint
    from tests.fakes.response_store import FakeResponseStore

    store = FakeResponseStore()
    response_id = "resp_" + "ab" * 24
    store.put(stored_response(response_id, "acme", b'{"id": "%s"}' % response_id.encode(), [], 2**40))
    endpoint = ResponsesEndpoint(type("App", (), {"_auth": _Auth()})(), None, store, ttl_s=60)
    assert _call(endpoint, "GET", f"/v1/responses/{response_id}", "acme") == (200, {"id": response_id})
    status, error = _call(endpoint, "GET", f"/v1/responses/{response_id}", "globex")
    assert (status, error["code"]) == (404, "response_not_found")
    assert _call(endpoint, "DELETE", f"/v1/responses/{response_id}", "globex")[0] == 404
    assert _call(endpoint, "GET", "/v1/responses/resp_../x", "acme")[0] == 404
    assert _call(endpoint, "GET", "/v1/responses/not-an-id", "acme")[0] == 404
    assert _call(endpoint, "PUT", f"/v1/responses/{response_id}", "acme")[0] == 405
    assert _call(endpoint, "DELETE", f"/v1/responses/{response_id}", "acme") == (
        200, {"id": response_id, "object": "response", "deleted": True})
    assert store.items == {}


@pytest.mark.parametrize("body, param", [
    ({"input": "hi", "text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
    ({"input": "hi", "tool_choice": {"type": "file_search"}}, "tool_choice.type"),
    ({"input": [{"role": "user", "content": "hi"}, {"type": "reasoning", "id": "r"}]}, "input[1]"),
    ({"input": [{"role": "user", "content": [{"type": "input_text", "text": 5}]}]}, "input[0].content[0].text"),
])
def test_schema_errors_name_the_field_as_sent(body, param):
    from pydantic import ValidationError

    from functions.core.responses_request import schema_param
    from functions.gateway.validation import validation_message

    with pytest.raises(ValidationError) as caught:
        request(**body)
    assert schema_param(validation_message(caught.value)[1]) == param
