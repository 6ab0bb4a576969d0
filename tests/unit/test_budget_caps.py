"""Spend caps as data: config validation naming the key, periods, estimates, alert text."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from functions.core.budget_alerts import alert_marker, render_alert
from functions.core.errors import ConfigError
from functions.core.spend_caps import (all_caps, caps_for_request, estimate_cost_usd, period_bounds)
from tests.support import make_config

NOV_23_NOON = datetime(2026, 11, 23, 12, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize("budgets, key", [
    ({"thresholds": [0.5, 1.5]}, "budgets.thresholds"),
    ({"alert-emails": ["not-an-address"]}, "budgets.alert-emails"),
    ({"routes": {"chat": {"monthly-usd": -1}}}, "budgets.routes.chat.monthly-usd"),
    ({"routes": {"chat": {"action": "explode"}}}, "budgets.routes.chat.action"),
    ({"flag-refresh-s": 60}, "budgets.flag-refresh-s"),
    ({"global": {"montly-usd": 5}}, "budgets.global.montly-usd"),
])
def test_bad_budget_config_names_the_key(budgets, key):
    with pytest.raises(ConfigError) as caught:
        make_config({"budgets": budgets})
    assert caught.value.key == key


def test_thresholds_are_sorted_and_deduplicated():
    assert make_config({"budgets": {"thresholds": [1.0, 0.5, 0.5]}}).budgets.thresholds == [0.5, 1.0]


def test_period_bounds_are_utc_calendar_periods():
    label, start, end = period_bounds("monthly", NOV_23_NOON)
    assert label == "2026-11"
    assert start == datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp()
    assert end == datetime(2026, 12, 1, tzinfo=timezone.utc).timestamp()
    label, start, end = period_bounds("daily", NOV_23_NOON)
    assert label == "2026-11-23" and end - start == 86400
    assert period_bounds("monthly", datetime(2026, 12, 31, 23, tzinfo=timezone.utc).timestamp())[2] == \
        datetime(2027, 1, 1, tzinfo=timezone.utc).timestamp()


def test_request_counts_against_global_route_and_tenant_caps():
    config = make_config({"budgets": {"tenants": {"acme": {"daily-usd": 3}}}})
    caps = caps_for_request(config, "chat", "acme", NOV_23_NOON)
    assert [(c.scope, c.period, c.limit_usd) for c in caps] == [
        ("global", "monthly", 1000.0), ("route:chat", "monthly", 500.0), ("route:chat", "daily", 40.0),
        ("tenant:acme", "daily", 3.0)]
    assert caps[1].counter_key == "spend#route:chat#2026-11"
    assert caps[2].counter_key == "spend#route:chat#2026-11-23"
    assert [c.scope for c in caps_for_request(config, "summarize", "other", NOV_23_NOON)] == ["global"]
    assert len(all_caps(config, NOV_23_NOON)) == 4


def test_estimate_is_prompt_plus_max_tokens_at_the_dearest_price():
    config = make_config()
    # chat: Llama 3.1 8B on Bedrock at 0.22/0.22 per Mtok, overflow gpt-4o-mini at 0.15/0.60 per Mtok.
    assert estimate_cost_usd(config, "chat", 1000, 500) == pytest.approx((1000 * 0.22 + 500 * 0.60) / 1e6)
    assert estimate_cost_usd(config, "summarize", 1000, 500) == pytest.approx(1500 * 0.22 / 1e6)


def test_projection_is_linear_over_the_period():
    cap = caps_for_request(make_config(), "chat", "acme", NOV_23_NOON)[1]
    elapsed = NOV_23_NOON - cap.starts_at
    assert cap.projected_usd(100.0, NOV_23_NOON) == pytest.approx(100.0 * 30 * 86400 / elapsed)


def test_alert_reads_as_a_message_to_a_person():
    cap = caps_for_request(make_config(), "chat", "acme", NOV_23_NOON)[1]
    warning = render_alert(cap, 0.8, 401.0, NOV_23_NOON, auto_release=True)
    assert "80%" in warning.subject and "route:chat monthly" in warning.subject
    assert "$401.00" in warning.body and "$500.00" in warning.body and "Projected:" in warning.body
    assert "refused" in warning.body and warning.attributes["tierup-event"] == "threshold"
    reached = render_alert(cap, 1.0, 500.0, NOV_23_NOON, auto_release=True)
    assert "REACHED" in reached.subject and len(reached.subject) <= 100
    assert "What was stopped: requests of route 'chat' are refused until 2026-12-01T00:00:00Z" in reached.body
    assert "tierup killswitch release --scope route:chat" in reached.body
    assert "[budgets.routes.chat] monthly-usd" in reached.body
    assert reached.attributes == {
        "tierup-event": "cap-reached", "scope": "route:chat", "action": "refuse",
        "budget": "route:chat monthly cap of $500.00", "threshold": "1", "period": "2026-11",
        "spent-usd": "500.000000", "until": str(int(cap.ends_at))}
    assert alert_marker(cap, 0.8) == "alert#route:chat#2026-11#0.8"
