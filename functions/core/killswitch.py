"""The kill switch, planned as plain data: what to change to stop spend in a scope, or to let it
resume, given what is engaged already.

Engaging a scope takes, cumulatively by the scope's action:

    refuse          a flag in the state table: every gateway instance refuses the scope's requests
    drop-reserved   reserved GPU capacity of the scope's routes to zero (Modal min_containers=0)
    hard-stop       the gateway function's reserved concurrency to zero (nothing runs at all)

Each step, once done, is recorded on the scope's flag (``applied``), so planning again from the
same trigger yields no steps: running the kill switch twice changes nothing more. Releasing
clears the flag and restores the gateway's concurrency when no other hard stop holds it; GPU
capacity is left for the traffic policy to raise again when demand warrants it.

No I/O here: an executor applies the plan (``functions/guardrails/killswitch_executor.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .config import TierupConfig
from .config.budgets import BUDGET_ACTIONS, BudgetAction

StepKind = Literal["engage-flag", "drop-reserved", "stop-gateway", "release-flag", "restore-gateway"]


def action_rank(action: str) -> int:
    return BUDGET_ACTIONS.index(action) if action in BUDGET_ACTIONS else -1


def valid_scope(scope: str) -> bool:
    kind, _, name = scope.partition(":")
    return scope == "global" or (kind in ("route", "tenant") and bool(name))


@dataclass(frozen=True, slots=True)
class KillSwitchFlag:
    """An engaged kill switch; the gateway refuses the scope's requests while it is active."""

    scope: str
    action: BudgetAction
    reason: str
    #: the budget that tripped it (``route:chat monthly cap of $500.00``) or ``manual``
    budget: str
    source: str
    engaged_at: float
    #: released automatically at this time (the start of the next budget period); None: held
    until: float | None = None
    #: ids of the steps already done: ``flag``, ``gpu:ROUTE``, ``gateway:FUNCTION``
    applied: frozenset[str] = frozenset()

    def active(self, now: float) -> bool:
        return self.until is None or now < self.until


@dataclass(frozen=True, slots=True)
class KillSwitchTrigger:
    """Why the kill switch is asked to act: a cap reached, an alarm, a budget, a person."""

    scope: str
    action: BudgetAction
    reason: str
    source: str
    budget: str = "manual"
    until: float | None = None


@dataclass(frozen=True, slots=True)
class ObservedState:
    flags: dict[str, KillSwitchFlag]
    #: the gateway Lambda function's name; None where it is not known (local, or not configured)
    gateway_function: str | None = None
    #: its reserved concurrency now (None: unreserved)
    gateway_concurrency: int | None = None
    #: reserved concurrency to restore on release (``[gateway] reserved-concurrency``)
    configured_concurrency: int | None = None


@dataclass(frozen=True, slots=True)
class PlanStep:
    kind: StepKind
    scope: str
    #: the step's id on the flag's ``applied`` set, or what it acts on
    target: str
    detail: str
    value: int | None = None


@dataclass(frozen=True, slots=True)
class KillSwitchPlan:
    trigger: KillSwitchTrigger
    steps: tuple[PlanStep, ...]
    #: what was not planned and why (already done, nothing to act on)
    notes: tuple[str, ...] = ()
    #: the flag as it will stand after an engage plan (None for release)
    flag: KillSwitchFlag | None = field(default=None)

    def as_dict(self) -> dict:
        """For logs and the audit trail."""
        return {"scope": self.trigger.scope, "action": self.trigger.action, "reason": self.trigger.reason,
                "source": self.trigger.source, "budget": self.trigger.budget,
                "steps": [{"kind": s.kind, "target": s.target, "detail": s.detail} for s in self.steps],
                "notes": list(self.notes)}


def routes_in_scope(config: TierupConfig, scope: str) -> list[str]:
    """Routes whose reserved GPUs a scope's drop-reserved action drops (tenants share GPUs: none)."""
    if scope == "global":
        return [name for name, route in config.routes.items() if route.serverless_gpu]
    kind, _, name = scope.partition(":")
    route = config.routes.get(name) if kind == "route" else None
    return [name] if route is not None and route.serverless_gpu else []


