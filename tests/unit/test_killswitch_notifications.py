"""Parsing what arrives on the alert topic: only kill-switch alarms, ACTUAL budget overruns and
the gateway's cap-reached alerts engage anything; everything else is left alone."""

from __future__ import annotations

from datetime import datetime, timezone

from functions.core.budget_alerts import render_alert
from functions.core.notifications import kill_switch_alarm_description, parse_event
from functions.core.spend_caps import caps_for_request
from tests.samples.sns_events import BUDGET_SUBJECT, alarm_message, budget_message, sns_event
from tests.support import make_config

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc).timestamp()
DEC_1 = datetime(2026, 12, 1, tzinfo=timezone.utc).timestamp()
CONFIG = make_config()


def _one(event, config=CONFIG):
    [parsed] = parse_event(event, config, NOW)
    return parsed


def test_kill_switch_alarm_engages_its_scope_with_the_configured_action():
    description = kill_switch_alarm_description("route:chat", "route chat spend reached its monthly cap")
    trigger = _one(sns_event(alarm_message(description), subject="ALARM: tierup-spend-cap-route-chat")).trigger
    assert trigger.scope == "route:chat" and trigger.action == "refuse"
    assert trigger.source == "cloudwatch-alarm" and "tierup-spend-cap-route-chat" in trigger.reason
    assert trigger.until == DEC_1


def test_global_alarm_takes_the_global_action_and_daily_period():
    description = kill_switch_alarm_description("global", "daily spend cap", period="daily")
    trigger = _one(sns_event(alarm_message(description, route=None))).trigger
    assert (trigger.scope, trigger.action) == ("global", "drop-reserved")
    assert trigger.until == datetime(2026, 11, 24, tzinfo=timezone.utc).timestamp()


def test_alarm_back_to_ok_and_anomaly_alarms_engage_nothing():
    description = kill_switch_alarm_description("route:chat", "cap")
    assert _one(sns_event(alarm_message(description, state="OK"))).trigger is None
    assert _one(sns_event(alarm_message("hourly spend anomaly"))).trigger is None
    assert _one(sns_event(alarm_message(None))).trigger is None


def test_actual_budget_overrun_engages_global():
    parsed = _one(sns_event(budget_message(), subject=BUDGET_SUBJECT))
    trigger = parsed.trigger
    assert (trigger.scope, trigger.action, trigger.source) == ("global", "drop-reserved", "aws-budgets")
    assert "$1,012.40" in trigger.reason and "tierup-monthly" in trigger.budget


def test_budget_threshold_notification_at_100_percent_engages_even_before_the_amount_is_over():
    message = budget_message(threshold="$1,000.00", amount="$999.00")
    assert _one(sns_event(message)).trigger is not None


def test_forecast_and_partial_budget_notifications_only_inform():
    assert _one(sns_event(budget_message(alert_type="FORECASTED", amount="$1,400.00"))).trigger is None
    assert _one(sns_event(budget_message(threshold="$800.00", amount="$812.00"))).trigger is None


def test_auto_release_off_means_held_until_released():
    config = make_config({"budgets": {"auto-release-new-period": False}})
    assert _one(sns_event(budget_message()), config).trigger.until is None


def test_gateway_cap_reached_alert_round_trips_through_message_attributes():
    cap = caps_for_request(CONFIG, "chat", "acme", NOW)[1]
    alert = render_alert(cap, 1.0, 500.0, NOW, auto_release=True)
    attributes = {k: {"Type": "String", "Value": v} for k, v in alert.attributes.items()}
    trigger = _one(sns_event(alert.body, alert.subject, attributes)).trigger
    assert (trigger.scope, trigger.action, trigger.source) == ("route:chat", "refuse", "gateway")
    assert trigger.until == cap.ends_at and trigger.budget == "route:chat monthly cap of $500.00"
    warning = render_alert(cap, 0.8, 400.0, NOW, auto_release=True)
    attributes = {k: {"Type": "String", "Value": v} for k, v in warning.attributes.items()}
    assert _one(sns_event(warning.body, warning.subject, attributes)).trigger is None


def test_unknown_messages_are_ignored():
    assert _one(sns_event("hello")).trigger is None
    assert _one(sns_event('{"not": "an alarm"}')).trigger is None
    assert parse_event({}, CONFIG, NOW) == []
