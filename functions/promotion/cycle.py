"""One policy run: for every route, read its usage, decide, plan, apply, and record.

    usage aggregates ─> decide() ─> plan_route() ─(logged)─> executor ─> route table
                                                                     └─> journal (state, decision)

The same ``PolicyCycle`` runs in the policy Lambda (every minute, on EventBridge) and in
``tierup dev``'s policy loop (on an accelerated clock). Each decision is logged as one JSON line
and kept in the journal with its reason, projected savings, plan and outcome.

It never blocks on a GPU: a warm-up in progress simply leaves the route ``warming`` until a later
run finds the replicas ready.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

from ..core.config import TierupConfig
from ..core.policy import RoutePolicyState, decide
from ..core.ports import GpuControl, MinuteUsage, PolicyJournal, RouteTableStore, UsageAggregates
from ..core.promotion_plan import plan_route
from ..core.route_table import RouteEntry
from .executor import PlanResult, PromotionExecutor

log = logging.getLogger("tierup.policy")


def route_scope(route: str) -> str:
    return f"route:{route}"


@dataclass(frozen=True)
class RouteRun:
    """One route's share of a policy run: the decision, the plan made from it, and what happened."""

    route: str
    decision: dict
    plan: dict
    result: PlanResult

    def to_dict(self) -> dict:
        return {"route": self.route, "decision": self.decision, "plan": self.plan,
                "result": self.result.to_dict()}


class PolicyCycle:
    def __init__(self, config: TierupConfig, *, usage: UsageAggregates, table: RouteTableStore,
                 journal: PolicyJournal, gpu: GpuControl) -> None:
        self._config = config
        self._usage = usage
        self._table = table
        self._journal = journal
        self._executor = PromotionExecutor(config, gpu, table)

    def promotable_routes(self) -> list[str]:
        """Routes that have a GPU model; the others always stay on their start tier."""
        return [name for name, route in self._config.routes.items()
                if route.kind == "chat" and route.serverless_gpu]

    def history(self, route: str, now_s: float) -> list[MinuteUsage]:
        """Complete minutes only: the minute in progress would read as a drop in traffic."""
        now_minute = int(now_s // 60)
        since = now_minute - self._config.policy.history_minutes
        minutes = self._usage.minutes(route_scope(route), since, now_minute - 1)
        return sorted((m for m in minutes if since <= m.minute < now_minute), key=lambda m: m.minute)

    def run(self, now_s: float) -> list[RouteRun]:
        entries = self._table.read_routes()
        states = self._journal.load_states()
        runs = []
        for name in self.promotable_routes():
            route = self._config.routes[name]
            entry = entries.get(name) or RouteEntry.initial(name, route.start_tier, now_s)
            runs.append(self._run_route(name, entry, RoutePolicyState.from_dict(states.get(name)), now_s))
        return runs

    def _run_route(self, name: str, entry: RouteEntry, state: RoutePolicyState, now_s: float) -> RouteRun:
        route = self._config.routes[name]
        decision, new_state = decide(name, route, self.history(name, now_s), state, now_s, self._config)
        try:
            entry = self._executor.reconcile(entry, now_s)
        except Exception:  # the GPU control is unreachable: plan from the table as it stands
            log.exception("could not check the reserved replicas of route %s", name)
        plan = plan_route(entry, decision.replicas, now_s, self._config.policy.drain_grace_s)
        if not plan.is_empty:
            log.info(json.dumps({"event": "promotion_plan", "at_s": now_s, **plan.to_dict()}))
        result = self._executor.apply(plan, entry, now_s)
        self._journal.save_state(name, asdict(new_state))
        run = RouteRun(route=name, decision=asdict(decision), plan=plan.to_dict(), result=result)
        record = {"at_s": now_s, "reason": decision.reason, **run.to_dict()}
        self._journal.record_decision(name, now_s, record)
        log.info(json.dumps({"event": "policy_decision", **record}))
        return run
