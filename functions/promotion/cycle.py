"""One policy run: for every route, read its usage, decide, plan, apply, and record.

    route table ─> GPU time since the last run billed as spend (counters, aggregates, CostUSD)
    usage aggregates (+ queued batch work) ─> decide() ─> plan_route() ─(logged)─> executor ─> route table
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
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace

from ..core.config import TierupConfig
from ..core.killswitch import KillSwitchFlag, action_rank, routes_in_scope
from ..core.policy import LiveSignals, RoutePolicyState, decide
from ..core.policy.backlog import BatchBacklog
from ..core.policy.signals import live_from_minutes
from ..core.ports import GpuControl, MinuteUsage, PolicyJournal, RouteTableStore, UsageAggregates
from ..core.promotion_plan import plan_route
from ..core.route_table import RouteEntry
from .executor import PlanResult, PromotionExecutor
from .gpu_spend import GpuSpendMeter

log = logging.getLogger("tierup.policy")

#: seconds after a 10-second bucket ends before the policy reads it: the gateways' ledger flush
#: (``[quotas] flush-interval-s``, 1 s by default) plus its write
LIVE_FLUSH_LAG_S = 2.0


#: the routes a kill switch holds at zero reserved replicas now, each with the reason
HeldRoutes = Callable[[float], dict[str, str]]
#: a route's live signals at a time (None where the runner has none)
LiveSource = Callable[[str, float], LiveSignals | None]
#: a route's queued batch work at a time (``backlog_source.backlog_from_store``; None: none queued)
BacklogSource = Callable[[str, float], BatchBacklog | None]


def route_scope(route: str) -> str:
    return f"route:{route}"


def routes_held_by(flags: Iterable[KillSwitchFlag], config: TierupConfig, now_s: float) -> dict[str, str]:
    """Routes an engaged ``drop-reserved`` (or harder) kill switch keeps off reserved GPUs: the
    policy must not raise capacity the kill switch dropped until the switch is released."""
    held: dict[str, str] = {}
    for flag in flags:
        if flag.active(now_s) and action_rank(flag.action) >= action_rank("drop-reserved"):
            for route in routes_in_scope(config, flag.scope):
                held.setdefault(route, f"the {flag.scope} kill switch ({flag.reason})")
    return held


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
                 journal: PolicyJournal, gpu: GpuControl, held_routes: HeldRoutes | None = None,
                 gpu_spend: GpuSpendMeter | None = None, live: LiveSource | None = None,
                 backlog: BacklogSource | None = None) -> None:
        self._config = config
        self._backlog = backlog
        self._live = live or self.live_from_aggregates
        self._gpu_spend = gpu_spend
        self._held_routes = held_routes or (lambda now_s: {})
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

    def live_from_aggregates(self, route: str, now_s: float) -> LiveSignals | None:
        """The route's latest flushed 10-second bucket, read from the usage aggregates: the same
        items the history reads, no other table and no per-request write."""
        now_minute = int(now_s // 60)
        rows = self._usage.minutes(route_scope(route), now_minute - 1, now_minute)
        return live_from_minutes(rows, now_s, LIVE_FLUSH_LAG_S)

    def run(self, now_s: float) -> list[RouteRun]:
        entries = self._table.read_routes()
        if self._gpu_spend is not None:
            # before anything changes: the replicas in the table are the ones held since the last
            # run, and a cap this GPU time reaches engages its kill switch in time for this run
            self._gpu_spend.charge(entries)
        states = self._journal.load_states()
        held = self._held_routes(now_s)
        runs = []
        for name in self.promotable_routes():
            route = self._config.routes[name]
            entry = entries.get(name) or RouteEntry.initial(name, route.start_tier, now_s)
            state = RoutePolicyState.from_dict(states.get(name))
            runs.append(self._run_route(name, entry, state, now_s, held.get(name)))
        return runs

    def _run_route(self, name: str, entry: RouteEntry, state: RoutePolicyState, now_s: float,
                   held_by: str | None) -> RouteRun:
        route = self._config.routes[name]
        try:
            live = self._live(name, now_s)
        except Exception:  # leading indicators help; the minutes alone still decide soundly
            log.exception("could not read the live signals of route %s", name)
            live = None
        backlog = None
        if self._backlog is not None:
            try:
                backlog = self._backlog(name, now_s)
            except Exception:  # the queue only refines the decision; interactive usage still decides
                log.exception("could not read the batch backlog of route %s", name)
        decision, new_state = decide(name, route, self.history(name, now_s), state, now_s, self._config, live,
                                     backlog)
        if held_by is not None:
            decision = replace(decision, replicas=0, projected_savings_usd_per_hour=0.0,
                               reason=f"Held at 0 reserved replicas by {held_by}.")
            new_state = RoutePolicyState()
        try:
            entry = self._executor.reconcile(entry, now_s)
            if held_by is None:  # a kill switch's zero must stand; otherwise undo a redeploy's reset
                self._executor.reassert_capacity(entry)
        except Exception:  # the GPU control is unreachable: plan from the table as it stands
            log.exception("could not check the reserved replicas of route %s", name)
        plan = plan_route(entry, decision.replicas, now_s, self._config.policy.drain_grace_s)
        if not plan.is_empty:
            log.info(json.dumps({"event": "promotion_plan", "at_s": now_s, **plan.to_dict()}))
        result = self._executor.apply(plan, entry, now_s)
        self._journal.save_state(name, asdict(new_state))
        run = RouteRun(route=name, decision=asdict(decision), plan=plan.to_dict(), result=result)
        record = {"at_s": now_s, "reason": decision.reason, **run.to_dict()}
        if backlog is not None:
            record["batch_backlog"] = asdict(backlog)
        self._journal.record_decision(name, now_s, record)
        log.info(json.dumps({"event": "policy_decision", **record}))
        return run
