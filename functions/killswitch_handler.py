"""The kill-switch Lambda function, subscribed to the alert topic.

Parses each SNS record (a CloudWatch alarm, an AWS Budgets notification, or the gateway's own
cap-reached alert; see ``functions.core.notifications``), then plans and applies the kill switch
for the scope it names. Idempotent: a second delivery plans no steps. Invoked by a schedule
(an EventBridge event, ``source = aws.events``, shortly after 00:00 UTC), it releases the flags
whose budget period is over and restores the gateway's concurrency after an expired hard stop. A failed step raises after
every record is handled, so that Lambda's retry of the asynchronous invocation tries again.
Invoked by CloudFormation (the ``Custom::TierupGatewayConcurrency`` resource), it applies
``[gateway] reserved-concurrency`` unless a hard stop holds the gateway at 0, and answers the deploy.

Environment: TIERUP_CONFIG, TIERUP_TABLE_STATE, TIERUP_GATEWAY_FUNCTION_NAME and, for
drop-reserved, the Modal credentials the GPU control adapter needs.
"""

from __future__ import annotations

import json
import logging
import time

from .core.config import load_config
from .core.gateway_concurrency import is_deploy_request
from .core.notifications import parse_event
from .gateway.composition import Runtime
from .guardrails.wiring import gpu_control, kill_switch_for

log = logging.getLogger("tierup.killswitch")
log.setLevel(logging.INFO)

_runtime: Runtime | None = None


def handler(event: dict, context=None, *, runtime: Runtime | None = None, gpu=None) -> dict:
    global _runtime
    if runtime is None:
        _runtime = _runtime or Runtime(config=load_config())
        runtime = _runtime
    if is_deploy_request(event):
        from .guardrails.deployed_concurrency import answer_deploy_request

        return answer_deploy_request(event, kill_switch_for(runtime, control_lambda=True))
    kill_switch = kill_switch_for(runtime, gpu=gpu if gpu is not None else gpu_control(runtime),
                                  control_lambda=True)
    results, failed = [], []
    if event.get("source") == "aws.events":  # the schedule at the start of each day (UTC)
        for outcome in kill_switch.release_expired("schedule"):
            results.append(outcome.as_dict())
            failed.extend(outcome.failed)
    for parsed in parse_event(event, runtime.config, time.time()):
        if parsed.trigger is None:
            log.info(json.dumps({"event": "killswitch-ignored", "note": parsed.note}))
            results.append({"ignored": parsed.note})
            continue
        outcome = kill_switch.engage(parsed.trigger)
        results.append(outcome.as_dict())
        failed.extend(outcome.failed)
    if failed:
        raise RuntimeError(f"kill switch: {len(failed)} step(s) failed: {failed}")
    return {"results": results}
