"""Builds the quota parts from a runtime: backpressure, the quota stage, the usage ledger and the
background task that flushes leases and the ledger (and flushes everything at shutdown).

Environment:
    TIERUP_EMF    ``stdout`` writes EMF metric lines locally too (on Lambda they are always on)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..core.tables import USAGE
from ..gateway.admission import AdmissionGuard
from .leases import QuotaLeases
from .ledger import UsageLedger
from .quota_guard import QuotaGuard

log = logging.getLogger("tierup.quotas")


def quota_hold_store(runtime):
    from ..adapters.dynamodb.quota_holds import DynamoQuotaHoldStore

    return DynamoQuotaHoldStore(runtime.dynamodb, runtime.table(USAGE))


def usage_ledger(runtime) -> UsageLedger:
    from ..adapters.dynamodb.ledger_records import DynamoLedgerRecords
    from ..adapters.dynamodb.usage_aggregates import DynamoUsageAggregates
    from ..adapters.emf_metrics import EmfMetrics, metrics_namespace

    quotas = runtime.config.quotas
    table = runtime.table(USAGE)
    records = DynamoLedgerRecords(runtime.dynamodb, table, keep_days=quotas.ledger_days) \
        if quotas.ledger_records else None
    emf = runtime.environ.get("AWS_LAMBDA_FUNCTION_NAME") or runtime.environ.get("TIERUP_EMF") == "stdout"
    return UsageLedger(DynamoUsageAggregates(runtime.dynamodb, table, keep_days=quotas.ledger_days),
                       records, EmfMetrics(metrics_namespace(runtime.config.project)) if emf else None)


def plans_limit_usage(config) -> bool:
    limits = ("requests_per_minute", "tokens_per_minute", "tokens_per_day", "monthly_budget_usd", "max_concurrent")
    plans = [*config.plans.values()]
    plans += [config.plan_for(t.plan, tenant_id) for tenant_id, t in config.tenants.items()]
    return any(getattr(plan, name) is not None for plan in plans for name in limits)


class Flusher:
    """Runs ``flush`` every ``interval_s`` in the background; ``stop`` runs it a last time."""

    def __init__(self, interval_s: float, leases: QuotaLeases | None, ledger: UsageLedger) -> None:
        self._interval = interval_s
        self._leases = leases
        self._ledger = ledger
        self._task: asyncio.Task | None = None

    async def flush(self, *, final: bool = False) -> None:
        if self._leases is not None:
            await self._leases.flush(final=final)
        await self._ledger.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception:  # keep flushing: the next round retries what this one could not
                log.exception("background flush failed")

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="quota-flush")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush(final=True)


def wire_quotas(runtime, parts, *, store=None) -> Flusher:
    """Add backpressure (always), the quota stage and the ledger; return the flusher."""
    config = runtime.config
    parts.admission_guards.append(AdmissionGuard(config.gateway))
    leases = None
    if config.quotas.enabled and plans_limit_usage(config):
        leases = QuotaLeases(store or quota_hold_store(runtime), config.quotas)
    parts.quota_guards.append(QuotaGuard(config, leases))
    ledger = usage_ledger(runtime)
    parts.recorders.append(ledger)
    flusher = Flusher(config.quotas.flush_interval_s, leases, ledger)
    parts.on_startup.append(flusher.start)
    parts.on_shutdown.append(flusher.stop)
    return flusher
