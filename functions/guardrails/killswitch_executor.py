"""Applies kill-switch plans: observe, plan (``functions.core.killswitch``), log the plan, apply
each step, record it on the flag and in the audit trail (DynamoDB and the log).

Ports that are absent here are skipped with a note, never faked: the gateway has no GPU or
Lambda control, so when a cap is reached it sets the flag and leaves drop-reserved and hard-stop
to the kill-switch function, which the cap-reached alert invokes through the topic.

Synchronous (boto3); the gateway runs it off the event loop.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..core.config import TierupConfig
from ..core.gateway_concurrency import DeployedConcurrency, plan_deployed_concurrency
from ..core.killswitch import (AuditEntry, KillSwitchPlan, KillSwitchTrigger, ObservedState, PlanStep,
                               plan_engage, plan_release)
from ..core.ports import ConcurrencyControl, GpuControl, GuardrailStore

log = logging.getLogger("tierup.killswitch")

#: what a step needs, named when it is skipped for want of it
_CONTROL = {"drop-reserved": "GPU control (a Modal token)",
            "stop-gateway": "Lambda control (TIERUP_GATEWAY_FUNCTION_NAME)",
            "restore-gateway": "Lambda control (TIERUP_GATEWAY_FUNCTION_NAME)"}


@dataclass
class Outcome:
    plan: KillSwitchPlan
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {**self.plan.as_dict(), "done": self.done, "skipped": self.skipped, "failed": self.failed}


class KillSwitch:
    def __init__(self, config: TierupConfig, store: GuardrailStore, *, gpu: GpuControl | None = None,
                 concurrency: ConcurrencyControl | None = None, gateway_function: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._store = store
        self._gpu = gpu
        self._concurrency = concurrency
        self._function = gateway_function
        self._clock = clock

    def observe(self) -> ObservedState:
        current = None
        function = self._function if self._concurrency is not None else None
        if function is not None:
            current = self._concurrency.reserved_concurrency(function)
        return ObservedState(flags={flag.scope: flag for flag in self._store.flags()},
                             gateway_function=function, gateway_concurrency=current,
                             configured_concurrency=self._config.gateway.reserved_concurrency)

    def plan_engage(self, trigger: KillSwitchTrigger) -> KillSwitchPlan:
        return plan_engage(trigger, self.observe(), self._config, self._clock())

    def plan_release(self, scope: str, reason: str, source: str) -> KillSwitchPlan:
        return plan_release(scope, self.observe(), reason, source, self._clock())

    def engage(self, trigger: KillSwitchTrigger) -> Outcome:
        return self.execute(self.plan_engage(trigger))

    def release(self, scope: str, reason: str, source: str) -> Outcome:
        return self.execute(self.plan_release(scope, reason, source))

    def release_expired(self, source: str) -> list[Outcome]:
        """Release every flag whose period is over (``auto-release-new-period``): the gateway has
        stopped honouring it already; this deletes it and restores the gateway's concurrency
        after a hard stop, which nothing else would."""
        now = self._clock()
        observed = self.observe()
        outcomes = []
        for flag in observed.flags.values():
            if not flag.active(now):
                plan = plan_release(flag.scope, observed, f"its budget period ended ({flag.budget})", source, now)
                outcomes.append(self.execute(plan))
                observed = self.observe()
        return outcomes

    def apply_deployed_concurrency(self, request_type: str, wanted: int | None) -> DeployedConcurrency:
        """A deploy's ``[gateway] reserved-concurrency`` (infra/gateway_concurrency.py): set unless a
        hard stop holds the gateway at 0 (its release restores the configured value)."""
        if self._concurrency is None or self._function is None:
            raise RuntimeError("no Lambda control here (TIERUP_GATEWAY_FUNCTION_NAME is unset)")
        observed = self.observe()
        planned = plan_deployed_concurrency(request_type, wanted, observed.gateway_concurrency,
                                            observed.flags.values(), self._clock())
        if planned.change:
            self._concurrency.set_reserved_concurrency(self._function, planned.value)
        log.info(json.dumps({"event": "deployed-concurrency", "function": self._function,
                             "request": request_type, "changed": planned.change, "note": planned.note}))
        return planned

    def execute(self, plan: KillSwitchPlan) -> Outcome:
        outcome = Outcome(plan)
        log.info(json.dumps({"event": "killswitch-plan", **plan.as_dict()}))
        for step in plan.steps:
            try:
                done = self._apply(plan, step)
            except Exception as exc:  # one failed step must not stop the others; the caller re-raises
                log.exception("kill-switch step failed: %s", step.detail)
                outcome.failed.append(f"{step.detail}: {exc}")
                self._audit(plan, step, f"FAILED {step.kind}", error=str(exc))
                continue
            if done:
                outcome.done.append(step.detail)
                self._audit(plan, step, step.kind)
            else:
                outcome.skipped.append(f"{step.detail}: this process has no {_CONTROL[step.kind]}")
        log.info(json.dumps({"event": "killswitch-outcome", **outcome.as_dict()}))
        return outcome

    def _apply(self, plan: KillSwitchPlan, step: PlanStep) -> bool:
        if step.kind == "engage-flag":
            assert plan.flag is not None
            self._store.put_flag(replace(plan.flag, applied=plan.flag.applied | {"flag"}))
        elif step.kind == "drop-reserved":
            if self._gpu is None:
                return False
            self._gpu.set_min_replicas(step.target.removeprefix("gpu:"), 0)
            self._store.add_applied(step.scope, step.target)
        elif step.kind == "stop-gateway":
            if self._concurrency is None:
                return False
            self._concurrency.set_reserved_concurrency(step.target.removeprefix("gateway:"), 0)
            self._store.add_applied(step.scope, step.target)
        elif step.kind == "release-flag":
            self._store.delete_flag(step.scope)
        elif step.kind == "restore-gateway":
            if self._concurrency is None:
                return False
            self._concurrency.set_reserved_concurrency(step.target.removeprefix("gateway:"), step.value)
        return True

    def _audit(self, plan: KillSwitchPlan, step: PlanStep, what: str, error: str | None = None) -> None:
        trigger = plan.trigger
        entry = AuditEntry(at=self._clock(), scope=step.scope, what=what, why=trigger.reason,
                           source=trigger.source,
                           detail={"step": step.detail, "budget": trigger.budget, "action": trigger.action,
                                   **({"error": error} if error else {})})
        log.info(json.dumps({"event": "killswitch-audit", "at": entry.at, "scope": entry.scope,
                             "what": entry.what, "why": entry.why, "source": entry.source, **entry.detail}))
        try:
            self._store.append_audit(entry)
        except Exception:  # the log line above is the audit of last resort
            log.exception("could not write the audit entry")
