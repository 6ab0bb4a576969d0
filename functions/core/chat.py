"""The OpenAI request schema tierup accepts, and the provider-neutral results it produces.

Requests are validated with pydantic (its Rust core parses JSON and validates in one pass).
A field it does not know is kept in ``model_extra``; ``chat_params.check_chat_request`` then
refuses it unless it is on the documented list of harmless fields (nothing that could change an
answer is silently dropped). Results are plain dataclasses: cheap to build on the hot path.

The request models here (``Message``, ``Tool``, ``ResponseFormat``) are also the internal
representation providers read (``ProviderCall``), whichever API the request came in by.

No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

Role = Literal["system", "developer", "user", "assistant", "tool"]

#: OpenAI's (and Bedrock's) rule for function names
TOOL_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"

#: no model answers more tokens than this; a route's own ``max-tokens`` is checked after parsing
MAX_OUTPUT_TOKENS = 1_048_576
#: the widest embedding any served model returns (OpenAI's largest is 3072)
MAX_EMBEDDING_DIMENSIONS = 4096
#: inputs of one embeddings request (OpenAI's limit)
MAX_EMBEDDING_INPUTS = 2048
#: numbers one embeddings answer may hold (inputs x dimensions): about 11 MB of JSON, well under
#: a Lambda response's 20 MB, and built off the event loop
MAX_EMBEDDING_VALUES = 2 ** 19


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    type: Literal["text"]
    text: str


class ImageUrl(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    #: a ``data:image/...;base64,`` URL, or ``https://`` where the route allows it
    url: Annotated[str, Field(min_length=1)]
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    type: Literal["image_url"]
    image_url: ImageUrl


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    name: str
    #: the arguments as a JSON text, as the model wrote them
    arguments: str


class ToolCallMessage(BaseModel):
    """One entry of an assistant message's ``tool_calls``."""

    model_config = ConfigDict(extra="allow", strict=True)
    id: Annotated[str, Field(min_length=1)]
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    #: assistant messages: the tools the model called
    tool_calls: list[ToolCallMessage] | None = None
    #: tool messages: which call this is the result of
    tool_call_id: str | None = None

    @property
    def text(self) -> str:
        """The message's content as one string (text parts joined; images left out)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if part.type == "text")

    @property
    def images(self) -> list[ImagePart]:
        if self.content is None or isinstance(self.content, str):
            return []
        return [part for part in self.content if part.type == "image_url"]


class FunctionDefinition(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    name: Annotated[str, Field(pattern=TOOL_NAME_PATTERN)]
    description: str | None = None
    #: a JSON schema of the arguments (an object); none means "no arguments"
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    name: str


class NamedToolChoice(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    type: Literal["function"]
    function: NamedFunction


ToolChoice = Literal["auto", "none", "required"] | NamedToolChoice


class TextFormat(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    type: Literal["text"]


class JsonObjectFormat(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    type: Literal["json_object"]


class JsonSchemaSpec(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    name: Annotated[str, Field(pattern=TOOL_NAME_PATTERN)]
    description: str | None = None
    #: the JSON schema the answer must match (``schema`` shadows a pydantic name, hence the alias)
    json_schema: Annotated[dict[str, Any] | None, Field(alias="schema")] = None
    strict: bool | None = None


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormat = Annotated[TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")]


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    include_usage: bool = False


class ChatRequest(BaseModel):
    """``POST /v1/chat/completions``."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: Annotated[str, Field(min_length=1, max_length=256)]
    messages: Annotated[list[Message], Field(min_length=1)]
    max_tokens: Annotated[int | None, Field(gt=0, le=MAX_OUTPUT_TOKENS)] = None
    max_completion_tokens: Annotated[int | None, Field(gt=0, le=MAX_OUTPUT_TOKENS)] = None
    temperature: Annotated[float | None, Field(ge=0, le=2)] = None
    top_p: Annotated[float | None, Field(gt=0, le=1)] = None
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: Annotated[int, Field(ge=1, le=128)] = 1
    user: str | None = None
    # -- tools, structured outputs and the remaining sampling parameters ---------------------
    # Which tier honours which of these is ``chat_params``' business (400 naming the tier).
    tools: Annotated[list[Tool], Field(max_length=128)] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    seed: int | None = None
    presence_penalty: Annotated[float | None, Field(ge=-2, le=2)] = None
    frequency_penalty: Annotated[float | None, Field(ge=-2, le=2)] = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int | None, Field(ge=0, le=20)] = None
    logit_bias: dict[str, Annotated[int, Field(ge=-100, le=100)]] | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None

    @field_validator("messages")
    @classmethod
    def _has_user_turn(cls, messages: list[Message]) -> list[Message]:
        if not any(m.role == "user" for m in messages):
            raise ValueError("must contain at least one message with role 'user'")
        return messages

    @property
    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def stop_sequences(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def deterministic(self) -> bool:
        return self.temperature == 0


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


class EmbeddingRequest(BaseModel):
    """``POST /v1/embeddings`` (text input only)."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: Annotated[str, Field(min_length=1, max_length=256)]
    #: one text or a list of texts; one text is read as a list of one, so that errors name ``input``
    input: Annotated[list[Annotated[str, Field(min_length=1)]],
                     Field(min_length=1, max_length=MAX_EMBEDDING_INPUTS), BeforeValidator(_as_list)]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int | None, Field(gt=0, le=MAX_EMBEDDING_DIMENSIONS)] = None
    user: str | None = None

    @field_validator("dimensions")
    @classmethod
    def _answer_is_bounded(cls, dimensions: int | None, info: ValidationInfo) -> int | None:
        count = len(info.data.get("input") or ())  # validated before ``dimensions`` (declared first)
        if dimensions is not None and count * dimensions > MAX_EMBEDDING_VALUES:
            raise ValueError(f"{count} inputs of {dimensions} dimensions is over the {MAX_EMBEDDING_VALUES} "
                             "numbers one request may return: send fewer inputs or fewer dimensions")
        return dimensions

    @property
    def inputs(self) -> list[str]:
        return self.input


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: prompt tokens read from the provider's prompt cache (part of ``prompt_tokens``, OpenAI's
    #: ``prompt_tokens_details.cached_tokens``); on a response-cache hit, the tokens it replayed
    cached_tokens: int = 0
    #: counted by the gateway's tokenizer because the provider reported none (or a cut-off answer)
    estimated: bool = False
    #: prompt tokens written to the provider's prompt cache (part of ``prompt_tokens``), billed
    #: at the model's cache-write rate
    cache_write_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


FinishReason = Literal["stop", "length", "content_filter", "tool_calls"]


@dataclass(slots=True)
class ToolCall:
    """A tool the model called: ``arguments`` is JSON text, as OpenAI carries it."""

    id: str
    name: str
    arguments: str


@dataclass(slots=True)
class ToolCallDelta:
    """A piece of a streamed tool call, as OpenAI streams them: the first piece of a call has its
    ``index``, ``id`` and ``name`` (and usually no arguments); the later ones only the ``index``
    and the next piece of ``arguments``."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(slots=True)
class Completion:
    """A whole answer from a provider."""

    text: str
    finish_reason: FinishReason
    usage: Usage
    model: str
    #: set by providers that do not call a real model (the simulated provider)
    simulated: bool = False
    tool_calls: list[ToolCall] = field(default_factory=list)
    #: the choice's ``logprobs`` object as the tier returned it (tiers that honour ``logprobs``)
    logprobs: dict | None = None
    #: the model refused a structured-output request (OpenAI's ``message.refusal``)
    refusal: str | None = None


@dataclass(slots=True)
class StreamDelta:
    """One piece of a streamed answer: text and/or tool-call pieces, or (last) the finish reason
    and usage."""

    text: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    tool_calls: list[ToolCallDelta] | None = None
    #: ``logprobs.content`` entries for this piece (tiers that honour ``logprobs``)
    logprobs: list | None = None


class StreamAssembler:
    """Folds a stream's deltas into the whole answer (what the cache stores, what structured
    outputs are validated on)."""

    __slots__ = ("_text", "_calls", "_arguments", "_logprobs")

    def __init__(self) -> None:
        self._text: list[str] = []
        self._calls: dict[int, list[str]] = {}  # index -> [id, name]
        self._arguments: dict[int, list[str]] = {}
        self._logprobs: list | None = None

    def add(self, delta: StreamDelta) -> None:
        if delta.text:
            self._text.append(delta.text)
        if delta.tool_calls:
            for piece in delta.tool_calls:
                call = self._calls.setdefault(piece.index, ["", ""])
                if piece.id:
                    call[0] = piece.id
                if piece.name:
                    call[1] = piece.name
                if piece.arguments:
                    self._arguments.setdefault(piece.index, []).append(piece.arguments)
        if delta.logprobs:
            self._logprobs = (self._logprobs or []) + list(delta.logprobs)

    @property
    def text(self) -> str:
        return "".join(self._text)

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [ToolCall(id=call[0], name=call[1], arguments="".join(self._arguments.get(index, ())))
                for index, call in sorted(self._calls.items())]

    def completion(self, finish_reason: FinishReason, usage: Usage, model: str, simulated: bool = False) -> Completion:
        return Completion(text=self.text, finish_reason=finish_reason, usage=usage, model=model,
                          simulated=simulated, tool_calls=self.tool_calls,
                          logprobs={"content": self._logprobs} if self._logprobs is not None else None)


@dataclass(slots=True)
class Embeddings:
    vectors: list[list[float]]
    usage: Usage
    model: str
    simulated: bool = False


@dataclass(slots=True)
class ProviderCall:
    """What a provider needs to answer a chat request on one tier."""

    model: str
    messages: list[Message]
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: TextFormat | JsonObjectFormat | JsonSchemaFormat | None = None
    #: the other OpenAI parameters the request set (seed, penalties, logprobs, ...), by OpenAI
    #: name; only a tier that honours them is ever given them (``chat_params``)
    passthrough: dict[str, Any] = field(default_factory=dict)
    #: the route lets the provider mark the prompt's stable prefix for its prompt cache
    #: (``[routes.X] prompt-caching``); a provider or model without one ignores it
    prompt_cache: bool = False

    @property
    def structured_output(self) -> bool:
        return self.response_format is not None and self.response_format.type != "text"
