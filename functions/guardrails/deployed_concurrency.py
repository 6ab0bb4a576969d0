"""The kill-switch function's answer to the deploy-time custom resource that applies
``[gateway] reserved-concurrency`` (infra/gateway_concurrency.py; the rules are in
``functions.core.gateway_concurrency``).

Every request is answered, failures included: an unanswered custom resource holds the deploy for
an hour. A failed ``Delete`` is answered as done, so removing the setting or the stack never
gets stuck on it (the gateway then keeps its reservation; ``tierup killswitch status`` shows it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..adapters.cfn_response import send_cfn_response
from ..core.gateway_concurrency import FUNCTION_PROPERTY, RESERVED_PROPERTY
from .killswitch_executor import KillSwitch

log = logging.getLogger("tierup.killswitch")

Respond = Callable[[dict, str, str, str], None]


def _wanted(value) -> int | None:
    """CloudFormation passes every property as a string."""
    return None if value in (None, "", "none") else int(value)


def answer_deploy_request(event: dict, kill_switch: KillSwitch, respond: Respond = send_cfn_response) -> dict:
    request_type = event["RequestType"]
    properties = event.get("ResourceProperties") or {}
    physical_id = event.get("PhysicalResourceId") or \
        f"{properties.get(FUNCTION_PROPERTY, 'gateway')}:reserved-concurrency"
    try:
        planned = kill_switch.apply_deployed_concurrency(request_type, _wanted(properties.get(RESERVED_PROPERTY)))
        status, reason = "SUCCESS", planned.note
    except Exception as exc:  # answered either way: CloudFormation shows the reason in the stack's events
        log.exception("could not apply the gateway's reserved concurrency")
        status = "SUCCESS" if request_type == "Delete" else "FAILED"
        reason = f"the gateway's reserved concurrency was not applied: {exc}"
    respond(event, status, reason, physical_id)
    return {"deploy": request_type, "status": status, "reason": reason}
