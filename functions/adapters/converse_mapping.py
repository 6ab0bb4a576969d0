"""OpenAI chat shapes to Amazon Bedrock Converse shapes, and back.

Plain dicts in, plain dicts or ``functions.core.chat`` values out: what ``BedrockProvider``
sends to ``Converse``/``ConverseStream`` and how it reads the answers. No I/O here, and no
botocore: the dicts are exactly what boto3 takes and returns.
"""

from __future__ import annotations

from ..core.chat import FinishReason, ProviderCall, StreamDelta, Usage

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


def converse_request(call: ProviderCall) -> dict:
    """The keyword arguments of ``converse``/``converse_stream`` for one call.

    System and developer messages become ``system`` blocks (Converse keeps them apart from the
    turns). Consecutive user or assistant messages are merged into one message of several text
    blocks, since Converse requires the roles to alternate. Blank messages are dropped:
    Converse rejects blank text blocks. A conversation that opens with an assistant turn is sent
    as it is (nothing is invented to precede it); Bedrock refuses it, which the client sees as a 400.
    """
    system: list[dict] = []
    messages: list[dict] = []
    for message in call.messages:
        text = message.text
        if not text.strip():
            continue
        if message.role in _SYSTEM_ROLES:
            system.append({"text": text})
        elif messages and messages[-1]["role"] == message.role:
            messages[-1]["content"].append({"text": text})
        else:
            messages.append({"role": message.role, "content": [{"text": text}]})
    request: dict = {"modelId": call.model, "messages": messages, "inferenceConfig": inference_config(call)}
    if system:
        request["system"] = system
    return request


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
    ones inside it; so the cache counts are added back.
    """
    if not usage:
        return Usage()
    cache_read = usage.get("cacheReadInputTokens") or 0
    cache_write = usage.get("cacheWriteInputTokens") or 0
    return Usage(prompt_tokens=(usage.get("inputTokens") or 0) + cache_read + cache_write,
                 completion_tokens=usage.get("outputTokens") or 0,
                 cached_tokens=cache_read)


def completion_text(response: dict) -> str:
    """The text blocks of a ``converse`` answer, joined (other blocks, e.g. reasoning, skipped)."""
    content = response.get("output", {}).get("message", {}).get("content", [])
    return "".join(block["text"] for block in content if "text" in block)


class StreamFold:
    """Reads ``ConverseStream`` events one at a time and says what to send the client.

    ``messageStop`` brings the stop reason and ``metadata`` (after it) the usage, so the final
    ``StreamDelta`` is built by ``final()`` once the stream is over.
    """

    def __init__(self) -> None:
        self.stop_reason: str | None = None
        self.usage: Usage | None = None

    def delta(self, event: dict) -> StreamDelta | None:
        """The text delta an event carries, or None (after noting its stop reason or usage)."""
        if "contentBlockDelta" in event:
            text = event["contentBlockDelta"].get("delta", {}).get("text")
            return StreamDelta(text=text) if text else None
        if "messageStop" in event:
            self.stop_reason = event["messageStop"].get("stopReason")
        elif "metadata" in event:
            self.usage = usage_from(event["metadata"].get("usage"))
        return None

    def final(self) -> StreamDelta:
        """The last delta; its usage is None when Bedrock sent none (the gateway then counts it)."""
        return StreamDelta(finish_reason=finish_reason(self.stop_reason), usage=self.usage)
