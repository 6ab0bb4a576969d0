"""Prompt caching in the core: which models cache, where cache points go, and what cached prompt
tokens cost (quotas, spend caps and the ledger all price usage with ``token_cost_usd``).

The prices are those of the example config (Bedrock on-demand, us-east-1); every expected dollar
figure is worked out by hand in the comment beside it.
"""

from __future__ import annotations

import asyncio

import pytest

from functions.core.chat import ChatRequest, Usage
from functions.core.context import RequestContext, Tenant
from functions.core.pricing import token_cost_usd
from functions.core.prompt_cache import PromptCacheSupport, place_cache_points, prompt_cache_support
from functions.core.spend_caps import estimate_cost_usd
from functions.core.ports import Target
from functions.gateway.pipeline import Pipeline
from tests.fakes.providers import FixedRouter, ListRecorder, ScriptedProvider
from tests.support import make_config

NOVA = "us.amazon.nova-micro-v1:0"          # $0.035 in, $0.14 out, $0.00875 cache read, $0.035 cache write
HAIKU = "us.anthropic.claude-3-5-haiku-20241022-v1:0"  # $0.80 in, $4 out, $0.08 cache read, $1.00 cache write
LLAMA = "us.meta.llama3-1-8b-instruct-v1:0"  # $0.22 in and out, no prompt cache
CONFIG = make_config()


@pytest.mark.parametrize("model, expected", [
    ("amazon.nova-micro-v1:0", PromptCacheSupport(1000, 4, caches_tools=False)),
    (NOVA, PromptCacheSupport(1000, 4, caches_tools=False)),
    ("eu.amazon.nova-pro-v1:0", PromptCacheSupport(1000, 4, caches_tools=False)),
    (HAIKU, PromptCacheSupport(2048, 4, caches_tools=True)),
    ("anthropic.claude-3-7-sonnet-20250219-v1:0", PromptCacheSupport(1024, 4, caches_tools=True)),
    ("global.anthropic.claude-haiku-4-5-20251001-v1:0", PromptCacheSupport(4096, 4, caches_tools=True)),
    ("anthropic.claude-opus-4-1-20250805-v1:0", PromptCacheSupport(1024, 4, caches_tools=True)),
    ("anthropic.claude-opus-4-5-20251101-v1:0", PromptCacheSupport(4096, 4, caches_tools=True)),  # longest prefix
    ("arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-lite-v1:0",
     PromptCacheSupport(1000, 4, caches_tools=False)),
    ("arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6", None),
    (LLAMA, None),
    ("meta.llama3-1-8b-instruct-v1:0", None),
    ("anthropic.claude-3-haiku-20240307-v1:0", None),
    ("amazon.titan-embed-text-v2:0", None),
    (None, None),
])
def test_which_models_have_a_prompt_cache(model, expected):
    assert prompt_cache_support(model) == expected


CLAUDE = PromptCacheSupport(min_tokens=1024, max_points=4, caches_tools=True)


@pytest.mark.parametrize("segments, expected", [
    # tools 1,500 / system 1,200 / history 300: a point after the tools and the system prompt; the
    # history is only 300 past the last point, short of the 1,024 a point needs
    ([(1500, True), (1200, True), (300, True)], [True, True, False]),
    # nothing long enough alone, but tools + system reach 1,024 by the system prompt's end
    ([(600, True), (600, True), (0, False)], [False, True, False]),
    # Nova's tools hold no point, but count towards the system prompt's
    ([(800, False), (300, True), (50, True)], [False, True, False]),
    # a long history alone
    ([(0, True), (0, True), (5000, True)], [False, False, True]),
    # no history to mark (a first turn) even though the prefix is long
    ([(0, True), (2000, True), (3, False)], [False, True, False]),
    # short everywhere: no point at all
    ([(100, True), (200, True), (300, True)], [False, False, False]),
])
def test_cache_points_go_where_the_prefix_since_the_last_one_is_long_enough(segments, expected):
    assert place_cache_points(segments, CLAUDE) == expected


