"""The simulated provider: the embedded default for local use.

Deterministic text (a function of the prompt), a configurable time to first token and decode
speed, usage counted with the real tokenizer, and every response marked as simulated.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import AsyncIterator

from ..core.chat import Completion, Embeddings, ProviderCall, StreamDelta, Usage
from ..core.config import SimulatedConfig
from ..core.tokens import count_chat_tokens, count_tokens, token_pieces

_WORDS = ("the", "route", "tier", "cost", "token", "cache", "budget", "model", "answer", "serverless",
          "reserved", "gpu", "quota", "traffic", "policy", "warm", "spend", "latency", "request", "plan")

#: prefix of every simulated answer, so that nobody mistakes it for a model's
SIMULATED_PREFIX = "[simulated]"


class SimulatedProvider:
    simulated = True

    def __init__(self, settings: SimulatedConfig) -> None:
        self._settings = settings

    def _answer_tokens(self, call: ProviderCall) -> tuple[list[str], str]:
        """The answer as one piece per token, cut at ``max_tokens`` like a real model's."""
        seed = hashlib.sha256("\x00".join(m.text for m in call.messages).encode()).digest()
        words = [_WORDS[seed[i % len(seed)] % len(_WORDS)] for i in range(self._settings.answer_tokens)]
        full = " ".join([SIMULATED_PREFIX, *words])
        pieces = token_pieces(full, self._settings.answer_tokens)
        if len(pieces) > call.max_tokens:
            return pieces[: call.max_tokens], "length"
        return pieces, "stop"

    def _usage(self, call: ProviderCall, text: str) -> Usage:
        return Usage(prompt_tokens=count_chat_tokens(m.text for m in call.messages),
                     completion_tokens=count_tokens(text))

    async def complete(self, call: ProviderCall) -> Completion:
        pieces, finish = self._answer_tokens(call)
        delay = self._settings.ttft_ms / 1000 + len(pieces) / self._settings.tokens_per_s
        if delay > 0:
            await asyncio.sleep(delay)
        text = "".join(pieces)
        return Completion(text=text, finish_reason=finish, usage=self._usage(call, text),
                          model=call.model, simulated=True)

    async def stream(self, call: ProviderCall) -> AsyncIterator[StreamDelta]:
        pieces, finish = self._answer_tokens(call)
        start = time.monotonic()
        first = self._settings.ttft_ms / 1000
        per_token = 1 / self._settings.tokens_per_s
        for index, piece in enumerate(pieces):
            wait = start + first + index * per_token - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            yield StreamDelta(text=piece)
        yield StreamDelta(finish_reason=finish, usage=self._usage(call, "".join(pieces)))

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
