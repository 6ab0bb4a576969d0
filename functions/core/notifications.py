"""What arrives on the alert topic, parsed into kill-switch triggers.

Three shapes arrive (SNS ``Records[].Sns``):

* a CloudWatch alarm state change: JSON with ``AlarmName``, ``NewStateValue``, ``Trigger``.
  Only alarms whose description carries the marker ``[tierup-kill-switch scope=S period=P]``
  (see :func:`kill_switch_alarm_description`, used by the CDK stack for cap alarms) engage
  anything, and only on ``ALARM``; anomaly alarms are for people and are left alone.
* an AWS Budgets notification: plain English, not JSON (``AWS Budget Notification ...``,
  ``Budget Name: ...``, ``Alert Type: ACTUAL``, ``ACTUAL Amount: $1,005.23``). An ACTUAL
  amount at or over the budgeted amount engages the global scope; FORECASTED ones only inform.
* the gateway's own cap-reached alert: readable text for people plus message attributes
  (``tierup-event = cap-reached``, ``scope``, ``action``, ``until``, ``budget``) for this parser.

Anything else is ignored with a note: an unknown payload must never stop production.

No I/O here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .config import TierupConfig
from .config.budgets import BUDGET_ACTIONS
from .killswitch import KillSwitchTrigger, valid_scope
from .spend_caps import period_bounds

_MARKER = re.compile(r"\[tierup-kill-switch scope=(?P<scope>[^\s\]]+)(?: period=(?P<period>monthly|daily))?\]")
_BUDGET_ANCHOR = "AWS Budget Notification"
CAP_REACHED_EVENT = "cap-reached"


def kill_switch_alarm_description(scope: str, text: str, period: str = "monthly") -> str:
    """An alarm description that makes the kill-switch function engage ``scope`` on ALARM."""
    return f"{text} [tierup-kill-switch scope={scope} period={period}]"


@dataclass(frozen=True, slots=True)
class ParsedNotification:
    trigger: KillSwitchTrigger | None
    note: str


def _until(config: TierupConfig, period: str, now: float) -> float | None:
    if not config.budgets.auto_release_new_period:
        return None
    return period_bounds("daily" if period == "daily" else "monthly", now)[2]


def _action_for(config: TierupConfig, scope: str) -> str:
    cap = config.budgets.cap_for(scope)
    return cap.action if cap is not None else "refuse"


def _money(text: str | None) -> float | None:
    if not text:
        return None
    match = re.search(r"\$\s*([0-9][0-9,]*(?:\.[0-9]+)?)", text)
    return float(match.group(1).replace(",", "")) if match else None


def parse_alarm(message: dict, config: TierupConfig, now: float) -> ParsedNotification:
    name = message.get("AlarmName", "?")
    state = message.get("NewStateValue")
    marker = _MARKER.search(message.get("AlarmDescription") or "")
    if marker is None:
        return ParsedNotification(None, f"alarm {name} is not a kill-switch alarm (state {state})")
    if state != "ALARM":
        return ParsedNotification(None, f"alarm {name} went to {state}: nothing to engage")
    scope = marker.group("scope")
    if not valid_scope(scope):
        return ParsedNotification(None, f"alarm {name} names an invalid scope {scope!r}")
    period = marker.group("period") or "monthly"
    reason = f"CloudWatch alarm {name}: {message.get('NewStateReason', '')}".strip()
    return ParsedNotification(KillSwitchTrigger(
        scope=scope, action=_action_for(config, scope), reason=reason[:500], source="cloudwatch-alarm",
        budget=f"{scope} {period} (alarm {name})", until=_until(config, period, now)), f"alarm {name}")


def _budget_fields(text: str) -> dict[str, str]:
    fields = {}
    for line in re.split(r"[\r\n]+", text):
        key, sep, value = line.partition(":")
        if sep and key.strip() and len(key) < 40:
            fields[key.strip().lower()] = value.strip()
    return fields


def parse_budget(text: str, config: TierupConfig, now: float) -> ParsedNotification:
    fields = _budget_fields(text)
    name = fields.get("budget name", "?")
    alert_type = fields.get("alert type", "").upper()
    budgeted = _money(fields.get("budgeted amount"))
    amount = _money(fields.get(f"{alert_type.lower()} amount")) if alert_type else None
    threshold = _money(fields.get("alert threshold"))
    if alert_type != "ACTUAL":
        return ParsedNotification(None, f"budget {name}: {alert_type or 'unknown'} notification is for people only")
    reached = budgeted is not None and ((amount is not None and amount >= budgeted)
                                        or (threshold is not None and threshold >= budgeted))
    if not reached:
        return ParsedNotification(None, f"budget {name}: ACTUAL ${amount} is under the budgeted ${budgeted}")
    return ParsedNotification(KillSwitchTrigger(
        scope="global", action=_action_for(config, "global"), source="aws-budgets",
        reason=f"AWS Budgets {name}: ACTUAL ${amount:,.2f} of ${budgeted:,.2f} budgeted" if amount is not None
        else f"AWS Budgets {name}: threshold {fields.get('alert threshold')} reached",
        budget=f"AWS budget {name} (${budgeted:,.2f} monthly)", until=_until(config, "monthly", now)),
        f"budget {name}")


def _attribute(attributes: dict, name: str) -> str | None:
    value = attributes.get(name)
    if isinstance(value, dict):
        return value.get("Value")
    return value


def parse_cap_reached(attributes: dict, now: float) -> ParsedNotification:
    scope = _attribute(attributes, "scope") or ""
    action = _attribute(attributes, "action") or "refuse"
    if not valid_scope(scope) or action not in BUDGET_ACTIONS:
        return ParsedNotification(None, f"cap-reached alert with invalid scope {scope!r} or action {action!r}")
    until_text = _attribute(attributes, "until")
    until = float(until_text) if until_text else None
    budget = _attribute(attributes, "budget") or scope
    return ParsedNotification(KillSwitchTrigger(
        scope=scope, action=action, source="gateway", budget=budget, until=until,
        reason=f"{budget} reached (gateway spend counters)"), f"cap reached: {budget}")


def parse_record(record: dict, config: TierupConfig, now: float) -> ParsedNotification:
    sns = record.get("Sns") or {}
    text = sns.get("Message") or ""
    attributes = sns.get("MessageAttributes") or {}
    if _attribute(attributes, "tierup-event") == CAP_REACHED_EVENT:
        return parse_cap_reached(attributes, now)
    if _attribute(attributes, "tierup-event"):
        return ParsedNotification(None, f"tierup {_attribute(attributes, 'tierup-event')} alert: for people only")
    try:
        message = json.loads(text)
    except ValueError:
        message = None
    if isinstance(message, dict) and "AlarmName" in message:
        return parse_alarm(message, config, now)
    if _BUDGET_ANCHOR in text:
        return parse_budget(text, config, now)
    return ParsedNotification(None, f"unrecognised message {sns.get('MessageId', '?')}: ignored")


def parse_event(event: dict, config: TierupConfig, now: float) -> list[ParsedNotification]:
    """Every record of an SNS Lambda event, parsed."""
    return [parse_record(record, config, now) for record in event.get("Records") or []]
