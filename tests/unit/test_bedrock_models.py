"""Bedrock model ids in the example config: ids that run on demand, each with a price."""

from __future__ import annotations

from functions.core.bedrock_models import destination_regions, is_inference_profile, split_profile
from tests.support import make_config

#: foundation models that, in us-east-1, run on demand only through a cross-region profile
PROFILE_ONLY_IN_US_EAST_1 = {"meta.llama3-1-8b-instruct-v1:0", "meta.llama3-1-70b-instruct-v1:0",
                             "meta.llama3-2-3b-instruct-v1:0", "meta.llama3-3-70b-instruct-v1:0"}


def test_the_example_calls_llama_through_the_us_profile_and_prices_the_exact_ids():
    config = make_config()
    assert config.tiers["serverless"].region == "us-east-1"
    ids = {route.serverless for route in config.routes.values() if route.serverless}
    assert ids, "the example has Bedrock routes"
    for model_id in ids:
        assert split_profile(model_id)[1] not in PROFILE_ONLY_IN_US_EAST_1 or is_inference_profile(model_id), (
            f"{model_id} needs its US inference profile id in us-east-1")
        assert config.pricing.model_price(model_id) is not None, f"no [pricing.models] entry for {model_id}"
    assert "us.meta.llama3-1-8b-instruct-v1:0" in ids


def test_profile_ids_split_into_geography_and_model():
    assert split_profile("us.meta.llama3-1-8b-instruct-v1:0") == ("us", "meta.llama3-1-8b-instruct-v1:0")
    assert split_profile("meta.llama3-1-8b-instruct-v1:0") == (None, "meta.llama3-1-8b-instruct-v1:0")
    assert split_profile("amazon.titan-embed-text-v2:0") == (None, "amazon.titan-embed-text-v2:0")
    assert split_profile("us-gov.anthropic.claude-3-haiku-20240307-v1:0")[0] == "us-gov"


def test_destinations_are_listed_for_us_profiles_and_unknown_elsewhere():
    assert set(destination_regions("us.meta.llama3-1-8b-instruct-v1:0")) >= {"us-east-1", "us-east-2", "us-west-2"}
    assert destination_regions("eu.meta.llama3-2-3b-instruct-v1:0") is None
    assert destination_regions("global.anthropic.claude-haiku-4-5-20251001-v1:0") is None
    assert destination_regions("amazon.titan-embed-text-v2:0") is None
