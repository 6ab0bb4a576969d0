"""A Responses API request as the internal ``ChatRequest``, and errors named back in its terms.

The translation is what lets one pipeline serve both APIs: ``instructions`` become a system
message, a stored conversation (``previous_response_id``) comes next, then the input items
(messages, ``function_call`` items as an assistant message's ``tool_calls``, and
``function_call_output`` items as ``tool`` messages); flat function tools, ``tool_choice``,
``text.format`` and the sampling parameters map to their Chat Completions twins. A check that
fails on the chat side names a chat field (``messages[3].content[1]``, ``response_format``);
``rename_param`` turns it into the Responses field the client sent (``input[2].content[1]``,
``text.format``).

No I/O here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import ValidationError

from .chat import (ChatRequest, Completion, FunctionCall, FunctionDefinition, ImagePart, ImageUrl,
                   JsonObjectFormat, JsonSchemaFormat, JsonSchemaSpec, Message, NamedFunction,
                   NamedToolChoice, TextFormat, TextPart, Tool, ToolCallMessage)
from .errors import RequestError, TierupError
from .responses_request import (FunctionCallItem, FunctionCallOutputItem, InputImage, InputText, MessageItem,
                                Refusal, ResponsesRequest)

LOGPROBS_INCLUDE = "message.output_text.logprobs"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where one chat message came from: the Responses field, and what its parts are called there."""

    path: str
    parts: str | None = None


INSTRUCTIONS = Origin("instructions")
HISTORY = Origin("previous_response_id")


@dataclass(slots=True)
class ChatTranslation:
    chat: ChatRequest
    #: one per ``chat.messages``
    origins: list[Origin]
    #: the messages to store for a continuation: all but the instructions, which OpenAI does not
    #: carry over to the next response
    conversation: list[Message]


def to_chat(request: ResponsesRequest, history: list[Message]) -> ChatTranslation:
    messages: list[Message] = []
    origins: list[Origin] = []
    if request.instructions:
        messages.append(Message(role="system", content=request.instructions))
        origins.append(INSTRUCTIONS)
    messages.extend(history)
    origins.extend([HISTORY] * len(history))
    if isinstance(request.input, str):
        messages.append(Message(role="user", content=request.input))
        origins.append(Origin("input"))
    else:
        for index, item in enumerate(request.input):
            _add_item(item, f"input[{index}]", messages, origins)
    own_options = (request.model_extra or {}).get("tierup")  # {"cache": false}: the cache reads it
    extra = {"tierup": own_options} if own_options is not None else {}
    logprobs = LOGPROBS_INCLUDE in (request.include or ()) or bool(request.top_logprobs)
    try:
        chat = ChatRequest(
            model=request.model, messages=messages, max_tokens=request.max_output_tokens,
            temperature=request.temperature, top_p=request.top_p, stream=request.stream, user=request.user,
            tools=[_tool(tool) for tool in request.tools] if request.tools else None,
            tool_choice=_tool_choice(request.tool_choice), parallel_tool_calls=request.parallel_tool_calls,
            response_format=_response_format(request), logprobs=logprobs or None,
            top_logprobs=request.top_logprobs if logprobs and request.top_logprobs else None,
            reasoning_effort=request.reasoning.effort if request.reasoning else None, **extra)
    except ValidationError as exc:  # the one check left to the chat schema: a user turn
        detail = exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        raise RequestError(f"input: the conversation {detail}", param="input") from None
    conversation = messages[1:] if request.instructions else list(messages)
    return ChatTranslation(chat=chat, origins=origins, conversation=conversation)


def _add_item(item, path: str, messages: list[Message], origins: list[Origin]) -> None:
    if isinstance(item, MessageItem):
        content = item.content
        if not isinstance(content, str):
            content = _parts(content, path + ".content")
            if item.role == "assistant":  # an earlier answer: its text, as chat carries it
                content = "".join(part.text for part in content if part.type == "text")
        messages.append(Message(role=item.role, content=content))
        origins.append(Origin(path, "content"))
    elif isinstance(item, FunctionCallItem):
        call = ToolCallMessage(id=item.call_id, function=FunctionCall(name=item.name, arguments=item.arguments))
        last = messages[-1] if messages else None
        if last is not None and last.role == "assistant" and origins[-1].path.startswith("input"):
            # one assistant turn: its text and every call it made, as chat wants them
            messages[-1] = Message(role="assistant", content=last.content or None,
                                   tool_calls=[*(last.tool_calls or ()), call])
        else:
            messages.append(Message(role="assistant", content=None, tool_calls=[call]))
            origins.append(Origin(path))
    elif isinstance(item, FunctionCallOutputItem):
        output = item.output if isinstance(item.output, str) else _parts(item.output, path + ".output")
        messages.append(Message(role="tool", tool_call_id=item.call_id, content=output))
        origins.append(Origin(path, "output"))


