"""Structured outputs: is an answer what ``response_format`` (or a strict tool) asked for?

An answer is checked before it is returned or cached: JSON that does not parse or does not
match the schema becomes ``InvalidStructuredOutputError`` (502 ``invalid_structured_output``),
never a 200. Answers cut short (``finish_reason`` ``length`` or ``content_filter``) and refusals
are passed on as they are: they are not labelled as success, and clients (the openai SDK's
``parse``) handle them.

Schemas are checked with ``jsonschema``, imported on the first request that needs it (the plain
hot path never pays for it), and compiled validators are kept per schema.

No I/O here.
"""

from __future__ import annotations

import threading

import orjson

from .chat import Completion, JsonObjectFormat, JsonSchemaFormat, TextFormat, Tool
from .errors import InvalidStructuredOutputError, RequestError

#: compiled validators kept, by schema
MAX_VALIDATORS = 256
#: how much of a validation message the client is shown
MAX_DETAIL_CHARS = 300

_validators: dict[bytes, object] = {}
_lock = threading.Lock()


def _validator(schema: dict):
    """The compiled validator of ``schema``; raises ``jsonschema.SchemaError`` if it is not a
    valid schema."""
    key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    found = _validators.get(key)
    if found is None:
        from jsonschema.validators import validator_for

        cls = validator_for(schema)
        cls.check_schema(schema)
        found = cls(schema)
        with _lock:
            if len(_validators) >= MAX_VALIDATORS:
                _validators.clear()
            _validators[key] = found
    return found


def check_schema(schema: dict, param: str) -> None:
    """Refuse (400 naming ``param``) a schema that is not a valid JSON schema."""
    from jsonschema.exceptions import SchemaError

    try:
        _validator(schema)
    except SchemaError as exc:
        raise RequestError(f"not a valid JSON schema: {exc.message}"[:MAX_DETAIL_CHARS], param=param) from None


def check_request_schemas(response_format, tools: list[Tool] | None) -> None:
    """Check every schema a request brings that its answer will be validated against."""
    if isinstance(response_format, JsonSchemaFormat) and response_format.json_schema.json_schema is not None:
        check_schema(response_format.json_schema.json_schema, "response_format.json_schema.schema")
    for index, tool in enumerate(tools or ()):
        if tool.function.strict and tool.function.parameters is not None:
            check_schema(tool.function.parameters, f"tools[{index}].function.parameters")


def needs_check(response_format, tools: list[Tool] | None) -> bool:
    if response_format is not None and not isinstance(response_format, TextFormat):
        return True
    return bool(tools) and any(tool.function.strict for tool in tools)


def _problem(value_text: str, schema: dict | None, want_object: bool) -> str | None:
    """What is wrong with ``value_text`` as JSON matching ``schema``, or None."""
    try:
        value = orjson.loads(value_text)
    except orjson.JSONDecodeError:
        return "it is not valid JSON"
    if want_object and not isinstance(value, dict):
        return "it is not a JSON object"
    if schema is None:
        return None
    error = next(iter(_validator(schema).iter_errors(value)), None)
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(root)"
    return f"at {where}: {error.message}"


def check_completion(response_format, tools: list[Tool] | None, completion: Completion) -> None:
    """Raise ``InvalidStructuredOutputError`` unless a finished answer is what was asked for."""
    if completion.refusal or completion.finish_reason not in ("stop", "tool_calls"):
        return
    if completion.tool_calls:
        strict = {tool.function.name: tool.function for tool in tools or () if tool.function.strict}
        for call in completion.tool_calls:
            function = strict.get(call.name)
            if function is None:
                continue
            problem = _problem(call.arguments or "{}", function.parameters, want_object=True)
            if problem is not None:
                raise InvalidStructuredOutputError(
                    f"the model called {call.name} with arguments that do not match its strict schema: "
                    f"{problem}"[:MAX_DETAIL_CHARS])
        return
    if isinstance(response_format, JsonSchemaFormat):
        problem = _problem(completion.text, response_format.json_schema.json_schema, want_object=False)
    elif isinstance(response_format, JsonObjectFormat):
        problem = _problem(completion.text, None, want_object=True)
    else:
        return
    if problem is not None:
        raise InvalidStructuredOutputError(
            f"the model's answer does not match response_format: {problem}"[:MAX_DETAIL_CHARS])
