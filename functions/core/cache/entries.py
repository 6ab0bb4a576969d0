"""Cached answers as bytes: compact JSON, zlib-compressed when large, refused when too large.

DynamoDB items are capped at 400 KB; an answer that would not fit (with its key and metadata)
is simply not cached, never an error.

No I/O here.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import orjson

from ..chat import Completion, ToolCall, Usage

#: DynamoDB's item limit is 400 KB; leave room for keys, the question and metadata
MAX_BODY_BYTES = 380_000
#: the first byte of a stored body says how it is encoded
_PLAIN, _ZLIB = b"j", b"z"


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    completion: Completion
    #: the question the answer was given for (what near-miss guards compare against)
    question: str
    created_at: float
    expires_at: int
    #: the highest similarity at which this answer was seen answering a paraphrase wrongly (0: never)
    wrong_at: float = 0.0

    def fresh(self, now: float) -> bool:
        """DynamoDB deletes expired items only eventually: expiry is checked on every read."""
        return self.expires_at > now


def encode_completion(completion: Completion, compress_over: int) -> bytes | None:
    """The stored body, or None when it is too large to cache."""
    usage = completion.usage
    data = {"t": completion.text, "f": completion.finish_reason, "m": completion.model,
            "s": completion.simulated, "u": [usage.prompt_tokens, usage.completion_tokens]}
    # optional parts only when present, so plain answers stay as small as before
    if completion.tool_calls:
        data["c"] = [[call.id, call.name, call.arguments] for call in completion.tool_calls]
    if completion.logprobs is not None:
        data["l"] = completion.logprobs
    if completion.refusal is not None:
        data["r"] = completion.refusal
    raw = orjson.dumps(data)
    body = _PLAIN + raw
    if len(raw) > compress_over:
        body = _ZLIB + zlib.compress(raw, 6)
    return body if len(body) <= MAX_BODY_BYTES else None


def decode_completion(body: bytes) -> Completion:
    kind, payload = body[:1], body[1:]
    data = orjson.loads(zlib.decompress(payload) if kind == _ZLIB else payload)
    prompt, completion_tokens = data["u"]
    return Completion(text=data["t"], finish_reason=data["f"], model=data["m"], simulated=data["s"],
                      usage=Usage(prompt_tokens=prompt, completion_tokens=completion_tokens),
                      tool_calls=[ToolCall(*call) for call in data.get("c", ())],
                      logprobs=data.get("l"), refusal=data.get("r"))
