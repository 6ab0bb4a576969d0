"""OpenAI tools and structured outputs as Converse's ``toolConfig``, and tool use back as OpenAI
tool calls. Pure: plain dicts in and out, as ``converse_mapping`` (which calls this) is.

Structured outputs ride on a forced tool: the schema becomes the ``inputSchema`` of one extra
tool (named as ``json_schema.name``; ``json_object`` for JSON mode), the model is made to call a
tool, and that tool's input comes back as the message's content. With tools of the caller's
own, the model is made to call *some* tool (``any``): one of the caller's (a tool call, as
OpenAI's semantics allow) or the schema tool (the structured answer).

``tool_choice`` -> ``toolChoice``: ``auto`` is Converse's default and is left out (models
without ``toolChoice`` support, such as Llama, refuse it even as ``auto``); ``required`` ->
``any``; a named function -> ``tool``; ``none`` -> no ``toolConfig`` at all, which Converse
allows only while the conversation holds no tool use (else the request is refused, naming it).
``strict`` is not sent (few Bedrock models take it): the gateway validates strict tools'
arguments itself (``core.structured_output``).
"""

from __future__ import annotations

import orjson

from ..core.chat import JsonSchemaFormat, ProviderCall, ToolCall
from ..core.errors import RequestError

#: the schema tool's name in JSON mode (no schema)
JSON_OBJECT_TOOL = "json_object"
_EMPTY_SCHEMA = {"type": "object", "properties": {}}


def structured_tool_name(call: ProviderCall) -> str | None:
    """The name of the tool that carries a structured answer, if the request asks for one and its
    tool_choice leaves room for a text (here: structured) answer."""
    response_format = call.response_format
    if response_format is None or not call.structured_output:
        return None
    if call.tools and (call.tool_choice == "required" or not isinstance(call.tool_choice, (str, type(None)))):
        return None  # the answer must be a tool call of the caller's: no structured text this turn
    if isinstance(response_format, JsonSchemaFormat):
        return response_format.json_schema.name
    return JSON_OBJECT_TOOL


def _tool_spec(name: str, description: str | None, schema: dict | None) -> dict:
    spec: dict = {"name": name, "inputSchema": {"json": schema if schema is not None else _EMPTY_SCHEMA}}
    if description:
        spec["description"] = description
    return {"toolSpec": spec}


def tool_config(call: ProviderCall, has_tool_blocks: bool) -> dict | None:
    """The ``toolConfig`` of a call, or None when it needs none."""
    structured = structured_tool_name(call)
    tools = call.tools or []
    choice = call.tool_choice
    if choice == "none" and tools and structured is None:
        if has_tool_blocks:
            raise RequestError("tool_choice 'none' cannot be honoured by Bedrock once the conversation holds "
                               "tool calls: Converse then needs the tools and cannot forbid calling them",
                               param="tool_choice", code="unsupported_parameter")
        return None
    specs = [_tool_spec(t.function.name, t.function.description, t.function.parameters) for t in tools]
    if structured is not None:
        if any(t.function.name == structured for t in tools):
            raise RequestError(f"response_format's name {structured!r} is also the name of a tool; rename one",
                               param="response_format")
        response_format = call.response_format
        schema = (response_format.json_schema.json_schema if isinstance(response_format, JsonSchemaFormat)
                  else {"type": "object"})
        description = (response_format.json_schema.description if isinstance(response_format, JsonSchemaFormat)
                       else None) or "Give the answer as this tool's input."
        specs.append(_tool_spec(structured, description, schema or {"type": "object"}))
        # the caller's tools may still be called (any); without them (or with none), only the schema tool
        if tools and choice in (None, "auto"):
            return {"tools": specs, "toolChoice": {"any": {}}}
        return {"tools": specs, "toolChoice": {"tool": {"name": structured}}}
    if not specs:
        return None
    config: dict = {"tools": specs}
    if choice == "required":
        config["toolChoice"] = {"any": {}}
    elif choice is not None and not isinstance(choice, str):
        config["toolChoice"] = {"tool": {"name": choice.function.name}}
    return config


def tool_use_block(call_id: str, name: str, arguments: str, param: str) -> dict:
    """An assistant message's tool call as a ``toolUse`` block (Converse wants the input as JSON)."""
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        raise RequestError("the tool call's arguments are not valid JSON", param=param) from None
    return {"toolUse": {"toolUseId": call_id, "name": name, "input": value}}


def tool_result_block(tool_call_id: str, text: str) -> dict:
    # Converse refuses blank text blocks; an empty tool result still has to answer its call
    return {"toolResult": {"toolUseId": tool_call_id, "content": [{"text": text if text.strip() else "(empty)"}]}}


def answer_parts(content: list[dict], structured: str | None,
                 single_call: bool) -> tuple[str, list[ToolCall], bool]:
    """(text, tool calls, whether the structured tool answered) of a ``converse`` answer's blocks.

    The structured tool's input is the answer's text (any text the model wrote around it is
    dropped: the content must be the JSON alone)."""
    texts: list[str] = []
    calls: list[ToolCall] = []
    structured_text = None
    for block in content:
        if "text" in block:
            texts.append(block["text"])
        elif "toolUse" in block:
            use = block["toolUse"]
            arguments = orjson.dumps(use.get("input", {})).decode()
            if structured is not None and use.get("name") == structured:
                structured_text = arguments
            elif not (single_call and calls):
                calls.append(ToolCall(id=use["toolUseId"], name=use["name"], arguments=arguments))
    if structured_text is not None and not calls:
        return structured_text, [], True
    return "".join(texts), calls, False
