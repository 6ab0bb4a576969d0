"""The promotion executor: applies a ``RoutePlan`` through the GPU control and the route table.

Each step is applied in order; a step that has to wait (replicas still warming, a drain grace not
over) stops the plan, and the next policy run re-plans from the route table and picks it up
where it stopped. The route table is written after every step that changes it, so a flip is
stored before the capacity behind it is released.

It never sleeps and never loops on a GPU: a policy run stays short however long warm-up takes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..core.config import TierupConfig
from ..core.ports import GpuControl, RouteTableStore
from ..core.promotion_plan import PlanStep, RoutePlan
from ..core.route_table import RouteEntry

log = logging.getLogger("tierup.promotion")

#: a warm-up not done after this many times the GPU type's warm-up (plus the slack) is asked again
WARMUP_RETRY_FACTOR = 3.0
WARMUP_RETRY_SLACK_S = 120.0


@dataclass(frozen=True)
class PlanResult:
    """What applying a plan did. ``outcome`` is one word, for logs, decisions and ``tierup status``."""

    route: str
    #: unchanged | warming | promoted | scaled | demoted | draining | released | failed
    outcome: str
    entry: RouteEntry
    applied: tuple[str, ...] = ()
    #: the step the plan stopped at (waiting), if any
    waiting_on: str | None = None
    ready_replicas: int | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        return {"route": self.route, "outcome": self.outcome, "applied": list(self.applied),
                "waiting_on": self.waiting_on, "ready_replicas": self.ready_replicas,
                "error": self.error, "phase": self.entry.phase}


class _Wait(Exception):
    """A step cannot complete yet; the plan stops here until the next run."""


class PromotionExecutor:
    def __init__(self, config: TierupConfig, gpu: GpuControl, table: RouteTableStore) -> None:
        self._config = config
        self._gpu = gpu
        self._table = table

    def requests_per_replica(self, route: str) -> int:
        """Concurrent requests one reserved replica of the route absorbs (from its GPU type)."""
        gpu = self._config.pricing.gpus.get(self._config.routes[route].gpu)
        return gpu.max_concurrent_requests if gpu else 1

    def warmup_s(self, route: str) -> float:
        gpu = self._config.pricing.gpus.get(self._config.routes[route].gpu)
        return gpu.warmup_s if gpu else 0.0

    def reconcile(self, entry: RouteEntry, now_s: float) -> RouteEntry:
        """Bring the route table in line with the GPUs before planning.

        * Replicas serving traffic that no longer answer (crashed, evicted, dropped by the kill
          switch) are taken out of the table at once, so the gateway stops counting on them; the
          route is then ``warming`` until they are back.
        * A warm-up that has taken far longer than the GPU type's warm-up is asked for again.
        """
        if entry.promoted:
            ready = self._gpu.ready_replicas(entry.route)
            if ready < entry.replicas:
                log.warning("route %s: %d of %d reserved replicas answer; moving traffic off the rest",
                            entry.route, ready, entry.replicas)
                lost = (self._flip_to_reserved(entry, ready, now_s) if ready
                        else self._flip_to_start_tier(entry, now_s))
                return self._store(lost.evolve(warming_since_s=now_s))
        if entry.warming_since_s is not None:
            give_up_after = WARMUP_RETRY_FACTOR * self.warmup_s(entry.route) + WARMUP_RETRY_SLACK_S
            if now_s - entry.warming_since_s > give_up_after:
                log.warning("route %s: warm-up of %d replicas overdue; asking again", entry.route,
                            entry.target_replicas)
                # Forgetting what was asked makes the planner issue the warm step again.
                return self._store(entry.evolve(target_replicas=entry.replicas, warming_since_s=None,
                                                updated_s=now_s))
        return entry

    def reassert_capacity(self, entry: RouteEntry) -> None:
        """Ask Modal again for the replicas the route table says the route holds.

        ``modal deploy`` resets every function's ``min_containers`` to the deployed 0, and Modal
        offers no way to read the live value back: so each run re-applies the target (the call is
        idempotent) instead of trusting that what was asked once still holds. Otherwise reserved
        replicas would quietly drain after a redeploy until a later health probe noticed.
        """
        if entry.target_replicas > 0:
            self._gpu.set_min_replicas(entry.route, entry.target_replicas)

    def apply(self, plan: RoutePlan, entry: RouteEntry, now_s: float) -> PlanResult:
        applied: list[str] = []
        ready: int | None = None
        before = entry
        try:
            for step in plan.steps:
                if step.action == "wait-ready":
                    ready = self._gpu.ready_replicas(plan.route)
                    if ready < step.replicas:
                        raise _Wait("wait-ready")
                    applied.append(step.action)
                    continue
                if step.action == "release" and step.not_before_s is not None and now_s < step.not_before_s:
                    if entry.release_at_s != step.not_before_s:
                        entry = self._store(entry.evolve(release_at_s=step.not_before_s, updated_s=now_s))
                    raise _Wait("release")
                entry = self._store(self._apply_step(step, entry, now_s))
                applied.append(step.action)
        except _Wait as wait:
            return PlanResult(plan.route, self._outcome(before, entry, waiting=str(wait)), entry,
                              tuple(applied), waiting_on=str(wait), ready_replicas=ready)
        except Exception as exc:  # one route's failure must not stop the others' plans
            log.exception("promotion step failed for route %s", plan.route)
            return PlanResult(plan.route, "failed", entry, tuple(applied), ready_replicas=ready,
                              error=f"{type(exc).__name__}: {exc}")
        return PlanResult(plan.route, self._outcome(before, entry, waiting=None), entry, tuple(applied),
                          ready_replicas=ready)

    def _apply_step(self, step: PlanStep, entry: RouteEntry, now_s: float) -> RouteEntry:
        route = entry.route
        if step.action == "warm":
            self._gpu.set_min_replicas(route, step.replicas)
            started = entry.warming_since_s if entry.warming_since_s is not None else now_s
            return entry.evolve(target_replicas=step.replicas, release_at_s=None, updated_s=now_s,
                                warming_since_s=started)
        if step.action == "flip-to-reserved":
            return self._flip_to_reserved(entry, step.replicas, now_s)
        if step.action == "flip-to-serverless":
            return self._flip_to_start_tier(entry, now_s)
        if step.action == "release":
            self._gpu.set_min_replicas(route, step.replicas)
            return entry.evolve(target_replicas=step.replicas, release_at_s=None, warming_since_s=None,
                                updated_s=now_s)
        raise ValueError(f"unknown plan step {step.action!r}")

    def _flip_to_reserved(self, entry: RouteEntry, replicas: int, now_s: float) -> RouteEntry:
        changed = entry.tier != "reserved"
        held = entry.release_at_s if replicas < entry.target_replicas else None
        return entry.evolve(tier="reserved", replicas=replicas, warming_since_s=None,
                            max_in_flight=replicas * self.requests_per_replica(entry.route),
                            since_s=now_s if changed else entry.since_s, release_at_s=held, updated_s=now_s)

    def _flip_to_start_tier(self, entry: RouteEntry, now_s: float) -> RouteEntry:
        start = self._config.routes[entry.route].start_tier
        return entry.evolve(tier=start, replicas=0, max_in_flight=0, warming_since_s=None,
                            since_s=now_s, updated_s=now_s)

    def _store(self, entry: RouteEntry) -> RouteEntry:
        self._table.write_route(entry)
        return entry

    @staticmethod
    def _outcome(before: RouteEntry, after: RouteEntry, waiting: str | None) -> str:
        if waiting == "wait-ready":
            return "warming"
        if waiting == "release":
            if before.promoted and not after.promoted:
                return "demoted"
            return "scaled" if after.replicas != before.replicas else "draining"
        if not before.promoted and after.promoted:
            return "promoted"
        if before.promoted and not after.promoted:
            return "demoted"
        if after.replicas != before.replicas:
            return "scaled"
        if after.target_replicas != before.target_replicas:
            return "released"
        return "unchanged"
