"""The OpenAI request schema tierup accepts, and the provider-neutral results it produces.

Requests are validated with pydantic (its Rust core parses JSON and validates in one pass);
any field it does not know is kept and ignored, as OpenAI's own API does for forward
compatibility. Results are plain dataclasses: cheap to build on the hot path.

No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

Role = Literal["system", "developer", "user", "assistant"]

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


class Message(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    role: Role
    content: str | list[TextPart] | None = None

    @property
    def text(self) -> str:
        """The message's content as one string (text parts joined)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


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
    n: Annotated[int, Field(ge=1, le=1)] = 1
    user: str | None = None

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
    cached_tokens: int = 0
    #: counted by the gateway's tokenizer because the provider reported none (or a cut-off answer)
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


FinishReason = Literal["stop", "length", "content_filter", "tool_calls"]


@dataclass(slots=True)
class Completion:
    """A whole answer from a provider."""

    text: str
    finish_reason: FinishReason
    usage: Usage
    model: str
    #: set by providers that do not call a real model (the simulated provider)
    simulated: bool = False


@dataclass(slots=True)
class StreamDelta:
    """One piece of a streamed answer: text, or (last) the finish reason and usage."""

    text: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None


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
