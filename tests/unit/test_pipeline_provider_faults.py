"""The request path when a provider misbehaves: provider-timeout-s bounds the whole call for every
provider, a call that may have generated is never repeated on another tier and is billed for what
can be proved, a refusal before generation bills nothing, and only a finished answer is cached."""

from __future__ import annotations

import asyncio
import time

import pytest

from functions.adapters.simulated import SimulatedProvider
from functions.core.chat import ChatRequest, Completion, StreamDelta, Usage
from functions.core.config import SimulatedConfig
from functions.core.context import RequestContext, Tenant
from functions.core.errors import (ProviderStreamIncompleteError, ProviderThrottledError, ProviderTimeoutError,
                                   ProviderUnavailableError)
from functions.core.ports import Target
from functions.core.tokens import count_chat_tokens, count_tokens
from functions.gateway.pipeline import Pipeline
from tests.fakes.providers import FixedRouter, ListRecorder, ScriptedProvider
from tests.support import make_config

CONFIG = make_config()
PROMPT = "how long may a call take?"


def _ctx(stream: bool = False) -> RequestContext:
    chat = ChatRequest.model_validate({"model": "chat", "stream": stream,
                                       "messages": [{"role": "user", "content": PROMPT}]})
    return RequestContext(request_id="r1", route_name="chat", route=CONFIG.routes["chat"], kind="chat",
                          tenant=Tenant("acme", "pro", CONFIG.plans["pro"]), chat=chat, max_tokens=16)


class RecordingCache:
    def __init__(self) -> None:
        self.stored: list[Completion] = []

    async def lookup(self, ctx):
        return None

    async def store(self, ctx, completion: Completion) -> None:
        self.stored.append(completion)


class TricklingProvider:
    """A piece every ``gap_s``, for ever: no gap is long, the whole call is."""

    def __init__(self, gap_s: float) -> None:
        self.gap_s = gap_s
        self.closed = False

    async def complete(self, call):
        while True:
            await asyncio.sleep(self.gap_s)

    async def stream(self, call):
        try:
            while True:
                await asyncio.sleep(self.gap_s)
                yield StreamDelta(text=" word")
        finally:
            self.closed = True

    async def close(self) -> None:
        return None


class FailingAfterPieces(ScriptedProvider):
    """Streams ``pieces``, then raises ``error``; or ends with a final delta carrying no usage."""

    def __init__(self, pieces: list[str], error=None) -> None:
        super().__init__()
        self.pieces = pieces
        self.error = error

    async def stream(self, call):
        self.calls.append(call)
        for piece in self.pieces:
            yield StreamDelta(text=piece)
        if self.error is not None:
            raise self.error
        yield StreamDelta(finish_reason="stop", usage=None)


def _pipeline(targets, *, timeout_s: float | None = None, cache=None, recorder=None):
    return Pipeline(guards=[], router=FixedRouter(targets), recorders=[recorder or ListRecorder()],
                    cost=lambda tier, model, usage: usage.total_tokens * 0.001, cache=cache, provider_timeout_s=timeout_s)


async def _drain(pipeline, ctx) -> tuple[list[StreamDelta], BaseException | None]:
    got: list[StreamDelta] = []
    try:
        async for delta in await pipeline.chat_stream(ctx):
            got.append(delta)
    except Exception as exc:
        return got, exc
    return got, None


def _estimate(text: str) -> Usage:
    return Usage(count_chat_tokens([PROMPT]), count_tokens(text), estimated=True)


def test_a_stream_trickling_under_the_gap_is_stopped_at_the_whole_call_deadline():
    provider = TricklingProvider(gap_s=0.05)
    cache = RecordingCache()
    pipeline = _pipeline([Target("serverless", provider, "m")], timeout_s=0.4, cache=cache)
    ctx = _ctx(stream=True)
    started = time.monotonic()
    deltas, error = asyncio.run(_drain(pipeline, ctx))
    assert time.monotonic() - started < 2.0
    assert isinstance(error, ProviderTimeoutError) and error.status == 504 and error.code == "provider_timeout"
    assert error.headers["retry-after"] and provider.closed
    relayed = "".join(d.text for d in deltas)
    assert relayed  # pieces came before the deadline, and they are billed with the prompt
    assert ctx.usage == _estimate(relayed)
    assert (ctx.status, ctx.error_code, ctx.outcome) == (504, "provider_timeout", "error")
    assert cache.stored == []


