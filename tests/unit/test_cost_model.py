"""The cost model's arithmetic, on numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from functions.core.errors import ConfigError
from functions.core.policy.cost_model import economics_for, spill_fraction, usd_per_s
from tests.support import POLICY_TEST_ECONOMICS, deep_merge, make_config


@pytest.fixture
def econ():
    config = make_config(POLICY_TEST_ECONOMICS)
    return economics_for("chat", config.routes["chat"], config)


def test_the_example_config_prices_the_whole_container_and_its_release_tail():
    config = make_config()
    econ = economics_for("chat", config.routes["chat"], config)
    # an L40S plus 2 CPU cores and 16 GiB at Modal's list prices
    assert econ.container_usd_per_s == pytest.approx(2 * 0.0000131 + 16 * 0.00000222)
    assert econ.gpu_usd_per_s == pytest.approx(0.000542 + econ.container_usd_per_s)
    # drain grace 60 s, then Modal's scale-down window (idle-s) 60 s
    assert econ.release_tail_s == 120
    assert (econ.prefill_tokens_per_s, econ.decode_tokens_per_s, econ.max_concurrent) == (7700, 750, 32)
    assert econ.serverless_tokens_per_minute == 300000


def test_economics_come_from_the_pricing_table(econ):
    assert econ.serverless_usd_per_prompt_token == pytest.approx(0.22e-6)
    assert econ.gpu_usd_per_s == pytest.approx(0.000542)
    assert (econ.prefill_tokens_per_s, econ.decode_tokens_per_s, econ.warmup_s) == (20000, 2500, 120)
    assert econ.max_replicas == 4 and econ.target_utilisation == 0.8


def test_load_adds_prefill_and_decode_shares(econ):
    # 10 000 prompt tok/s is half an L40S's prefill, 1 250 completion tok/s half its decode
    assert econ.load(10_000, 1_250) == pytest.approx(1.0)


def test_spill_is_the_share_beyond_capacity():
    assert spill_fraction(1, 1.6, 0.8) == pytest.approx(0.5)
    assert spill_fraction(2, 1.6, 0.8) == 0
    assert spill_fraction(0, 0.0, 0.8) == 0


def test_route_cost_is_gpu_plus_spilled_tokens(econ):
    # 5 req/s of 1000+200 tokens: load 0.65, serverless 1.32e-3 USD/s
    serverless = usd_per_s(econ, 0, 5, 5000, 1000)
    assert serverless == pytest.approx(6000 * 0.22e-6)
    assert usd_per_s(econ, 1, 5, 5000, 1000) == pytest.approx(0.000542)  # all absorbed
    # 10 req/s: load 1.3, one replica absorbs 0.8 -> 5/13 spills
    assert usd_per_s(econ, 1, 10, 10000, 2000) == pytest.approx(0.000542 + 5 / 13 * 12000 * 0.22e-6)
    # warming replicas are paid but do not serve
    assert usd_per_s(econ, 1, 5, 5000, 1000, ready=0) == pytest.approx(0.000542 + 6000 * 0.22e-6)


def test_serverless_gpu_routes_pay_gpu_seconds_including_idle():
    config = make_config(deep_merge(POLICY_TEST_ECONOMICS, {"routes": {"chat": {"start-tier": "serverless-gpu"}}}))
    econ = economics_for("chat", config.routes["chat"], config)
    assert econ.serverless_is_gpu
    # one request a minute keeps a container alive through its idle window and cold start
    assert econ.serverless_usd_per_s(1 / 60, 1000 / 60, 200 / 60) == pytest.approx(0.000542)
    # one request an hour: alive (60 s idle + 120 s start) / 3600 of the time
    assert econ.serverless_usd_per_s(1 / 3600, 1000 / 3600, 200 / 3600) == pytest.approx(0.000542 * 180 / 3600)


def test_an_unpriced_serverless_model_is_a_config_error_naming_the_key():
    # validation refuses it at start-up; a config built without validation still gets no $0 price
    config = make_config()
    unpriced = config.model_copy(update={"routes": {
        "chat": config.routes["chat"].model_copy(update={"serverless": "unpriced-model"})}})
    with pytest.raises(ConfigError) as caught:
        economics_for("chat", unpriced.routes["chat"], unpriced)
    assert caught.value.key == "pricing.models.unpriced-model"


def test_vectorised_over_replica_counts(econ):
    costs = usd_per_s(econ, np.arange(4), 10, 10000, 2000)
    assert costs.shape == (4,) and int(np.argmin(costs)) == 2