def test_no_more_cache_points_than_the_model_takes():
    two = PromptCacheSupport(min_tokens=10, max_points=2, caches_tools=True)
    assert place_cache_points([(20, True)] * 3, two) == [True, True, False]


@pytest.mark.parametrize("model, usage, expected_usd", [
    # 500 plain x 0.80 + 2,000 read x 0.08 + 500 written x 1.00 + 100 out x 4 = 400 + 160 + 500 + 400
    (HAIKU, Usage(prompt_tokens=3000, completion_tokens=100, cached_tokens=2000, cache_write_tokens=500), 1460e-6),
    # the same prompt uncached: 3,000 x 0.80 + 100 x 4 = 2,400 + 400
    (HAIKU, Usage(prompt_tokens=3000, completion_tokens=100), 2800e-6),
    # all written, first turn: 3,000 x 1.00 + 100 x 4
    (HAIKU, Usage(prompt_tokens=3000, completion_tokens=100, cache_write_tokens=3000), 3400e-6),
    # 1,000 plain x 0.035 + 4,000 read x 0.00875 + 200 out x 0.14 = 35 + 35 + 28
    (NOVA, Usage(prompt_tokens=5000, completion_tokens=200, cached_tokens=4000), 98e-6),
    # a model priced without cache rates bills cache reads at the input rate: 1,000 x 0.22 + 10 x 0.22 = 222.2
    (LLAMA, Usage(prompt_tokens=1000, completion_tokens=10, cached_tokens=800), 222.2e-6),
    # a response-cache hit's usage (no prompt tokens, the replayed ones as cached) costs nothing
    (HAIKU, Usage(prompt_tokens=0, completion_tokens=0, cached_tokens=3100), 0.0),
])
def test_cached_prompt_tokens_are_billed_at_their_own_rates(model, usage, expected_usd):
    assert token_cost_usd(CONFIG.pricing, "serverless", model, usage) == pytest.approx(expected_usd)


def test_a_spend_reservation_prices_the_prompt_as_a_cache_write_when_that_is_dearer():
    config = make_config({"routes": {"chat": {"serverless": HAIKU, "overflow": None}}})
    # 1,000 prompt tokens at the write rate (1.00, above the 0.80 input rate) + 100 out x 4
    assert estimate_cost_usd(config, "chat", 1000, 100) == pytest.approx(1400e-6)


class CachingProvider(ScriptedProvider):
    """Answers as a provider that read most of the prompt from its cache."""

    async def complete(self, call):
        completion = await super().complete(call)
        completion.usage = Usage(prompt_tokens=3000, completion_tokens=100, cached_tokens=2000, cache_write_tokens=500)
        return completion


def _chat_through_pipeline(config, provider) -> RequestContext:
    recorded: list[RequestContext] = []
    recorder = ListRecorder()
    recorder.record = recorded.append
    pipeline = Pipeline(guards=[], router=FixedRouter([Target("serverless", provider, HAIKU)]), recorders=[recorder],
                        cost=lambda tier, model, usage: token_cost_usd(config.pricing, tier, model, usage))
    chat = ChatRequest.model_validate({"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
    ctx = RequestContext(request_id="r", route_name="chat", route=config.routes["chat"], kind="chat",
                         tenant=Tenant("acme", "pro", config.plans["pro"]), chat=chat, max_tokens=16)
    asyncio.run(pipeline.chat(ctx))
    return recorded[0]


def test_the_recorded_cost_is_at_the_cache_rates_and_the_route_asks_for_caching_by_default():
    provider = CachingProvider()
    recorded = _chat_through_pipeline(make_config({"routes": {"chat": {"serverless": HAIKU}}}), provider)
    assert provider.calls[0].prompt_cache is True
    assert recorded.cost_usd == pytest.approx(1460e-6)  # worked out above


def test_a_route_can_turn_prompt_caching_off():
    provider = CachingProvider()
    _chat_through_pipeline(make_config({"routes": {"chat": {"serverless": HAIKU, "prompt-caching": False}}}), provider)
    assert provider.calls[0].prompt_cache is False
