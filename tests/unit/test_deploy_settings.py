"""Settings the deployed stack and the code running in it must agree on: the region Titan is
called in (the stack grants it there) and the namespace the gateway's metrics go to (the stack's
alarms read it). No I/O: clients are made but never called. (The metrics' namespace is checked
end to end in tests/functional/test_gateway_metrics_namespace.py.)"""

from __future__ import annotations

from functions.core.config.cache import titan_region
from functions.gateway.composition import Runtime
from functions.gateway.cache_wiring import choose_embedder
from infra.bedrock_access import invoked_models
from tests.support import make_config


def _runtime(config, region: str) -> Runtime:
    return Runtime(config=config, environ={"AWS_REGION": region, "AWS_ACCESS_KEY_ID": "x",
                                           "AWS_SECRET_ACCESS_KEY": "x"})


def test_titan_is_called_in_the_bedrock_tier_s_region_where_the_stack_grants_it():
    """The stack deployed in eu-west-1, Bedrock in us-east-1: Titan must go to us-east-1 too."""
    config = make_config({"cache": {"embedder": "titan"}, "tiers": {"serverless": {"region": "us-east-1"}}})
    embedder = choose_embedder(_runtime(config, "eu-west-1"), provider_override=None)
    embedder.load()
    assert embedder._client.meta.region_name == "us-east-1"
    assert (config.cache.titan_model, titan_region(config)) in invoked_models(config)  # the IAM grant


def test_titan_region_wins_over_the_tier_s_and_both_sides_read_it():
    config = make_config({"cache": {"embedder": "titan", "titan-region": "us-west-2"},
                          "tiers": {"serverless": {"region": "us-east-1"}}})
    embedder = choose_embedder(_runtime(config, "eu-west-1"), provider_override=None)
    embedder.load()
    assert embedder._client.meta.region_name == "us-west-2"
    assert (config.cache.titan_model, "us-west-2") in invoked_models(config)
