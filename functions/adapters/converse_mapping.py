"""OpenAI chat shapes to Amazon Bedrock Converse shapes, and back.

Plain dicts in, plain dicts or ``functions.core.chat`` values out: what ``BedrockProvider``
sends to ``Converse``/``ConverseStream`` and how it reads the answers. No I/O here, and no
botocore: the dicts are exactly what boto3 takes and returns. Tools and structured outputs are
``converse_tools``' part; images arrive as data URLs (the gateway fetched any ``https`` one) and
become ``image`` blocks of bytes.
"""

from __future__ import annotations

from ..core.chat import Completion, FinishReason, Message, ProviderCall, StreamDelta, ToolCallDelta, Usage
from ..core.errors import RequestError
from ..core.images import decode_data_url
from ..core.tokens import estimated_usage
from .converse_cache import mark_cache_points
from .converse_tools import answer_parts, structured_tool_name, tool_config, tool_result_block, tool_use_block

#: Converse's ``temperature`` is 0..1 while OpenAI's is 0..2; values above 1 are sent as 1
#: (clamping keeps 0..1 meaning the same on both sides, which rescaling would not)
MAX_CONVERSE_TEMPERATURE = 1.0

#: Converse ``stopReason`` -> OpenAI ``finish_reason``; anything unlisted reads as "stop"
FINISH_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "tool_use": "tool_calls",
}

_SYSTEM_ROLES = ("system", "developer")


def converse_request(call: ProviderCall, prompt_cache: bool = False) -> dict:
    """The keyword arguments of ``converse``/``converse_stream`` for one call.

    System and developer messages become ``system`` blocks (Converse keeps them apart from the
    turns). Consecutive user or assistant messages are merged into one message of several
    blocks, since Converse requires the roles to alternate; a ``tool`` message is a user turn
    holding a ``toolResult`` block. Blank text is dropped: Converse rejects blank text blocks. A
    conversation that opens with an assistant turn is sent as it is (nothing is invented to
    precede it); Bedrock refuses it, which the client sees as a 400.

    With ``prompt_cache``, cache points mark the stable prefix for a model with a prompt cache
    (``converse_cache``): the tools, the system prompt, and every message before the newest.
    """
    system: list[dict] = []
    messages: list[dict] = []
    has_tool_blocks = False
    newest = max((i for i, m in enumerate(call.messages) if m.role not in _SYSTEM_ROLES), default=-1)
    history_end: tuple[int, int] | None = None  # where the messages before the newest end
    for index, message in enumerate(call.messages):
        if message.role in _SYSTEM_ROLES:
            text = message.text
            if text.strip():
                system.append({"text": text})
            continue
        blocks = _content_blocks(message, index)
        if not blocks:
            continue
        has_tool_blocks = has_tool_blocks or message.role == "tool" or bool(message.tool_calls)
        role = "user" if message.role == "tool" else message.role
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
        if index < newest:
            history_end = (len(messages) - 1, len(messages[-1]["content"]))
    request: dict = {"modelId": call.model, "messages": messages, "inferenceConfig": inference_config(call)}
    if system:
        request["system"] = system
    if call.tools or call.structured_output:
        config = tool_config(call, has_tool_blocks)
        if config is not None:
            request["toolConfig"] = config
    if prompt_cache:
        history = [m for m in call.messages[:max(newest, 0)] if m.role not in _SYSTEM_ROLES]
        mark_cache_points(request, history, history_end)
    return request


def _content_blocks(message: Message, index: int) -> list[dict]:
    """One message's Converse blocks: text parts joined between images, images as bytes, tool
    calls as ``toolUse``, a tool result as ``toolResult``."""
    if message.role == "tool":
        return [tool_result_block(message.tool_call_id or "", message.text)]
    blocks: list[dict] = []
    content = message.content
    if isinstance(content, list) and any(part.type == "image_url" for part in content):
        pending: list[str] = []
        for part_index, part in enumerate(content):
            if part.type == "text":
                pending.append(part.text)
                continue
            _append_text(blocks, "".join(pending))
            pending = []
            blocks.append(_image_block(part.image_url.url, f"messages[{index}].content[{part_index}]"))
        _append_text(blocks, "".join(pending))
    else:
        _append_text(blocks, message.text)
    for call_index, tool_call in enumerate(message.tool_calls or ()):
        blocks.append(tool_use_block(tool_call.id, tool_call.function.name, tool_call.function.arguments,
                                     f"messages[{index}].tool_calls[{call_index}].function.arguments"))
    return blocks


def _append_text(blocks: list[dict], text: str) -> None:
    if text.strip():
        blocks.append({"text": text})


def _image_block(url: str, param: str) -> dict:
    try:
        image = decode_data_url(url)
    except ValueError as exc:
        raise RequestError(f"the image URL {exc} (Bedrock takes images as bytes)", param=f"{param}.image_url.url",
                           code="invalid_image") from None
    return {"image": {"format": image.format, "source": {"bytes": image.data}}}


def inference_config(call: ProviderCall) -> dict:
    config: dict = {"maxTokens": call.max_tokens}
    if call.temperature is not None:
        config["temperature"] = min(float(call.temperature), MAX_CONVERSE_TEMPERATURE)
    if call.top_p is not None:
        config["topP"] = float(call.top_p)
    if call.stop:
        config["stopSequences"] = list(call.stop)
    return config


