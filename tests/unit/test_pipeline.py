"""The request path's guarantees: every admitted request releases every guard once, refusals
release what was admitted, provider errors fall back across tiers, everything is recorded."""

from __future__ import annotations

import asyncio

import pytest

from functions.core.chat import ChatRequest, Usage
from functions.core.context import RequestContext, Tenant
from functions.core.errors import ProviderBadRequestError, ProviderUnavailableError, RateLimitError
from functions.core.ports import Target
from functions.gateway.pipeline import Pipeline
from tests.fakes.providers import FixedRouter, ListRecorder, RecordingGuard, ScriptedProvider
from tests.support import make_config

CONFIG = make_config()


def _ctx(stream: bool = False) -> RequestContext:
    chat = ChatRequest.model_validate({"model": "chat", "stream": stream,
                                       "messages": [{"role": "user", "content": "hi"}]})
    return RequestContext(request_id="r1", route_name="chat", route=CONFIG.routes["chat"], kind="chat",
                          tenant=Tenant("acme", "pro", CONFIG.plans["pro"]), chat=chat, max_tokens=16)


def _pipeline(guards, targets, recorder=None):
    return Pipeline(guards=guards, router=FixedRouter(targets), recorders=[recorder or ListRecorder()],
                    cost=lambda tier, model, usage: usage.total_tokens * 0.001)


def test_guards_admit_in_order_and_release_in_reverse_once():
    log: list = []
    recorder = ListRecorder()
    provider = ScriptedProvider()
    pipeline = _pipeline([RecordingGuard("a", log), RecordingGuard("b", log)],
                         [Target("serverless", provider, "m1")], recorder)
    ctx = _ctx()
    completion = asyncio.run(pipeline.chat(ctx))
    assert completion.text == "hello world"
    assert log == [("admit", "a"), ("admit", "b"), ("release", "b", Usage(5, 2)), ("release", "a", Usage(5, 2))]
    assert recorder.records == [("ok", 200, "serverless", Usage(5, 2))]
    assert ctx.cost_usd == pytest.approx(0.007)


def test_refusal_releases_only_what_was_admitted_and_is_recorded():
    log: list = []
    recorder = ListRecorder()
    provider = ScriptedProvider()
    pipeline = _pipeline([RecordingGuard("a", log), RecordingGuard("b", log, refuse=RateLimitError("no"))],
                         [Target("serverless", provider, "m1")], recorder)
    with pytest.raises(RateLimitError):
        asyncio.run(pipeline.chat(_ctx()))
    assert log == [("admit", "a"), ("release", "a", None)]
    assert provider.calls == []
    assert recorder.records == [("refused", 429, None, None)]


def test_retryable_provider_error_falls_back_to_next_tier():
    reserved = ScriptedProvider(errors=[ProviderUnavailableError("down")])
    serverless = ScriptedProvider(text="from serverless")
    router_targets = [Target("reserved", reserved, "gpu-model"), Target("serverless", serverless, "bedrock")]
    pipeline = _pipeline([], router_targets)
    ctx = _ctx()
    assert asyncio.run(pipeline.chat(ctx)).text == "from serverless"
    assert ctx.tier == "serverless" and ctx.response_headers["x-tierup-tier"] == "serverless"


def test_non_retryable_provider_error_does_not_fall_back():
    first = ScriptedProvider(errors=[ProviderBadRequestError("bad")])
    second = ScriptedProvider()
    pipeline = _pipeline([], [Target("serverless", first, "a"), Target("overflow", second, "b")])
    with pytest.raises(ProviderBadRequestError):
        asyncio.run(pipeline.chat(_ctx()))
    assert second.calls == []


def test_stream_releases_once_even_when_the_client_goes_away():
    log: list = []
    recorder = ListRecorder()
    pipeline = _pipeline([RecordingGuard("a", log)],
                         [Target("serverless", ScriptedProvider("one two three four"), "m")], recorder)

    async def consume_two_then_close():
        ctx = _ctx(stream=True)
        deltas = await pipeline.chat_stream(ctx)
        await anext(deltas)
        await anext(deltas)
        await deltas.aclose()
        return ctx

    ctx = asyncio.run(consume_two_then_close())
    assert [entry[0] for entry in log] == ["admit", "release"]
    # the partial answer is still billed: prompt counted, completion counted from what was produced
    assert ctx.usage is not None and ctx.usage.completion_tokens > 0
    assert recorder.records[0][0] == "client_closed"


def test_stream_falls_back_before_the_first_token():
    failing = ScriptedProvider(errors=[ProviderUnavailableError("cold")])
    pipeline = _pipeline([], [Target("reserved", failing, "g"), Target("serverless", ScriptedProvider("ok go"), "b")])

    async def collect():
        ctx = _ctx(stream=True)
        return ctx, [d async for d in await pipeline.chat_stream(ctx)]

    ctx, deltas = asyncio.run(collect())
    assert "".join(d.text for d in deltas) == "okgo"
    assert ctx.tier == "serverless"
