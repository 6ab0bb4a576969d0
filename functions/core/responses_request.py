"""The Responses API request (``POST /v1/responses``) as tierup accepts it.

The Responses API is a second way into the same pipeline: a request is translated into the
internal ``ChatRequest`` (``responses_chat``), so auth, kill switches, quotas, spend caps, the
cache, routing and the ledger apply through the one code path. This module is only the schema
and the checks pydantic cannot express.

Top-level fields follow Chat Completions' rule: a field tierup does not know is a 400 naming it,
and a field that would change the answer is honoured or refused, never dropped. Input items are
more lenient: an item a client sends back from an earlier answer carries ``id``, ``status``,
``annotations`` and the like, which tell the model nothing, so unknown fields of items and parts
are ignored (their ``type`` is still checked).

No I/O here.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from .chat import MAX_OUTPUT_TOKENS, TOOL_NAME_PATTERN
from .errors import RequestError

#: items and parts: echoed fields of earlier answers (id, status, annotations) are ignored
_ITEM = ConfigDict(extra="ignore", strict=True)


class InputText(BaseModel):
    model_config = _ITEM
    #: ``output_text`` is what an earlier answer's message carries when a client sends it back
    type: Literal["input_text", "output_text"]
    text: str


class InputImage(BaseModel):
    model_config = _ITEM
    type: Literal["input_image"]
    image_url: str | None = None
    #: uploaded files are not supported (tierup has no file store): refused naming the part
    file_id: str | None = None
    detail: Literal["auto", "low", "high"] | None = None


class InputFile(BaseModel):
    """Accepted by the schema only to be refused by name (tierup has no file inputs)."""

    model_config = _ITEM
    type: Literal["input_file"]


class Refusal(BaseModel):
    model_config = _ITEM
    type: Literal["refusal"]
    refusal: str


ContentPart = Annotated[InputText | InputImage | InputFile | Refusal, Field(discriminator="type")]


class MessageItem(BaseModel):
    model_config = _ITEM
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[ContentPart]


class FunctionCallItem(BaseModel):
    model_config = _ITEM
    type: Literal["function_call"]
    call_id: Annotated[str, Field(min_length=1)]
    name: str
    arguments: str


class FunctionCallOutputItem(BaseModel):
    model_config = _ITEM
    type: Literal["function_call_output"]
    call_id: Annotated[str, Field(min_length=1)]
    output: str | list[ContentPart]


def _item_type(value: Any) -> str:
    """An item's ``type``; a message may leave it out (``{"role": "user", "content": "hi"}``)."""
    if isinstance(value, dict):
        return value.get("type", "message")
    return getattr(value, "type", "message")


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")] | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")],
    Discriminator(_item_type, custom_error_type="item_type",
                  custom_error_message="an input item's type must be message, function_call or "
                                       "function_call_output")]


class FunctionTool(BaseModel):
    """A function tool in the Responses API's flat shape (no nested ``function``)."""

    model_config = ConfigDict(extra="allow", strict=True)
    #: other tool types (web search, file search, ...) are refused naming them
    type: str
    name: Annotated[str, Field(pattern=TOOL_NAME_PATTERN)] | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    #: the Responses API's default is strict
    strict: bool | None = None