def finish_reason(stop_reason: str | None) -> FinishReason:
    return FINISH_REASONS.get(stop_reason or "", "stop")


def usage_from(usage: dict | None) -> Usage:
    """Converse ``usage`` as OpenAI counts it.

    Converse's ``inputTokens`` leaves out the prompt tokens read from or written to its prompt
    cache, while OpenAI's ``prompt_tokens`` counts every prompt token and reports the cached
    ones inside it; so the cache counts are added back, and each kept apart to be priced at its
    own rate.
    """
    if not usage:
        return Usage()
    cache_read = usage.get("cacheReadInputTokens") or 0
    cache_write = usage.get("cacheWriteInputTokens") or 0
    return Usage(prompt_tokens=(usage.get("inputTokens") or 0) + cache_read + cache_write,
                 completion_tokens=usage.get("outputTokens") or 0,
                 cached_tokens=cache_read, cache_write_tokens=cache_write)


def completion_from(response: dict, call: ProviderCall) -> Completion:
    """A ``converse`` answer as a ``Completion``: tool use as tool calls, or, for a structured
    output, the schema tool's input as the text (finish ``stop``, as OpenAI reports it)."""
    content = response.get("output", {}).get("message", {}).get("content", [])
    text, tool_calls, structured = answer_parts(content, structured_tool_name(call), call.parallel_tool_calls is False)
    finish = finish_reason(response.get("stopReason"))
    if structured:
        finish = "stop"
    elif tool_calls:
        finish = "tool_calls"
    usage = response.get("usage")
    if not usage:  # Bedrock reported none: counted here, never billed 0
        usage = estimated_usage(call.messages, text + "".join(tool.arguments for tool in tool_calls),
                                call.tools, call.response_format)
    else:
        usage = usage_from(usage)
    return Completion(text=text, finish_reason=finish, usage=usage, model=call.model, tool_calls=tool_calls)


class StreamFold:
    """Reads ``ConverseStream`` events one at a time and says what to send the client.

    ``messageStop`` brings the stop reason and ``metadata`` (after it) the usage, so the final
    ``StreamDelta`` is built by ``final()`` once the stream is over. A ``toolUse`` block starts
    with ``contentBlockStart`` (id and name) and its input follows in ``contentBlockDelta``
    pieces: relayed as OpenAI's tool-call pieces, or, for the structured-output tool, as text.
    """

    def __init__(self, structured_tool: str | None = None, single_call: bool = False) -> None:
        self.stop_reason: str | None = None
        self.usage: Usage | None = None
        self._structured_tool = structured_tool
        self._single_call = single_call
        #: content block index -> tool-call index (-1: the structured tool; None: a call dropped)
        self._blocks: dict[int, int | None] = {}
        self._calls = 0
        self._fed: set[int] = set()  # blocks whose input has had a piece

    def delta(self, event: dict) -> StreamDelta | None:
        """The delta an event carries, or None (after noting its stop reason or usage)."""
        if "contentBlockDelta" in event:
            body = event["contentBlockDelta"]
            delta = body.get("delta", {})
            text = delta.get("text")
            if text:
                return StreamDelta(text=text)
            if "toolUse" in delta:
                return self._tool_input(body.get("contentBlockIndex", 0), delta["toolUse"].get("input") or "")
            return None
        if "contentBlockStart" in event:
            return self._tool_start(event["contentBlockStart"])
        if "contentBlockStop" in event:
            return self._tool_stop(event["contentBlockStop"].get("contentBlockIndex", 0))
        if "messageStop" in event:
            self.stop_reason = event["messageStop"].get("stopReason")
        elif "metadata" in event:
            self.usage = usage_from(event["metadata"].get("usage"))
        return None

    def _tool_start(self, body: dict) -> StreamDelta | None:
        use = body.get("start", {}).get("toolUse")
        if use is None:
            return None
        block = body.get("contentBlockIndex", 0)
        if self._structured_tool is not None and use.get("name") == self._structured_tool:
            self._blocks[block] = -1
            return None
        if self._single_call and self._calls:
            self._blocks[block] = None  # parallel_tool_calls: false keeps the first call only
            return None
        self._blocks[block] = index = self._calls
        self._calls += 1
        return StreamDelta(tool_calls=[ToolCallDelta(index=index, id=use["toolUseId"], name=use["name"])])

    def _tool_input(self, block: int, piece: str) -> StreamDelta | None:
        index = self._blocks.get(block)
        if index is None or not piece:
            return None
        self._fed.add(block)
        if index == -1:
            return StreamDelta(text=piece)
        return StreamDelta(tool_calls=[ToolCallDelta(index=index, arguments=piece)])

    def _tool_stop(self, block: int) -> StreamDelta | None:
        """A tool call that got no input at all still needs arguments that parse: ``{}``."""
        index = self._blocks.get(block)
        if index is None or block in self._fed:
            return None
        self._fed.add(block)
        if index == -1:
            return StreamDelta(text="{}")
        return StreamDelta(tool_calls=[ToolCallDelta(index=index, arguments="{}")])

    def final(self) -> StreamDelta:
        """The last delta; its usage is None when Bedrock sent none (the gateway then counts it)."""
        finish = finish_reason(self.stop_reason)
        if self._calls:
            finish = "tool_calls"
        elif -1 in self._blocks.values():  # only the structured-output tool was used: a finished answer
            finish = "stop"
        return StreamDelta(finish_reason=finish, usage=self.usage)
