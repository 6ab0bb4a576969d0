"""The benchmarks' config writer: what it writes reads back as the same config."""

from __future__ import annotations

import tomllib

from bench.gateway_overhead import PLAN, ROUTE, TENANT, bench_config
from bench.gateway_process import toml_text
from functions.core.config import parse_config

from ..support import example_config_data


def test_example_config_round_trips():
    data = example_config_data()
    assert tomllib.loads(toml_text(data)) == data


def test_empty_tables_and_none_values():
    data = {"plans": {"free": {}, "pro": {"rpm": 5, "budget": None}}, "a": [1.5, "x"], "b": True}
    assert tomllib.loads(toml_text(data)) == {"plans": {"free": {}, "pro": {"rpm": 5}}, "a": [1.5, "x"], "b": True}


def test_bench_config_points_the_route_at_the_upstream_with_limits_out_of_reach():
    config = parse_config(tomllib.loads(toml_text(bench_config("http://127.0.0.1:9"))))
    route = config.routes[ROUTE]
    tier = config.tiers[route.start_tier]
    assert (tier.provider, tier.base_url) == ("openai", "http://127.0.0.1:9/v1")
    assert not route.cache.exact and not route.cache.semantic
    assert config.tenants[TENANT].plan == PLAN
    plan = config.plans[PLAN]  # set, so that the quota stages run; out of reach, so none refuses
    assert plan.requests_per_minute >= 60 * 100_000 and plan.max_concurrent >= 1000
