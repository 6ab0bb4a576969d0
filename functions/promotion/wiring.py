"""Builds the GPU spend meter from a runtime, for the policy Lambda and ``tierup dev``'s policy loop.

Environment: TIERUP_ALERT_TOPIC_ARN (alerts; unset: only logged), TIERUP_EMF=stdout (EMF metric
lines outside Lambda; on Lambda they are always on).
"""

from __future__ import annotations

from ..core.ports import GpuControl, UsageAggregates
from ..core.tables import USAGE
from .gpu_spend import GpuSpendMeter


def wire_gpu_spend(runtime, *, usage: UsageAggregates, gpu: GpuControl | None = None,
                   metrics=None) -> GpuSpendMeter:
    """The meter on the runtime's tables; a cap its GPU time reaches engages the kill switch,
    which drops reserved GPUs through ``gpu`` at once where it is given."""
    from ..adapters.dynamodb.gpu_spend import DynamoGpuSpendLedger
    from ..core.spend_caps import all_caps
    from ..guardrails.budget_alerter import BudgetAlerter
    from ..guardrails.wiring import alert_publisher, counter_store, guardrail_store, kill_switch_for

    config = runtime.config
    alerter = None
    if all_caps(config, 0.0):
        alerter = BudgetAlerter(config.budgets, guardrail_store(runtime), alert_publisher(runtime),
                                kill_switch_for(runtime, gpu=gpu), source="policy")
    if metrics is None and (runtime.environ.get("AWS_LAMBDA_FUNCTION_NAME")
                            or runtime.environ.get("TIERUP_EMF") == "stdout"):
        from ..adapters.emf_metrics import EmfMetrics

        metrics = EmfMetrics()
    return GpuSpendMeter(config, DynamoGpuSpendLedger(runtime.dynamodb, runtime.table(USAGE)), usage,
                         counters=counter_store(runtime), alerter=alerter, metrics=metrics)