@pytest.mark.parametrize("provider", [TricklingProvider(gap_s=0.05),
                                      SimulatedProvider(SimulatedConfig(**{"ttft-ms": 5000}))],
                         ids=["trickling", "simulated"])
def test_a_whole_answer_is_bounded_by_the_deadline_on_every_provider(provider):
    pipeline = _pipeline([Target("serverless", provider, "m")], timeout_s=0.3)
    ctx = _ctx()
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError) as caught:
        asyncio.run(pipeline.chat(ctx))
    assert time.monotonic() - started < 2.0
    assert caught.value.may_have_generated and "provider-timeout-s" in caught.value.message
    assert ctx.usage == _estimate("")  # the prompt reached the model: it is billed, estimated


def test_the_simulated_stream_is_bounded_too():
    provider = SimulatedProvider(SimulatedConfig(**{"ttft-ms": 0, "tokens-per-s": 20, "answer-tokens": 200}))
    pipeline = _pipeline([Target("serverless", provider, "m")], timeout_s=0.3)
    ctx = _ctx(stream=True)
    started = time.monotonic()
    deltas, error = asyncio.run(_drain(pipeline, ctx))
    assert time.monotonic() - started < 2.0
    assert isinstance(error, ProviderTimeoutError)
    assert ctx.usage == _estimate("".join(d.text for d in deltas))


def test_no_deadline_configured_leaves_calls_alone():
    ctx = _ctx()
    assert asyncio.run(_pipeline([Target("serverless", ScriptedProvider(), "m")]).chat(ctx)).text == "hello world"


def test_a_call_that_may_have_generated_is_not_repeated_on_another_tier():
    first = ScriptedProvider(errors=[ProviderUnavailableError("dropped after sending", may_have_generated=True)])
    second = ScriptedProvider()
    pipeline = _pipeline([Target("reserved", first, "g"), Target("serverless", second, "b")])
    ctx = _ctx()
    with pytest.raises(ProviderUnavailableError):
        asyncio.run(pipeline.chat(ctx))
    assert second.calls == []
    assert ctx.usage == _estimate("") and ctx.tier == "reserved"


def test_a_stream_that_may_have_generated_is_not_repeated_on_another_tier():
    first = FailingAfterPieces([], ProviderStreamIncompleteError("closed before [DONE]"))
    second = ScriptedProvider()
    pipeline = _pipeline([Target("reserved", first, "g"), Target("serverless", second, "b")])
    ctx = _ctx(stream=True)
    _, error = asyncio.run(_drain(pipeline, ctx))
    assert isinstance(error, ProviderStreamIncompleteError) and second.calls == []
    assert ctx.usage == _estimate("")


def test_a_stream_refused_before_generation_bills_nothing():
    throttled = ScriptedProvider(errors=[ProviderThrottledError("slow down")])
    recorder = ListRecorder()
    pipeline = _pipeline([Target("serverless", throttled, "m")], recorder=recorder)
    ctx = _ctx(stream=True)
    _, error = asyncio.run(_drain(pipeline, ctx))
    assert isinstance(error, ProviderThrottledError)
    assert ctx.usage is None and ctx.cost_usd == 0.0
    assert recorder.records == [("error", 429, "serverless", None)]


def test_a_stream_cut_short_is_billed_for_what_was_relayed_and_not_cached():
    cache = RecordingCache()
    provider = FailingAfterPieces(["half", " an answer"], ProviderStreamIncompleteError("broke off"))
    pipeline = _pipeline([Target("serverless", provider, "m")], cache=cache)
    ctx = _ctx(stream=True)
    deltas, error = asyncio.run(_drain(pipeline, ctx))
    assert isinstance(error, ProviderStreamIncompleteError) and error.code == "upstream_stream_incomplete"
    assert "".join(d.text for d in deltas) == "half an answer"
    assert ctx.usage == _estimate("half an answer")
    assert cache.stored == []


def test_a_finished_stream_without_usage_is_counted_marked_estimated_and_cached():
    cache = RecordingCache()
    pipeline = _pipeline([Target("serverless", FailingAfterPieces(["all", " of it"]), "m")], cache=cache)
    ctx = _ctx(stream=True)
    deltas, error = asyncio.run(_drain(pipeline, ctx))
    assert error is None
    assert deltas[-1].usage == ctx.usage == _estimate("all of it")
    assert [(c.text, c.finish_reason, c.usage) for c in cache.stored] == [("all of it", "stop", _estimate("all of it"))]
