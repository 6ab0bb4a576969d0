"""Provider-neutral results rendered as OpenAI's JSON and SSE. Pure functions of their inputs."""

from __future__ import annotations

import base64
import struct
import time

import orjson

from ..core.chat import Completion, Embeddings, StreamDelta, ToolCallDelta, Usage

SIMULATED_FINGERPRINT = "tierup-simulated"


def usage_json(usage: Usage) -> dict:
    body = {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens}
    if usage.cached_tokens:
        body["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
    return body


def message_json(completion: Completion) -> dict:
    """The answer's ``message``: ``content`` is null when the model only called tools."""
    message: dict = {"role": "assistant", "content": completion.text}
    if completion.tool_calls:
        message["content"] = completion.text or None
        message["tool_calls"] = [{"id": call.id, "type": "function",
                                  "function": {"name": call.name, "arguments": call.arguments}}
                                 for call in completion.tool_calls]
    if completion.refusal is not None:
        message["content"] = completion.text or None
        message["refusal"] = completion.refusal
    return message


def completion_json(request_id: str, route: str, completion: Completion) -> bytes:
    return orjson.dumps({
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": route,
        "system_fingerprint": SIMULATED_FINGERPRINT if completion.simulated else None,
        "choices": [{"index": 0, "message": message_json(completion),
                     "logprobs": completion.logprobs, "finish_reason": completion.finish_reason}],
        "usage": usage_json(completion.usage),
    })


def tool_call_delta_json(piece: ToolCallDelta) -> dict:
    """One streamed tool-call piece as OpenAI sends it: the first of a call carries its id, type
    and name (with empty arguments), the later ones only the index and more arguments."""
    if piece.id is not None:
        return {"index": piece.index, "id": piece.id, "type": "function",
                "function": {"name": piece.name or "", "arguments": piece.arguments}}
    return {"index": piece.index, "function": {"arguments": piece.arguments}}


class ChunkWriter:
    """Renders one streamed answer as SSE events (``data: {...}\\n\\n``).

    A stream's bytes are most of what a request sends out, and on Lambda each byte is billed
    as data transfer out, uncompressed. Optional fields that would be null in every chunk
    (``logprobs`` unless asked for, ``system_fingerprint`` unless simulated) are left out, as
    several OpenAI-compatible servers do: the openai SDKs read a missing optional field as None
    (``tests/unit/test_openai_format.py``). ``finish_reason`` stays null until the end, as
    OpenAI sends it: clients test it against null."""

    def __init__(self, request_id: str, route: str, simulated: bool, include_usage: bool) -> None:
        self._base = {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk",
                      "created": int(time.time()), "model": route}
        if simulated:
            self._base["system_fingerprint"] = SIMULATED_FINGERPRINT
        self._include_usage = include_usage
        self._sent_role = False

    def _event(self, body: dict) -> bytes:
        return b"data: " + orjson.dumps(body) + b"\n\n"

    def _choice(self, delta: dict, finish_reason: str | None, logprobs: list | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        if logprobs is not None:
            choice["logprobs"] = {"content": logprobs}
        return self._event({**self._base, "choices": [choice]} | self._usage_null())

    def _usage_null(self) -> dict:
        return {"usage": None} if self._include_usage else {}

    def render(self, delta: StreamDelta) -> bytes:
        out = b""
        if not self._sent_role:
            self._sent_role = True
            out += self._choice({"role": "assistant", "content": ""}, None)
        if delta.text:
            out += self._choice({"content": delta.text}, None, delta.logprobs)
        if delta.tool_calls:
            # one event per piece, as OpenAI sends them (some clients expect one call per event)
            for piece in delta.tool_calls:
                out += self._choice({"tool_calls": [tool_call_delta_json(piece)]}, None)
        if delta.finish_reason is not None:
            out += self._choice({}, delta.finish_reason)
            if self._include_usage and delta.usage is not None:
                out += self._event({**self._base, "choices": [], "usage": usage_json(delta.usage)})
        return out

    def error(self, body: dict) -> bytes:
        return self._event(body)

    @staticmethod
    def done() -> bytes:
        return b"data: [DONE]\n\n"


def embeddings_json(route: str, result: Embeddings, encoding_format: str) -> bytes:
    data = []
    for index, vector in enumerate(result.vectors):
        if encoding_format == "base64":
            packed = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": packed})
        else:
            data.append({"object": "embedding", "index": index, "embedding": vector})
    return orjson.dumps({"object": "list", "data": data, "model": route,
                         "usage": {"prompt_tokens": result.usage.prompt_tokens,
                                   "total_tokens": result.usage.prompt_tokens}})


def models_json(routes: list[str], created: int) -> bytes:
    return orjson.dumps({"object": "list", "data": [
        {"id": name, "object": "model", "created": created, "owned_by": "tierup"} for name in routes]})
