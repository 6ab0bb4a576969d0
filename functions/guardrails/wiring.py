"""Builds the budget guardrails from a runtime: the gateway's kill-switch and spend-cap stages,
and the kill switch as the kill-switch function and the CLI use it.

Environment:
    TIERUP_ALERT_TOPIC_ARN          SNS topic for budget alerts (unset: alerts are only logged)
    TIERUP_GATEWAY_FUNCTION_NAME    the gateway Lambda function a hard stop sets to concurrency 0
    TIERUP_MODAL_SECRET_ARN         Modal token for drop-reserved (kill-switch function, CLI)
"""

from __future__ import annotations

import logging
import os

from ..adapters.dynamodb.guardrails import DynamoGuardrailStore
from ..adapters.sns_alerts import LogAlertPublisher, SnsAlertPublisher
from ..core.ports import AlertPublisher, CounterStore, GpuControl
from ..core.spend_caps import all_caps
from ..core.tables import STATE, USAGE
from .budget_alerter import BudgetAlerter
from .kill_switch_guard import KillSwitchGuard
from .killswitch_executor import KillSwitch
from .spend_cap_guard import SpendCapGuard
from .spend_leases import SpendLeases

log = logging.getLogger("tierup.budgets")

ALERT_TOPIC_ENV = "TIERUP_ALERT_TOPIC_ARN"
GATEWAY_FUNCTION_ENV = "TIERUP_GATEWAY_FUNCTION_NAME"


def guardrail_store(runtime) -> DynamoGuardrailStore:
    return DynamoGuardrailStore(runtime.dynamodb, runtime.table(STATE))


def counter_store(runtime) -> CounterStore:
    from ..adapters.dynamodb.counters import DynamoCounterStore

    return DynamoCounterStore(runtime.dynamodb, runtime.table(USAGE))


def alert_publisher(runtime) -> AlertPublisher:
    topic = runtime.environ.get(ALERT_TOPIC_ENV)
    if not topic:
        return LogAlertPublisher()
    return SnsAlertPublisher(lambda: runtime.aws.client("sns"), topic)


def gpu_control(runtime) -> GpuControl | None:
    """Modal GPU control where a Modal token is at hand (``TIERUP_MODAL_SECRET_ARN`` or the
    environment), else None: the kill switch then reports drop-reserved as skipped, and still
    sets flags and concurrency, rather than failing as a whole."""
    from ..adapters.modal_control import ModalGpuControl
    from ..adapters.modal_secret import TOKEN_KEYS, load_modal_token

    try:
        load_modal_token(runtime)
    except Exception:
        log.exception("could not load the Modal token; reserved GPUs cannot be dropped from here")
        return None
    if not all(os.environ.get(key) for key in TOKEN_KEYS):
        log.warning("no Modal token (TIERUP_MODAL_SECRET_ARN or MODAL_TOKEN_ID/SECRET): GPU steps are skipped")
        return None
    return ModalGpuControl.from_config(runtime.config)


def kill_switch_for(runtime, *, gpu: GpuControl | None = None, control_lambda: bool = False) -> KillSwitch:
    """The kill switch with the ports this process may use: the gateway passes none (it only sets
    flags); the kill-switch function and the CLI pass GPU control and Lambda control."""
    concurrency = None
    function = runtime.environ.get(GATEWAY_FUNCTION_ENV) or None
    if control_lambda and function:
        from ..adapters.lambda_concurrency import LambdaConcurrency

        concurrency = LambdaConcurrency(lambda: runtime.aws.client("lambda"))
    return KillSwitch(runtime.config, guardrail_store(runtime), gpu=gpu, concurrency=concurrency,
                      gateway_function=function)


def wire_budgets(runtime, parts, *, counters: CounterStore | None = None) -> None:
    """Add the kill-switch stage (always) and the spend-cap stage (when a cap is configured)."""
    config = runtime.config
    store = guardrail_store(runtime)
    flags = KillSwitchGuard(store, config.budgets.flag_refresh_s)
    parts.kill_switch_guards.append(flags)
    if not all_caps(config, 0.0):
        return
    leases = SpendLeases(counters or counter_store(runtime), config.budgets)
    alerter = BudgetAlerter(config.budgets, store, alert_publisher(runtime), kill_switch_for(runtime),
                            on_engaged=flags.note_engaged)
    parts.budget_guards.append(SpendCapGuard(config, leases, alerter))
    parts.on_shutdown.append(leases.hand_back)
