"""The traffic-policy Lambda function, run every minute by an EventBridge schedule.

One run: bill each GPU route's GPU time since the last run as spend (caps, alerts, kill switches
and the CostUSD metric see it), read each route's per-minute usage aggregates, decide its
reserved replicas, plan, apply the plan through Modal's control API, and record the decision (state table and one JSON log line
per route). A warm-up in progress never makes a run wait: the next run picks it up. Routes an
engaged ``drop-reserved`` kill switch covers are held at zero reserved replicas until it is released.

At most one run at a time: a run first takes the ``policy`` lease in the state table (a conditional
write, held until the invocation's own deadline), and a run that finds it held skips; two runs
deciding from the same aggregates would warm the same GPUs twice. A run that dies keeps the lease
only until that deadline. (A reserved concurrency of 1 would do the same, but an account at the
default concurrency quota refuses any reservation.)

Environment: TIERUP_CONFIG, TIERUP_TABLE_USAGE, TIERUP_TABLE_STATE, TIERUP_ALERT_TOPIC_ARN,
TIERUP_MODAL_SECRET_ARN (the Modal token, read from Secrets Manager into the environment before
the Modal adapter is built) and TIERUP_PROVIDER_KEYS_SECRET_ARN (the GPU tier's proxy auth token,
for the health probe).
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid

from .core.config import load_config
from .core.errors import ConfigError
from .core.ports import GpuControl, RunLease, UsageAggregates
from .core.tables import STATE, USAGE
from .gateway.composition import Runtime
from .promotion.cycle import PolicyCycle, routes_held_by

log = logging.getLogger("tierup.policy")
log.setLevel(logging.INFO)

_runtime: Runtime | None = None

#: the lease's name in the state table
LEASE_JOB = "policy"
#: how long a run outside Lambda (no context) holds the lease: the policy function's timeout
DEFAULT_RUN_S = 60.0


def modal_gpu_control(runtime: Runtime, environ: dict | None = None) -> GpuControl:
    """Modal's GPU control, with the token from Secrets Manager (or already in the environment),
    and the health probe's proxy auth token from the provider-keys secret."""
    from .adapters.modal_control import ModalGpuControl
    from .adapters.modal_secret import SECRET_ARN_ENV, TOKEN_KEYS, load_modal_token
    from .adapters.provider_keys import load_provider_keys

    env = os.environ if environ is None else environ
    load_modal_token(runtime, env)
    if not all(env.get(key) for key in TOKEN_KEYS):
        raise ConfigError(SECRET_ARN_ENV, "unset, and no Modal token in the environment: the policy "
                                          "cannot reserve GPUs")
    load_provider_keys(runtime)
    return ModalGpuControl.from_config(runtime.config, environ=runtime.environ)


def usage_aggregates(runtime: Runtime) -> UsageAggregates:
    from .adapters.dynamodb.usage_aggregates import DynamoUsageAggregates

    return DynamoUsageAggregates(runtime.dynamodb, runtime.table(USAGE))


def policy_cycle(runtime: Runtime, *, gpu: GpuControl | None = None,
                 usage: UsageAggregates | None = None) -> PolicyCycle:
    from .adapters.dynamodb.guardrails import DynamoGuardrailStore
    from .adapters.dynamodb.route_table import DynamoPolicyJournal, DynamoRouteTable

    from .batch.wiring import backlog_store
    from .promotion.backlog_source import backlog_from_store
    from .promotion.wiring import wire_gpu_spend

    state = runtime.table(STATE)
    ttl_s = runtime.config.policy.decision_ttl_days * 86400
    flags = DynamoGuardrailStore(runtime.dynamodb, state)
    usage = usage or usage_aggregates(runtime)
    gpu = gpu or modal_gpu_control(runtime)
    return PolicyCycle(runtime.config, usage=usage,
                       table=DynamoRouteTable(runtime.dynamodb, state),
                       journal=DynamoPolicyJournal(runtime.dynamodb, state, ttl_s),
                       gpu=gpu, gpu_spend=wire_gpu_spend(runtime, usage=usage, gpu=gpu),
                       held_routes=lambda now_s: routes_held_by(flags.flags(), runtime.config, now_s),
                       backlog=backlog_from_store(store, runtime.config) if (store := backlog_store(runtime)) else None)


def policy_lease(runtime: Runtime) -> RunLease:
    from .adapters.dynamodb.run_lease import DynamoRunLease

    return DynamoRunLease(runtime.dynamodb, runtime.table(STATE), LEASE_JOB)


def handler(event: dict, context=None, *, runtime: Runtime | None = None, gpu: GpuControl | None = None,
            usage: UsageAggregates | None = None, now_s: float | None = None) -> dict:
    global _runtime
    if runtime is None:
        _runtime = _runtime or Runtime(config=load_config())
        runtime = _runtime
    now = time.time() if now_s is None else now_s
    holder = getattr(context, "aws_request_id", None) or uuid.uuid4().hex
    run_s = context.get_remaining_time_in_millis() / 1000 if context is not None else DEFAULT_RUN_S
    lease = policy_lease(runtime)
    if not lease.acquire(holder, now, now + run_s):
        log.info(json.dumps({"event": "policy_skipped", "reason": "another policy run holds the lease"}))
        return {"skipped": "another policy run holds the lease"}
    try:
        runs = policy_cycle(runtime, gpu=gpu, usage=usage).run(now)
    finally:
        lease.release(holder)
    failed = [run.route for run in runs if run.result.outcome == "failed"]
    summary = {"routes": {run.route: {"replicas": run.decision["replicas"], "outcome": run.result.outcome,
                                      "reason": run.decision["reason"]} for run in runs}}
    if failed:
        # Surface it as a failed invocation (Lambda error metric, alarms); state is already saved.
        raise RuntimeError(f"policy: applying the plan failed for {', '.join(failed)}")
    return summary
