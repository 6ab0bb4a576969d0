"""The pure quota math: counters and windows, demand, plan fit, lease sizing, headers."""

from __future__ import annotations

import pytest

from functions.core.chat import Usage
from functions.core.config import PlanConfig
from functions.core.errors import PromptTooLargeError, RequestError
from functions.core.quota.counters import (MAX_CONCURRENT, MONTHLY_BUDGET_USD, REQUESTS_PER_MINUTE,
                                           TOKENS_PER_DAY, TOKENS_PER_MINUTE, actual_demand, counters_for,
                                           estimated_demand)
from functions.core.quota.headers import format_reset, quota_refusal, rate_limit_headers, retry_after_s
from functions.core.quota.lease_sizing import lease_block
from functions.core.quota.plan_fit import check_fits, output_ceiling

NOW = 1_795_436_537.0  # 2026-11-23T12:22:17Z
PLAN = PlanConfig(**{"requests-per-minute": 20, "tokens-per-minute": 20_000, "tokens-per-day": 200_000,
                     "max-prompt-tokens": 4096, "max-output-tokens": 512, "max-concurrent": 2,
                     "monthly-budget-usd": 1.0})


def test_every_limit_of_the_plan_is_one_counter_with_its_window():
    counters = {c.name: c for c in counters_for(PLAN, "acme", NOW)}
    assert set(counters) == {REQUESTS_PER_MINUTE, TOKENS_PER_MINUTE, TOKENS_PER_DAY, MONTHLY_BUDGET_USD,
                             MAX_CONCURRENT}
    minute = counters[REQUESTS_PER_MINUTE]
    assert minute.key == f"quota#acme#rpm#{int(NOW // 60)}"
    assert minute.resets_at == (NOW // 60 + 1) * 60 and minute.reset_in(NOW) == pytest.approx(43.0)
    assert counters[TOKENS_PER_DAY].key == "quota#acme#tpd#2026-11-23"
    assert counters[MONTHLY_BUDGET_USD].key == "quota#acme#usd#2026-11"
    assert not counters[MONTHLY_BUDGET_USD].integral
    assert counters[MAX_CONCURRENT].resets_at is None and not counters[MAX_CONCURRENT].spends
    assert all(c.expires_at > NOW for c in counters.values())


def test_a_new_minute_is_a_new_counter():
    assert counters_for(PLAN, "a", NOW)[0].key != counters_for(PLAN, "a", NOW + 60)[0].key


def test_unlimited_plan_has_no_counters():
    assert counters_for(PlanConfig(), "acme", NOW) == []


def test_demand_estimates_then_settles_actual_usage():
    counters = {c.name: c for c in counters_for(PLAN, "acme", NOW)}
    estimate = estimated_demand(100, 512, 0.002)
    assert estimate.on(counters[TOKENS_PER_MINUTE]) == 612 == estimate.on(counters[TOKENS_PER_DAY])
    assert estimate.on(counters[REQUESTS_PER_MINUTE]) == 1 and estimate.on(counters[MAX_CONCURRENT]) == 1
    actual = actual_demand(Usage(prompt_tokens=98, completion_tokens=40), 0.0005)
    assert actual.on(counters[TOKENS_PER_MINUTE]) == 138 and actual.on(counters[MONTHLY_BUDGET_USD]) == 0.0005
    assert actual.on(counters[MAX_CONCURRENT]) == 0  # the slot is given back
    assert actual_demand(None, 0.0).on(counters[REQUESTS_PER_MINUTE]) == 1


def test_output_ceiling_refuses_an_explicit_ask_over_the_plan_and_clamps_no_ask():
    with pytest.raises(RequestError) as over:
        output_ceiling(PLAN, 1024, 1024)
    assert over.value.status == 400 and over.value.code == "max_tokens_too_large"
    assert output_ceiling(PLAN, None, 2048) == 512
    assert output_ceiling(PLAN, 100, 100) == 100
    assert output_ceiling(PlanConfig(), None, 2048) == 2048


def test_requests_that_can_never_fit_are_400():
    with pytest.raises(PromptTooLargeError) as prompt:
        check_fits(PLAN, 5000, 10)
    assert prompt.value.status == 400 and "max-prompt-tokens" in prompt.value.message
    with pytest.raises(PromptTooLargeError) as window:
        check_fits(PlanConfig(**{"tokens-per-minute": 1000}), 900, 200)
    assert "tokens-per-minute" in window.value.message
    check_fits(PLAN, 4000, 512)


def test_lease_blocks_shrink_to_one_requests_need_near_the_limit():
    assert lease_block(1000, 0, 1, 0.05, integral=True) == 50
    assert lease_block(1000, 990, 1, 0.05, integral=True) == 1
    assert lease_block(1000, 990, 7, 0.05, integral=True) == 7
    assert lease_block(10.0, 0.0, 0.001, 0.05, integral=False) == pytest.approx(0.5)


def test_format_reset_follows_openais_duration_format():
    assert format_reset(0.02) == "20ms"
    assert format_reset(1.5) == "1.5s"
    assert format_reset(42.2) == "42s"
    assert format_reset(360) == "6m0s"
    assert format_reset(3723) == "1h2m3s"


def test_headers_and_refusals_name_the_limit():
    counters = {c.name: c for c in counters_for(PLAN, "acme", NOW)}
    headers = rate_limit_headers(counters[TOKENS_PER_MINUTE], 1234.7, NOW)
    assert headers == {"x-ratelimit-limit-tokens": "20000", "x-ratelimit-remaining-tokens": "1234",
                       "x-ratelimit-reset-tokens": "43s"}
    assert rate_limit_headers(counters[TOKENS_PER_DAY], 5, NOW) == {}
    refusal = quota_refusal(counters[REQUESTS_PER_MINUTE], 1, NOW)
    assert refusal.status == 429 and refusal.code == "requests_per_minute_exceeded"
    assert refusal.headers["retry-after"] == "43" and "requests-per-minute" in refusal.message
    assert quota_refusal(counters[MAX_CONCURRENT], 1, NOW).code == "concurrency_limit_exceeded"
    assert retry_after_s(counters[MAX_CONCURRENT], NOW) == 1
    assert quota_refusal(counters[MONTHLY_BUDGET_USD], 0.01, NOW).code == "monthly_budget_exceeded"
