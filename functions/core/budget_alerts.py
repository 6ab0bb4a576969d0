"""Budget alerts as a person reads them: which budget, spend so far, the threshold crossed, the
projected spend at period end, what was stopped and how to release it.

The same text goes to every email subscriber of the alert topic; the message attributes carry
the same facts for code (the kill-switch function acts on ``tierup-event = cap-reached``).

No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass

from .notifications import CAP_REACHED_EVENT
from .spend_caps import SpendCap, iso_utc, scope_label

THRESHOLD_EVENT = "threshold"
_STOPS = {
    "refuse": "requests of {scope} are refused",
    "drop-reserved": "requests of {scope} are refused and reserved GPU capacity is dropped to zero",
    "hard-stop": ("requests of {scope} are refused, reserved GPU capacity is dropped to zero and the "
                  "gateway function's reserved concurrency is set to 0 (nothing is served)"),
}


@dataclass(frozen=True, slots=True)
class Alert:
    subject: str
    body: str
    attributes: dict[str, str]


def alert_marker(cap: SpendCap, threshold: float) -> str:
    """The once-only marker of one threshold of one cap in one period."""
    return f"alert#{cap.scope}#{cap.label}#{threshold:g}"


def _config_key(cap: SpendCap) -> str:
    key = "monthly-usd" if cap.period == "monthly" else "daily-usd"
    if cap.scope == "global":
        return f"[budgets.global] {key}"
    kind, _, name = cap.scope.partition(":")
    return f"[budgets.{'routes' if kind == 'route' else 'tenants'}.{name}] {key}"


def release_hint(cap: SpendCap, auto_release: bool) -> str:
    hint = (f"raise {_config_key(cap)} in tierup.toml and deploy, or wait for the period to end; then "
            f"run: tierup killswitch release --scope {cap.scope}")
    if auto_release:
        hint += f" (it releases itself at {iso_utc(cap.ends_at)})"
    return hint


def render_alert(cap: SpendCap, threshold: float, spent_usd: float, now: float, *,
                 auto_release: bool) -> Alert:
    reached = threshold >= 1.0
    share = spent_usd / cap.limit_usd if cap.limit_usd else 1.0
    projected = cap.projected_usd(spent_usd, now)
    who = scope_label(cap.scope)
    subject = (f"tierup: {cap.name} budget {'REACHED' if reached else f'at {threshold:.0%}'} "
               f"(${spent_usd:,.2f} of ${cap.limit_usd:,.2f})")[:100]
    stops = _STOPS[cap.action].format(scope=who)
    lines = [
        f"tierup budget alert for {who}.",
        "",
        f"Budget:          {cap.describe()}, period {cap.label} (resets {iso_utc(cap.ends_at)})",
        f"Spend so far:    ${spent_usd:,.2f} ({share:.1%} of the cap; settled requests plus reservations in flight)",
        f"Threshold:       {threshold:.0%}",
        f"Projected:       ${projected:,.2f} by {iso_utc(cap.ends_at)} at the rate so far",
        "",
    ]
    if reached:
        lines += [f"What was stopped: {stops}"
                  + (f" until {iso_utc(cap.ends_at)}." if auto_release else " until released."),
                  f"How to release:   {release_hint(cap, auto_release)}"]
    else:
        lines += [f"At 100%:          {stops} (action '{cap.action}')."]
    lines += ["", f"Sent {iso_utc(now)} by the tierup gateway; one message per threshold per period."]
    attributes = {
        "tierup-event": CAP_REACHED_EVENT if reached else THRESHOLD_EVENT,
        "scope": cap.scope, "action": cap.action, "budget": cap.describe(),
        "threshold": f"{threshold:g}", "period": cap.label, "spent-usd": f"{spent_usd:.6f}",
    }
    if reached and auto_release:
        attributes["until"] = f"{cap.ends_at:.0f}"
    return Alert(subject=subject, body="\n".join(lines) + "\n", attributes=attributes)
