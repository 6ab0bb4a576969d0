"""Fake providers and pipeline parts for unit tests of the request path."""

from __future__ import annotations

from functions.core.chat import Completion, Embeddings, ProviderCall, StreamDelta, Usage
from functions.core.errors import ProviderError


class ScriptedProvider:
    """Answers with ``text``; fails with ``errors`` (one per call) first, if given."""

    def __init__(self, text: str = "hello world", errors: list[ProviderError] | None = None) -> None:
        self.text = text
        self.errors = list(errors or [])
        self.calls: list[ProviderCall] = []

    def _maybe_fail(self) -> None:
        if self.errors:
            raise self.errors.pop(0)

    async def complete(self, call: ProviderCall) -> Completion:
        self.calls.append(call)
        self._maybe_fail()
        return Completion(text=self.text, finish_reason="stop", usage=Usage(5, 2), model=call.model)

    async def stream(self, call: ProviderCall):
        self.calls.append(call)
        self._maybe_fail()
        for word in self.text.split(" "):
            yield StreamDelta(text=word)
        yield StreamDelta(finish_reason="stop", usage=Usage(5, 2))

    async def embed(self, model: str, inputs: list[str], dimensions: int | None) -> Embeddings:
        self._maybe_fail()
        return Embeddings(vectors=[[1.0, 0.0] for _ in inputs], usage=Usage(len(inputs)), model=model)

    async def close(self) -> None:
        return None


class RecordingGuard:
    """Admits (or refuses with ``refuse``) and records every admit and release."""

    def __init__(self, name: str, log: list, refuse: Exception | None = None) -> None:
        self.name = name
        self.log = log
        self.refuse = refuse

    async def admit(self, ctx) -> None:
        if self.refuse is not None:
            raise self.refuse
        self.log.append(("admit", self.name))

    async def release(self, ctx) -> None:
        self.log.append(("release", self.name, ctx.usage))


class ListRecorder:
    def __init__(self) -> None:
        self.records = []

    def record(self, ctx) -> None:
        self.records.append((ctx.outcome, ctx.status, ctx.tier, ctx.usage))


class FixedRouter:
    def __init__(self, targets) -> None:
        self._targets = targets
        self.reports = []

    def targets(self, ctx):
        return list(self._targets)

    def report(self, target, ok: bool) -> None:
        self.reports.append((target.tier, ok))
