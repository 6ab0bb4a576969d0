"""Records the GPU time of every route with a GPU model as spend, each policy run.

For each such route it bills the whole minutes from the route's billing cursor up to the current
minute (``functions.core.gpu_spend``: reserved ``min_containers`` exactly, scale-to-zero time
estimated from traffic), writes each charge once (``GpuSpendLedger``: cursor, spend counters and
usage aggregates in one atomic write), emits it as the ``CostUSD`` metric (per route, per route
and GPU, and in the total the spend alarms watch), and then checks the caps it counted against:
a threshold crossed sends its alert, a cap reached engages its kill switch, exactly as a
request's spend would (``BudgetAlerter``).

Billing uses real time (``clock``), whatever clock the policy decides on: Modal bills real seconds.
A policy that did not run for a while bills the minutes it missed on its next runs, at the
``min_containers`` the route table held meanwhile. Never raises for one route's failure: that
route's cursor stays put, and the next run bills the interval.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable

from ..core.config import TierupConfig
from ..core.gpu_spend import MINUTES_PER_CHARGE, GpuCharge, charge_for, counter_amounts, gpu_scopes
from ..core.ports import CounterStore, GpuSpendLedger, UsageAggregates
from ..core.route_table import RouteEntry
from ..core.spend_caps import caps_for_scope

log = logging.getLogger("tierup.policy")

#: charges one run writes per route at most; a longer backlog is billed over the next runs
MAX_CHARGES_PER_RUN = 24
#: a cap counts as reached when less than this share of it is left (as for requests' spend)
REACHED_SLACK = 0.01


class GpuSpendMeter:
    def __init__(self, config: TierupConfig, ledger: GpuSpendLedger, usage: UsageAggregates, *,
                 counters: CounterStore | None = None, alerter=None, metrics=None,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._ledger = ledger
        self._usage = usage
        self._counters = counters
        self._alerter = alerter
        self._metrics = metrics
        self._clock = clock

    def gpu_routes(self) -> list[str]:
        return [name for name, route in self._config.routes.items() if route.serverless_gpu]

    def charge(self, entries: dict[str, RouteEntry]) -> list[GpuCharge]:
        """Bill every GPU route up to the current minute; ``entries`` is the route table as read
        at the start of the run (its ``target_replicas`` held since the last run)."""
        now_minute = int(self._clock() // 60)
        charges: list[GpuCharge] = []
        for name in self.gpu_routes():
            entry = entries.get(name)
            try:
                charges.extend(self._charge_route(name, entry.target_replicas if entry else 0, now_minute))
            except Exception:  # the cursor did not move: the next run bills this interval
                log.exception("could not record the GPU spend of route %s", name)
        if charges:
            self._check_caps(charges)
        return charges

    def _charge_route(self, name: str, reserved: int, now_minute: int) -> list[GpuCharge]:
        route = self._config.routes[name]
        gpu = self._config.pricing.gpus[route.gpu]
        start = self._ledger.billed_until(name)
        if start is None:
            start = now_minute - 1  # first run: the minute just ended
        if start >= now_minute:
            return []
        end = min(now_minute, start + MINUTES_PER_CHARGE * MAX_CHARGES_PER_RUN)
        idle_minutes = math.ceil(gpu.idle_s / 60.0)
        rows = self._usage.minutes(f"route:{name}", start - idle_minutes, end - 1)
        traffic = {row.minute: row for row in rows}
        charges = []
        for first in range(start, end, MINUTES_PER_CHARGE):
            charge = charge_for(name, route.gpu, gpu, reserved, first, min(first + MINUTES_PER_CHARGE, end), traffic)
            if not self._ledger.record(charge, counter_amounts(self._config, charge)):
                log.info("route %s: GPU time from minute %d is billed already", name, first)
                break
            charges.append(charge)
            if charge.usd > 0:
                self._emit(charge)
        return charges

    def _emit(self, charge: GpuCharge) -> None:
        log.info(json.dumps({"event": "gpu_spend", "route": charge.route, "gpu": charge.gpu,
                             "from_minute": charge.from_minute, "to_minute": charge.to_minute,
                             "gpu_seconds": round(charge.gpu_seconds, 3), "usd": round(charge.usd, 6),
                             "estimated": charge.estimated}))
        if self._metrics is not None:
            try:
                self._metrics.emit_gpu_spend(charge.route, charge.gpu, charge.usd, charge.gpu_seconds)
            except Exception:  # metrics are best effort; the spend itself is written
                log.exception("could not emit the GPU spend metric of route %s", charge.route)

    def _check_caps(self, charges: list[GpuCharge]) -> None:
        """Alerts and kill switches for the caps this run's GPU time counted against."""
        if self._counters is None or self._alerter is None:
            return
        now = self._clock()
        caps = {cap.counter_key: cap for charge in charges for scope in gpu_scopes(charge.route)
                for cap in caps_for_scope(self._config, scope, now)}
        if not caps:
            return
        totals = self._counters.read(list(caps))
        for key, cap in caps.items():
            total = totals.get(key, 0.0)
            reached = total >= cap.limit_usd * (1 - REACHED_SLACK)
            thresholds = self._alerter.crossed(cap, total, reached)
            if thresholds:
                self._alerter.announce(cap, thresholds, total)
