"""Threshold alerts and the kill switch at 100%, driven by the spend counters' totals.

Each threshold of each cap is announced once per period across every instance: the first
instance to see the crossing wins a conditional put of the marker ``alert#SCOPE#PERIOD#T`` and
publishes; the others lose it and stay quiet (no email storms). At 100% the scope's kill switch
is engaged (flag in the state table, honoured by this instance at once) before the alert goes
out; the alert's attributes ask the kill-switch function for the rest of the scope's action.

Synchronous (boto3); the spend guard runs it off the event loop, in the request that crossed.
Never raises: an alert that cannot be sent is logged, and the request it rode on goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..core.budget_alerts import alert_marker, render_alert
from ..core.config.budgets import BudgetsConfig
from ..core.killswitch import KillSwitchTrigger
from ..core.ports import AlertPublisher, GuardrailStore
from ..core.spend_caps import SpendCap
from .killswitch_executor import KillSwitch

log = logging.getLogger("tierup.budgets")


class BudgetAlerter:
    def __init__(self, budgets: BudgetsConfig, store: GuardrailStore, publisher: AlertPublisher,
                 kill_switch: KillSwitch, *, on_engaged: Callable | None = None,
                 clock: Callable[[], float] = time.time, source: str = "gateway") -> None:
        self._budgets = budgets
        self._store = store
        self._publisher = publisher
        self._kill_switch = kill_switch
        self._on_engaged = on_engaged
        self._clock = clock
        #: who engages the kill switch, as its trigger records it ("policy" for GPU billing)
        self._source = source
        #: markers this instance has dealt with (won or lost), so it asks DynamoDB once per marker
        self._handled: set[str] = set()

    def crossed(self, cap: SpendCap, total: float, reached: bool) -> list[float]:
        """Thresholds newly crossed at ``total`` that this instance has not dealt with yet."""
        thresholds = list(self._budgets.thresholds)
        if 1.0 not in thresholds:
            thresholds.append(1.0)  # reaching a cap is always announced
        fresh = []
        for threshold in thresholds:
            hit = reached if threshold >= 1.0 else False
            if hit or total >= threshold * cap.limit_usd:
                marker = alert_marker(cap, threshold)
                if marker not in self._handled:
                    self._handled.add(marker)
                    fresh.append(threshold)
        return fresh

    def announce(self, cap: SpendCap, thresholds: list[float], total: float) -> None:
        for threshold in thresholds:
            try:
                if threshold >= 1.0:
                    self._engage(cap, total)
                self._send_once(cap, threshold, total)
            except Exception:
                log.exception("budget alert for %s at %g failed", cap.name, threshold)

    def _send_once(self, cap: SpendCap, threshold: float, total: float) -> None:
        marker = alert_marker(cap, threshold)
        if not self._store.mark_once(marker, cap.expires_at):
            return  # another instance (or an earlier run of this one) sent it
        alert = render_alert(cap, threshold, total, self._clock(),
                             auto_release=self._budgets.auto_release_new_period)
        try:
            self._publisher.publish(alert.subject, alert.body, alert.attributes)
        except Exception:
            self._store.unmark(marker)  # not sent: let the next instance to see the crossing send it
            raise
        log.warning("budget alert sent: %s", alert.subject)

    def _engage(self, cap: SpendCap, total: float) -> None:
        until = cap.ends_at if self._budgets.auto_release_new_period else None
        trigger = KillSwitchTrigger(scope=cap.scope, action=cap.action, source=self._source, budget=cap.describe(),
                                    reason=f"${total:,.2f} committed of the {cap.describe()}", until=until)
        outcome = self._kill_switch.engage(trigger)
        if self._on_engaged is not None and outcome.plan.flag is not None:
            self._on_engaged(outcome.plan.flag)
