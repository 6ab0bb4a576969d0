"""The simulated provider: the embedded default for local use.

Deterministic text (a function of the prompt), a configurable time to first token and decode
speed, usage counted with the real tokenizer, and every response marked as simulated.

It honours what a local stack needs to show an app working end to end (``supported_params``):

* **tools**: it calls a tool when ``tool_choice`` names one or is ``required``, or (``auto``)
  when the last message is the user's and mentions a tool by name; after a tool result it
  answers in text. Arguments are a JSON value valid against the function's schema
  (``schema_example``); with ``parallel_tool_calls: false``, at most one call.
* **response_format**: ``json_schema`` answers a JSON value valid against the schema,
  ``json_object`` a small JSON object.
* **seed**: mixed into the answer, so different seeds give different (still deterministic) answers.
* **images**: their content is mixed into the answer.

It refuses (400, via ``chat_params``) what it cannot honour: logprobs, penalties, logit_bias,
reasoning_effort; a simulated answer that pretended to honour them would mislead.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import AsyncIterator

import orjson

from ..core.chat import Completion, Embeddings, ProviderCall, StreamDelta, ToolCall, ToolCallDelta, Usage
from ..core.config import SimulatedConfig
from ..core.schema_example import example_for
from ..core.tokens import count_request_tokens, count_tokens, token_pieces

_WORDS = ("the", "route", "tier", "cost", "token", "cache", "budget", "model", "answer", "serverless",
          "reserved", "gpu", "quota", "traffic", "policy", "warm", "spend", "latency", "request", "plan")

#: prefix of every simulated answer, so that nobody mistakes it for a model's
SIMULATED_PREFIX = "[simulated]"


#: a simulated JSON answer is cut at max_tokens like any other, but is otherwise not bounded
_JSON_TOKENS_LIMIT = 100_000


class SimulatedProvider:
    simulated = True
    supported_params = frozenset({"tools", "tool_choice", "parallel_tool_calls", "response_format", "images",
                                  "seed"})

    def __init__(self, settings: SimulatedConfig) -> None:
        self._settings = settings

    @staticmethod
    def _seed(call: ProviderCall) -> bytes:
        """What the answer is a function of: the prompt's text (as it always was), and, when the
        request has them, its seed and its images."""
        prompt = "\x00".join(m.text for m in call.messages)
        extras = [str(call.passthrough["seed"])] if "seed" in call.passthrough else []
        for message in call.messages:
            extras.extend(part.image_url.url for part in message.images)
        if extras:
            prompt += "\x00" + "\x00".join(extras)
        return hashlib.sha256(prompt.encode()).digest()

    def _answer_tokens(self, call: ProviderCall) -> tuple[list[str], str]:
        """The answer as one piece per token, cut at ``max_tokens`` like a real model's."""
        seed = self._seed(call)
        if call.structured_output:
            full = orjson.dumps(self._json_answer(call, seed)).decode()
            pieces = token_pieces(full, _JSON_TOKENS_LIMIT)
        else:
            words = [_WORDS[seed[i % len(seed)] % len(_WORDS)] for i in range(self._settings.answer_tokens)]
            full = " ".join([SIMULATED_PREFIX, *words])
            pieces = token_pieces(full, self._settings.answer_tokens)
        if len(pieces) > call.max_tokens:
            return pieces[: call.max_tokens], "length"
        return pieces, "stop"

    @staticmethod
    def _json_answer(call: ProviderCall, seed: bytes):
        response_format = call.response_format
        if response_format.type == "json_schema":
            return example_for(response_format.json_schema.json_schema, seed)
        words = [_WORDS[seed[i] % len(_WORDS)] for i in range(6)]
        return {"simulated": True, "answer": " ".join(words)}

    @staticmethod
    def _tool_calls(call: ProviderCall, seed: bytes) -> list[ToolCall]:
        """The tools this answer calls (none: answer in text)."""
        tools = call.tools or []
        choice = call.tool_choice
        if not tools or choice == "none":
            return []
        last = call.messages[-1]
        mentioned = [tool for tool in tools if last.role == "user" and tool.function.name in last.text]
        if choice is not None and not isinstance(choice, str):
            chosen = [tool for tool in tools if tool.function.name == choice.function.name]
        elif choice == "required":
            chosen = mentioned or [tools[seed[0] % len(tools)]]
        else:  # auto: only when the user asked for a tool by name, never right after a tool result
            chosen = mentioned
        if call.parallel_tool_calls is False:
            chosen = chosen[:1]
        calls = []
        for index, tool in enumerate(chosen):
            call_seed = seed + tool.function.name.encode()
            arguments = example_for(tool.function.parameters, call_seed)
            call_id = "call_" + hashlib.sha256(call_seed + bytes([index])).hexdigest()[:24]
            calls.append(ToolCall(id=call_id, name=tool.function.name, arguments=orjson.dumps(arguments).decode()))
        return calls

    def _usage(self, call: ProviderCall, text: str, tool_calls: list[ToolCall] = ()) -> Usage:
        completion = count_tokens(text) + sum(count_tokens(c.name) + count_tokens(c.arguments) for c in tool_calls)
        return Usage(prompt_tokens=count_request_tokens(call.messages, call.tools, call.response_format),
                     completion_tokens=completion)

    async def complete(self, call: ProviderCall) -> Completion:
        tool_calls = self._tool_calls(call, self._seed(call)) if call.tools else []
        if tool_calls:
            pieces, finish = [], "tool_calls"
            produced = sum(count_tokens(c.arguments) for c in tool_calls)
        else:
            pieces, finish = self._answer_tokens(call)
            produced = len(pieces)
        delay = self._settings.ttft_ms / 1000 + produced / self._settings.tokens_per_s
        if delay > 0:
            await asyncio.sleep(delay)
        text = "".join(pieces)
        return Completion(text=text, finish_reason=finish, usage=self._usage(call, text, tool_calls),
                          model=call.model, simulated=True, tool_calls=tool_calls)

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamDelta]:
        tool_calls = self._tool_calls(call, self._seed(call)) if call.tools else []
        if tool_calls:
            deltas = [delta for index, tool_call in enumerate(tool_calls)
                      for delta in _tool_call_deltas(index, tool_call)]
            finish = "tool_calls"
        else:
            pieces, finish = self._answer_tokens(call)
            deltas = [StreamDelta(text=piece) for piece in pieces]
        start = time.monotonic()
        first = self._settings.ttft_ms / 1000
        per_token = 1 / self._settings.tokens_per_s
        for index, delta in enumerate(deltas):
            wait = start + first + index * per_token - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            yield delta
        text = "".join(delta.text for delta in deltas)
        yield StreamDelta(finish_reason=finish, usage=self._usage(call, text, tool_calls))

    async def embed(self, model: str, inputs: list[str], dimensions: int | None) -> Embeddings:
        # on a worker thread: hashing up to the request schema's bound of numbers takes a while
        return await asyncio.to_thread(self._embed, model, inputs, dimensions or 256)

    @staticmethod
    def _embed(model: str, inputs: list[str], size: int) -> Embeddings:
        vectors = [_hashed_vector(text, size) for text in inputs]
        return Embeddings(vectors=vectors, usage=Usage(prompt_tokens=sum(count_tokens(t) for t in inputs)),
                          model=model, simulated=True)

    async def close(self) -> None:
        return None


def _tool_call_deltas(index: int, call: ToolCall) -> list[StreamDelta]:
    """A tool call streamed as OpenAI streams one: id and name first, then the arguments in pieces."""
    first = StreamDelta(tool_calls=[ToolCallDelta(index=index, id=call.id, name=call.name)])
    return [first] + [StreamDelta(tool_calls=[ToolCallDelta(index=index, arguments=piece)])
                      for piece in token_pieces(call.arguments, _JSON_TOKENS_LIMIT)]


def _hashed_vector(text: str, size: int) -> list[float]:
    """A deterministic unit vector: the same text always maps to the same vector."""
    values: list[float] = []
    counter = 0
    while len(values) < size:
        block = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend((b - 127.5) / 127.5 for b in block)
        counter += 1
    values = values[:size]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]
