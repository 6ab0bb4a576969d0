"""The typed config: the example validates, and every error names the offending key."""

from __future__ import annotations

import pytest

from functions.core.config import load_config, parse_config
from functions.core.errors import ConfigError
from tests.support import EXAMPLE_CONFIG, deep_merge, example_config_data


def test_example_config_is_valid():
    config = load_config(EXAMPLE_CONFIG)
    assert config.routes["chat"].model_for("reserved") == config.routes["chat"].serverless_gpu
    assert config.plan_for("pro", "demo").max_concurrent == config.plans["pro"].max_concurrent


@pytest.mark.parametrize("overrides, key", [
    ({"routes": {"chat": {"max-tokens": "lots"}}}, "routes.chat.max-tokens"),
    ({"routes": {"chat": {"colour": "red"}}}, "routes.chat.colour"),
    ({"tenants": {"demo": {"plan": "gold"}}}, "tenants.demo.plan"),
    ({"tenants": {"demo": {"plan": "pro", "overrides": {"speed": 3}}}}, "tenants.demo.overrides.speed"),
    ({"routes": {"chat": {"gpu": "TPU"}}}, "routes.chat.gpu"),
    ({"budgets": {"routes": {"nope": {"monthly-usd": 1}}}}, "budgets.routes.nope"),
    ({"gateway": {"max-body-bytes": 0}}, "gateway.max-body-bytes"),
    ({"plans": {"free": {"requests-per-minute": -1}}}, "plans.free.requests-per-minute"),
])
def test_errors_name_the_key(overrides, key):
    with pytest.raises(ConfigError) as caught:
        parse_config(deep_merge(example_config_data(), overrides))
    assert caught.value.key == key


def test_tenant_overrides_apply():
    data = deep_merge(example_config_data(), {"tenants": {"demo": {"plan": "free",
                                                                    "overrides": {"requests-per-minute": 5}}}})
    config = parse_config(data)
    assert config.plan_for("free", "demo").requests_per_minute == 5
    assert config.plan_for("free", "other").requests_per_minute == config.plans["free"].requests_per_minute


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("routes = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