def plan_engage(trigger: KillSwitchTrigger, observed: ObservedState, config: TierupConfig,
                now: float) -> KillSwitchPlan:
    existing = observed.flags.get(trigger.scope)
    if existing is not None and not existing.active(now):
        existing = None
    steps: list[PlanStep] = []
    notes: list[str] = []
    applied = existing.applied if existing else frozenset()
    action = trigger.action
    if existing is not None and action_rank(existing.action) > action_rank(action):
        action = existing.action  # never weaken an engaged switch by engaging it again
    until = trigger.until
    if existing is not None and (existing.until is None or (until is not None and existing.until > until)):
        until = existing.until  # keep the longer hold
    flag = KillSwitchFlag(scope=trigger.scope, action=action, reason=trigger.reason, budget=trigger.budget,
                          source=trigger.source, engaged_at=existing.engaged_at if existing else now,
                          until=until, applied=applied)
    if existing is None or existing.action != action or existing.until != until:
        steps.append(PlanStep("engage-flag", trigger.scope, "flag",
                              f"refuse requests of {trigger.scope} ({trigger.reason})"))
    else:
        notes.append(f"{trigger.scope} is already engaged ({existing.action})")
    if action_rank(action) >= action_rank("drop-reserved"):
        routes = routes_in_scope(config, trigger.scope)
        if not routes:
            notes.append(f"{trigger.scope} has no GPU routes to drop")
        for route in routes:
            if f"gpu:{route}" in applied:
                notes.append(f"reserved GPUs of {route} already dropped")
            else:
                steps.append(PlanStep("drop-reserved", trigger.scope, f"gpu:{route}",
                                      f"set min_containers of route {route} to 0", value=0))
    if action_rank(action) >= action_rank("hard-stop"):
        function = observed.gateway_function
        if function is None:
            notes.append("the gateway function is not known here (TIERUP_GATEWAY_FUNCTION_NAME); "
                         "its concurrency is left as it is")
        elif observed.gateway_concurrency == 0:
            notes.append(f"{function} reserved concurrency is already 0")
        else:
            steps.append(PlanStep("stop-gateway", trigger.scope, f"gateway:{function}",
                                  f"set reserved concurrency of {function} to 0", value=0))
    return KillSwitchPlan(trigger=trigger, steps=tuple(steps), notes=tuple(notes), flag=flag)


def plan_release(scope: str, observed: ObservedState, reason: str, source: str, now: float) -> KillSwitchPlan:
    trigger = KillSwitchTrigger(scope=scope, action="refuse", reason=reason, source=source)
    existing = observed.flags.get(scope)
    steps: list[PlanStep] = []
    notes: list[str] = []
    if existing is None:
        notes.append(f"{scope} is not engaged")
    else:
        steps.append(PlanStep("release-flag", scope, "flag", f"accept requests of {scope} again"))
    others_hold_stop = any(f.scope != scope and f.active(now) and f.action == "hard-stop"
                           for f in observed.flags.values())
    function = observed.gateway_function
    stopped_by_us = existing is not None and f"gateway:{function}" in existing.applied
    if function is not None and observed.gateway_concurrency == 0 and (stopped_by_us or scope == "global"):
        if others_hold_stop:
            notes.append(f"{function} stays stopped: another scope's hard stop holds it")
        else:
            restore = observed.configured_concurrency
            steps.append(PlanStep("restore-gateway", scope, f"gateway:{function}",
                                  f"restore reserved concurrency of {function} to "
                                  f"{'unreserved' if restore is None else restore}", value=restore))
    return KillSwitchPlan(trigger=trigger, steps=tuple(steps), notes=tuple(notes))


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One thing the guardrails did (or were asked to do): what, why, when, and who asked."""

    at: float
    scope: str
    what: str
    why: str
    source: str
    detail: dict = field(default_factory=dict)
