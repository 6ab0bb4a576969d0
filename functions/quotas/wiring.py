"""Builds the quota parts from a runtime: backpressure, the quota stage, the usage ledger and the
background task that flushes leases and the ledger (and flushes everything at shutdown).

Where the host freezes the process as soon as a response ends (Lambda: the next request may be
minutes away, and the instance may be recycled without a shutdown), a background flush would
leave each request's ledger record, aggregates, settled quota and metrics in memory. With
``[quotas] durable-before-response`` (``auto``: on Lambda) the gateway instead awaits
``Flusher.settle_owed`` before a response's last message is sent (the end of a JSON body, a
stream's ``[DONE]``), so everything a request owes is written before the client holds its whole
answer and the host can freeze the process.

Environment:
    TIERUP_EMF                  ``stdout`` writes EMF metric lines locally too (on Lambda they are always on)
    AWS_LAMBDA_FUNCTION_NAME    set by Lambda: ``durable-before-response = "auto"`` turns on
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..core.rate_limited_log import RateLimitedLog, trace_of
from ..core.tables import USAGE
from ..gateway.admission import AdmissionGuard
from .leases import QuotaLeases
from .ledger import UsageLedger
from .quota_guard import QuotaGuard

log = logging.getLogger("tierup.quotas")
_failures = RateLimitedLog(log)


def quota_hold_store(runtime):
    from ..adapters.dynamodb.quota_holds import DynamoQuotaHoldStore

    return DynamoQuotaHoldStore(runtime.dynamodb, runtime.table(USAGE))


def usage_ledger(runtime) -> UsageLedger:
    from ..adapters.dynamodb.ledger_records import DynamoLedgerRecords
    from ..adapters.dynamodb.usage_aggregates import DynamoUsageAggregates
    from ..adapters.emf_metrics import EmfMetrics, emf_stdout, metrics_namespace

    quotas = runtime.config.quotas
    table = runtime.table(USAGE)
    records = DynamoLedgerRecords(runtime.dynamodb, table, keep_days=quotas.ledger_days) \
        if quotas.ledger_records else None
    emf = runtime.environ.get("AWS_LAMBDA_FUNCTION_NAME") or runtime.environ.get("TIERUP_EMF") == "stdout"
    from ..adapters.log_bytes import counting_sink

    metrics = EmfMetrics(metrics_namespace(runtime.config.project), sink=counting_sink(emf_stdout)) if emf else None
    return UsageLedger(DynamoUsageAggregates(runtime.dynamodb, table, keep_days=quotas.ledger_days),
                       records, metrics)


def plans_limit_usage(config) -> bool:
    limits = ("requests_per_minute", "tokens_per_minute", "tokens_per_day", "monthly_budget_usd", "max_concurrent")
    plans = [*config.plans.values()]
    plans += [config.plan_for(t.plan, tenant_id) for tenant_id, t in config.tenants.items()]
    return any(getattr(plan, name) is not None for plan in plans for name in limits)


#: longest a response waits for what it owes to be written; past it the writes go on in the
#: background (and are retried by the next flush) rather than hold the response
SETTLE_DEADLINE_S = 5.0


def durable_before_response(runtime) -> bool:
    setting = runtime.config.quotas.durable_before_response
    if setting == "auto":
        return bool(runtime.environ.get("AWS_LAMBDA_FUNCTION_NAME"))
    return setting


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

    async def settle_owed(self) -> None:
        """Write what the requests answered so far owe, before their responses complete. Shielded:
        a write past the deadline is not abandoned half-way, it finishes in the background."""
        try:
            await asyncio.wait_for(asyncio.shield(self.flush()), SETTLE_DEADLINE_S)
        except TimeoutError:
            log.error("usage writes took over %.0f s; the response completes without them", SETTLE_DEADLINE_S)
        except Exception:  # kept pending by each sink and lease: the next flush retries them
            log.exception("could not write usage before the response completed")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception as exc:  # keep flushing: the next round retries what this one could not
                _failures.warning("flush", "background flush failed: %s", exc, exc_info=trace_of(exc))

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
        leases = QuotaLeases(store or quota_hold_store(runtime), config.quotas,
                             per_request_flush=durable_before_response(runtime))
    parts.quota_guards.append(QuotaGuard(config, leases))
    ledger = usage_ledger(runtime)
    parts.recorders.append(ledger)
    flusher = Flusher(config.quotas.flush_interval_s, leases, ledger)
    parts.on_startup.append(flusher.start)
    parts.on_shutdown.append(flusher.stop)
    if durable_before_response(runtime):
        parts.before_response_completes.append(flusher.settle_owed)
    return flusher
