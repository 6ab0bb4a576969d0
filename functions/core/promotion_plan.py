"""The promotion plan: what must happen, in order, to move a route to its target replica count.

A plan is plain data, computed from the policy's target and the route's current ``RouteEntry``,
logged, and only then applied by the executor (``functions.promotion.executor``). The order of
the steps is the safety argument:

* promotion warms first and moves traffic last: ``warm N`` -> ``wait-ready N`` -> ``flip-to-reserved N``
  (``wait-ready`` stops the plan while replicas are still starting; the next policy run resumes
  it, so a run never blocks for the minutes a GPU takes to start);
* demotion moves traffic first and releases capacity last: ``flip-to-serverless`` ->
  ``release 0`` not before a drain grace, so requests in flight on reserved can finish;
* scaling down shrinks the capacity the gateway counts on first, then releases the extra replicas.

No I/O and no clock here: ``now_s`` is passed in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from .route_table import RouteEntry

Action = Literal["warm", "wait-ready", "flip-to-reserved", "flip-to-serverless", "release"]


@dataclass(frozen=True)
class PlanStep:
    action: Action
    replicas: int = 0
    #: ``release`` only: the step waits (and the plan stops) until this time
    not_before_s: float | None = None


@dataclass(frozen=True)
class RoutePlan:
    route: str
    target_replicas: int
    steps: tuple[PlanStep, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.steps

    def to_dict(self) -> dict:
        return {"route": self.route, "target_replicas": self.target_replicas,
                "steps": [{k: v for k, v in asdict(step).items() if v is not None} for step in self.steps]}


def plan_route(entry: RouteEntry, target: int, now_s: float, drain_grace_s: float) -> RoutePlan:
    """The steps that take ``entry`` towards ``target`` reserved replicas.

    ``entry.replicas`` serve traffic now; ``entry.target_replicas`` is what the GPU control was
    last asked to keep warm. Any difference between the two is either warming (more asked than
    serving) or waiting to be released (capacity kept while traffic drains).
    """
    if target < 0:
        raise ValueError("target replicas cannot be negative")
    serving, asked = entry.replicas, entry.target_replicas
    steps: list[PlanStep] = []
    if target > serving:
        # Promote, or scale up: ask for the capacity, wait for it, and only then send traffic.
        if asked != target:
            steps.append(PlanStep("warm", target))
        steps += [PlanStep("wait-ready", target), PlanStep("flip-to-reserved", target)]
    elif target < serving:
        release_at = now_s + drain_grace_s
        steps.append(PlanStep("flip-to-reserved", target) if target else PlanStep("flip-to-serverless"))
        steps.append(PlanStep("release", target, not_before_s=release_at))
    elif asked != target:
        # Traffic is where it should be, but capacity beyond it is still held: either a warm-up
        # that is no longer wanted (nothing was routed to it, so release now) or a drain in progress.
        steps.append(PlanStep("release", target, not_before_s=entry.release_at_s))
    return RoutePlan(route=entry.route, target_replicas=target, steps=tuple(steps))
