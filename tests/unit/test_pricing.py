"""Every dollar has a price: a per-token model or a GPU without one is a config error naming the
key, and at run time an unknown price refuses the request rather than billing it at $0."""

from __future__ import annotations

import asyncio

import pytest

from functions.core.chat import ChatRequest, Usage
from functions.core.config import parse_config
from functions.core.context import RequestContext, Tenant
from functions.core.errors import ConfigError, UnpricedModelError
from functions.core.ports import Target
from functions.core.pricing import token_cost_usd
from functions.core.spend_caps import estimate_cost_usd
from functions.gateway.pipeline import Pipeline
from tests.fakes.providers import FixedRouter, ListRecorder, ScriptedProvider
from tests.support import deep_merge, example_config_data, make_config

CONFIG = make_config()
#: a profile id the example does not price
PROFILE = "us.meta.llama3-2-3b-instruct-v1:0"


def _refused(overrides: dict) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(deep_merge(example_config_data(), overrides))
    return caught.value


@pytest.mark.parametrize("overrides, key, model", [
    ({"routes": {"chat": {"serverless": PROFILE}}}, "routes.chat.serverless", PROFILE),
    ({"routes": {"chat": {"overflow": "gpt-4o-mini-2024-07-18"}}}, "routes.chat.overflow", "gpt-4o-mini-2024-07-18"),
    ({"routes": {"embed": {"serverless": "cohere.embed-english-v3"}}}, "routes.embed.serverless",
     "cohere.embed-english-v3"),
    ({"routes": {"new": {"serverless": "meta.llama3-2-1b-instruct-v1:0"}}}, "routes.new.serverless",
     "meta.llama3-2-1b-instruct-v1:0"),
])
def test_a_route_model_without_a_price_is_refused_naming_the_key(overrides, key, model):
    error = _refused(overrides)
    assert error.key == key
    assert str(error) == f"{key}: model {model!r} has no price in [pricing.models]"


def test_an_inference_profile_is_priced_by_its_exact_id():
    config = parse_config(deep_merge(example_config_data(), {
        "routes": {"chat": {"serverless": PROFILE}},
        "pricing": {"models": {PROFILE: {"input-per-mtok": 0.22, "output-per-mtok": 0.22}}}}))
    assert token_cost_usd(config.pricing, "serverless", PROFILE, Usage(1_000_000, 0)) == pytest.approx(0.22)


def test_a_gpu_without_a_price_is_refused_even_when_no_gpu_is_priced():
    assert _refused({"routes": {"chat": {"gpu": "A10G"}}}).key == "routes.chat.gpu"
    data = example_config_data()
    data["pricing"]["gpus"] = {}
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert caught.value.key == "routes.chat.gpu"
    assert "has no price in [pricing.gpus]" in str(caught.value)


def test_the_example_config_prices_every_model_and_gpu():
    for name, route in CONFIG.routes.items():
        for tier in ("serverless", "overflow"):
            if route.model_for(tier):
                assert route.model_for(tier) in CONFIG.pricing.models, (name, tier)
        if route.serverless_gpu:
            assert route.gpu in CONFIG.pricing.gpus


def test_unknown_per_token_price_raises_and_gpu_tiers_cost_nothing_per_token():
    with pytest.raises(UnpricedModelError) as caught:
        token_cost_usd(CONFIG.pricing, "serverless", "renamed-model", Usage(10, 10))
    assert caught.value.status == 503 and caught.value.code == "model_unpriced"
    assert token_cost_usd(CONFIG.pricing, "overflow", "gpt-4o-mini", Usage(1_000_000, 0)) == pytest.approx(0.15)
    # billed by the second (functions/promotion/gpu_spend.py), never per token
    assert token_cost_usd(CONFIG.pricing, "reserved", CONFIG.routes["chat"].serverless_gpu, Usage(10, 10)) == 0


def _unvalidated(serverless: str):
    """A config as no loader would build it: validation bypassed, so the run-time guard is all."""
    route = CONFIG.routes["chat"].model_copy(update={"serverless": serverless})
    return CONFIG.model_copy(update={"routes": {**CONFIG.routes, "chat": route}})


def test_the_spend_estimate_refuses_an_unpriced_model_rather_than_reserving_zero():
    with pytest.raises(UnpricedModelError):
        estimate_cost_usd(_unvalidated("renamed-model"), "chat", 100, 100)


def test_the_pipeline_refuses_an_unpriced_target_before_calling_it_and_records_no_cost():
    config = _unvalidated("renamed-model")
    provider, recorder = ScriptedProvider(), ListRecorder()
    pipeline = Pipeline(guards=[], router=FixedRouter([Target("serverless", provider, "renamed-model")]),
                        recorders=[recorder],
                        cost=lambda tier, model, usage: token_cost_usd(config.pricing, tier, model, usage))
    chat = ChatRequest.model_validate({"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
    ctx = RequestContext(request_id="r", route_name="chat", route=config.routes["chat"], kind="chat",
                         tenant=Tenant("acme", "pro", config.plans["pro"]), chat=chat, max_tokens=16)
    with pytest.raises(UnpricedModelError):
        asyncio.run(pipeline.chat(ctx))
    assert provider.calls == []
    assert recorder.records == [("refused", 503, None, None)]