class FunctionChoice(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["function"]
    name: str


class TextFormatText(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["text"]


class TextFormatJsonObject(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    type: Literal["json_object"]


class TextFormatJsonSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
    type: Literal["json_schema"]
    name: Annotated[str, Field(pattern=TOOL_NAME_PATTERN)]
    description: str | None = None
    json_schema: Annotated[dict[str, Any], Field(alias="schema")]
    strict: bool | None = None


TextFormat = Annotated[TextFormatText | TextFormatJsonObject | TextFormatJsonSchema, Field(discriminator="type")]


class TextConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    format: TextFormat | None = None
    #: refused unless left out: no tier has a verbosity control
    verbosity: Literal["low", "medium", "high"] | None = None


class ReasoningConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    #: reasoning summaries: no tier produces them, so refused unless left out
    summary: str | None = None
    generate_summary: str | None = None


class ResponsesRequest(BaseModel):
    """``POST /v1/responses``."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: Annotated[str, Field(min_length=1, max_length=256)]
    input: str | Annotated[list[InputItem], Field(min_length=1)]
    instructions: str | None = None
    previous_response_id: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    tools: Annotated[list[FunctionTool], Field(max_length=128)] | None = None
    tool_choice: Literal["auto", "none", "required"] | FunctionChoice | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    max_output_tokens: Annotated[int | None, Field(gt=0, le=MAX_OUTPUT_TOKENS)] = None
    temperature: Annotated[float | None, Field(ge=0, le=2)] = None
    top_p: Annotated[float | None, Field(gt=0, le=1)] = None
    reasoning: ReasoningConfig | None = None
    top_logprobs: Annotated[int | None, Field(ge=0, le=20)] = None
    include: list[str] | None = None
    #: OpenAI's default: a response is stored (and can be continued) unless ``store`` is false
    store: bool | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    truncation: Literal["auto", "disabled"] | None = None
    background: bool | None = None
    max_tool_calls: int | None = None

    @property
    def stored(self) -> bool:
        return self.store is not False


#: Fields accepted and ignored, because they never change the answer (README, "Responses API").
IGNORED_PARAMS: dict[str, str] = {
    "safety_identifier": "an end-user id for the caller's own abuse tracking",
    "service_tier": "OpenAI's processing tier; tierup's own routing decides where a request runs",
    "prompt_cache_key": "a provider prompt-cache hint; tierup's cache keys on the request itself",
    "prompt_cache_retention": "a provider prompt-cache hint",
    "prompt_cache_options": "a provider prompt-cache hint",
    "tierup": "tierup's own options (`{\"cache\": false}`)",
}

#: ``include`` values honoured: logprobs (where the tier honours them); there are no reasoning
#: items, so there is no encrypted reasoning to include
INCLUDABLE = frozenset({"message.output_text.logprobs", "reasoning.encrypted_content"})


#: what pydantic puts in an error's location for a union's branch, after the field it belongs to
_BRANCHES = re.compile(r"^(text\.format|tool_choice)\.(?:text|json_object|json_schema|FunctionChoice)(?=\.|$)")


def schema_param(param: str) -> str:
    """A schema error's field without the union branch pydantic names (``text.format.json_schema
    .schema`` is ``text.format.schema`` to the client)."""
    return _BRANCHES.sub(r"\1", param)


def _refuse(param: str, why: str) -> RequestError:
    return RequestError(f"{param} is not supported: {why}", param=param, code="unsupported_parameter")


def check_responses_request(request: ResponsesRequest) -> None:
    """What the schema cannot say: fields tierup cannot honour, each a 400 naming it."""
    extra = request.model_extra
    if extra:
        unknown = sorted(name for name in extra if name not in IGNORED_PARAMS)
        if unknown:
            raise _refuse(unknown[0], "tierup does not know it, and a field that could change the answer "
                                      "is never silently ignored")
    if request.background:
        raise _refuse("background", "tierup answers every request while the client waits")
    if request.max_tool_calls is not None:
        raise _refuse("max_tool_calls", "no tier can bound the calls of one answer (limit them in your loop)")
    if request.text is not None and request.text.verbosity is not None:
        raise _refuse("text.verbosity", "no tier has a verbosity control")
    if request.reasoning is not None and (request.reasoning.summary or request.reasoning.generate_summary):
        raise _refuse("reasoning.summary", "no tier produces reasoning summaries")
    for index, name in enumerate(request.include or ()):
        if name not in INCLUDABLE:
            raise _refuse(f"include[{index}]", f"{name!r} cannot be included")
    for index, tool in enumerate(request.tools or ()):
        if tool.type != "function":
            raise _refuse(f"tools[{index}].type", f"only function tools are supported, not {tool.type!r}")
        if tool.name is None:
            raise RequestError("a function tool needs a name", param=f"tools[{index}].name")
        for name, value in (tool.model_extra or {}).items():
            if value not in (None, False, [], {}):  # e.g. defer_loading: true (tool search)
                raise _refuse(f"tools[{index}].{name}", "tierup does not know it")
