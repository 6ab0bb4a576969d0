"""What the gateway function's reserved concurrency should be, given the kill-switch flags and
``[gateway] reserved-concurrency``: for the deploy-time custom resource (infra/gateway_concurrency.py)
and for ``tierup killswitch status``, which reports where the live value and the flags disagree.

A hard stop (an active ``hard-stop`` flag) holds the gateway at 0; without one the gateway runs at
the configured value (None: unreserved).

No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .killswitch import KillSwitchFlag

#: the CloudFormation custom resource the kill-switch function answers
RESOURCE_TYPE = "Custom::TierupGatewayConcurrency"
FUNCTION_PROPERTY = "FunctionName"
RESERVED_PROPERTY = "ReservedConcurrency"


def is_deploy_request(event: dict) -> bool:
    """A CloudFormation custom-resource request for the gateway's concurrency."""
    return event.get("ResourceType") == RESOURCE_TYPE and "RequestType" in event and "ResponseURL" in event


def hard_stops(flags: Iterable[KillSwitchFlag], now: float) -> list[KillSwitchFlag]:
    return sorted((f for f in flags if f.active(now) and f.action == "hard-stop"), key=lambda f: f.scope)


def _shown(value: int | None) -> str:
    return "unreserved" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class DeployedConcurrency:
    """What a deploy does to the gateway's concurrency: set ``value``, or leave it (``change`` False)."""

    change: bool
    value: int | None
    note: str


def plan_deployed_concurrency(request_type: str, wanted: int | None, current: int | None,
                              flags: Iterable[KillSwitchFlag], now: float) -> DeployedConcurrency:
    """``wanted`` is the configured value; a ``Delete`` (setting or stack removed) un-reserves."""
    target = None if request_type == "Delete" else wanted
    holders = hard_stops(flags, now)
    if holders:
        scopes = ", ".join(f.scope for f in holders)
        return DeployedConcurrency(False, current, f"a hard stop ({scopes}) holds the gateway at "
                                                   f"{_shown(current)}; its release restores {_shown(wanted)}")
    if current == target:
        return DeployedConcurrency(False, current, f"reserved concurrency is already {_shown(target)}")
    return DeployedConcurrency(True, target, f"reserved concurrency {_shown(current)} -> {_shown(target)}")


def concurrency_drift(flags: Iterable[KillSwitchFlag], function: str, current: int | None,
                      configured: int | None, now: float) -> list[str]:
    """Where the live concurrency disagrees with the flags and the config, each with its fix."""
    holders = hard_stops(flags, now)
    if holders and current != 0:
        scope = holders[0].scope
        return [f"a hard stop is engaged ({', '.join(f.scope for f in holders)}) but the gateway's reserved "
                f"concurrency is {_shown(current)}, so it is serving (changed by a deploy or by hand): "
                f"`tierup killswitch engage --scope {scope} --action hard-stop` stops it again"]
    if not holders and current == 0 and configured != 0:
        return ["the gateway's reserved concurrency is 0 (stopped) but no hard stop is engaged: "
                "`tierup killswitch release --scope global` restores it"]
    if not holders and current != configured:
        fix = (f"aws lambda delete-function-concurrency --function-name {function}" if configured is None else
               f"aws lambda put-function-concurrency --function-name {function} "
               f"--reserved-concurrent-executions {configured}")
        return [f"the gateway's reserved concurrency is {_shown(current)} but [gateway] reserved-concurrency "
                f"is {_shown(configured)}: `{fix}` sets it back"]
    return []