def _parts(parts: list, path: str) -> list[TextPart | ImagePart]:
    out: list[TextPart | ImagePart] = []
    for index, part in enumerate(parts):
        if isinstance(part, InputText):
            out.append(TextPart(type="text", text=part.text))
        elif isinstance(part, Refusal):
            out.append(TextPart(type="text", text=part.refusal))
        elif isinstance(part, InputImage) and part.image_url and part.file_id is None:
            out.append(ImagePart(type="image_url", image_url=ImageUrl(url=part.image_url, detail=part.detail)))
        else:
            uploaded = part.type == "input_file" or getattr(part, "file_id", None)
            why = "files" if uploaded else "an image without image_url"
            raise RequestError(f"{path}[{index}]: tierup does not support {why} (send images as data URLs in "
                               "image_url)", param=f"{path}[{index}]", code="unsupported_parameter")
    return out


def _tool(tool) -> Tool:
    return Tool(type="function", function=FunctionDefinition(
        name=tool.name, description=tool.description, parameters=tool.parameters,
        strict=True if tool.strict is None else tool.strict))


def _tool_choice(choice):
    if choice is None or isinstance(choice, str):
        return choice
    return NamedToolChoice(type="function", function=NamedFunction(name=choice.name))


def _response_format(request: ResponsesRequest):
    spec = request.text.format if request.text is not None else None
    if spec is None:
        return None
    if spec.type == "text":
        return TextFormat(type="text")
    if spec.type == "json_object":
        return JsonObjectFormat(type="json_object")
    return JsonSchemaFormat(type="json_schema", json_schema=JsonSchemaSpec.model_validate(
        {"name": spec.name, "description": spec.description, "schema": spec.json_schema, "strict": spec.strict}))


def answer_message(completion: Completion) -> Message:
    """An answer as the assistant message a continuation starts from."""
    calls = [ToolCallMessage(id=call.id, function=FunctionCall(name=call.name, arguments=call.arguments))
             for call in completion.tool_calls]
    text = completion.text or completion.refusal or ""
    return Message(role="assistant", content=text or (None if calls else ""), tool_calls=calls or None)


# -- errors named in the Responses API's terms ---------------------------------------------------

#: chat field -> the Responses field it came from
_RENAMED = {"max_tokens": "max_output_tokens", "max_completion_tokens": "max_output_tokens",
            "response_format": "text.format", "reasoning_effort": "reasoning.effort", "logprobs": "include"}
_MESSAGE = re.compile(r"messages\[(\d+)\](?:\.(content)(\[\d+\].*)?)?")


def responses_param(param: str, origins: list[Origin]) -> str:
    """A chat request's field name as the Responses field the client sent."""
    found = _MESSAGE.match(param)
    if found:
        index = int(found[1])
        origin = origins[index] if index < len(origins) else Origin("input")
        if found[2] and origin.parts and found[3]:
            return f"{origin.path}.{origin.parts}{found[3]}"
        return origin.path
    if param.startswith("response_format"):
        return "text.format" + param.removeprefix("response_format").replace(".json_schema.schema", ".schema")
    if param.startswith("tools[") and ".function." in param:
        return param.replace(".function.", ".", 1)
    head, dot, rest = param.partition(".")
    return _RENAMED.get(head, head) + dot + rest


def rename_param(error: TierupError, origins: list[Origin]) -> None:
    """Name ``error``'s field (and the field in its message) as the Responses API calls it."""
    if not error.param:
        return
    renamed = responses_param(error.param, origins)
    if renamed != error.param:
        error.message = error.message.replace(error.param, renamed)
        error.param = renamed
