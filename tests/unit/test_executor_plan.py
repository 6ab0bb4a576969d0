"""The promotion plan: warm before traffic moves, move traffic before capacity is released."""

from __future__ import annotations

import pytest

from functions.core.promotion_plan import PlanStep, plan_route
from functions.core.route_table import RouteEntry

NOW = 10_000.0
GRACE = 60.0


def _actions(plan):
    return [(step.action, step.replicas, step.not_before_s) for step in plan.steps]


def test_promotion_warms_then_waits_then_flips():
    plan = plan_route(RouteEntry.initial("chat", "serverless"), 2, NOW, GRACE)
    assert _actions(plan) == [("warm", 2, None), ("wait-ready", 2, None), ("flip-to-reserved", 2, None)]


def test_warming_route_is_not_warmed_again_only_waited_for():
    warming = RouteEntry("chat", target_replicas=2, warming_since_s=NOW - 30)
    assert _actions(plan_route(warming, 2, NOW, GRACE)) == [("wait-ready", 2, None),
                                                            ("flip-to-reserved", 2, None)]


def test_demotion_flips_traffic_first_and_releases_after_the_grace():
    reserved = RouteEntry("chat", tier="reserved", replicas=2, target_replicas=2, max_in_flight=64)
    plan = plan_route(reserved, 0, NOW, GRACE)
    assert _actions(plan) == [("flip-to-serverless", 0, None), ("release", 0, NOW + GRACE)]


def test_scale_down_shrinks_capacity_before_releasing_replicas():
    reserved = RouteEntry("chat", tier="reserved", replicas=3, target_replicas=3, max_in_flight=96)
    assert _actions(plan_route(reserved, 1, NOW, GRACE)) == [("flip-to-reserved", 1, None),
                                                             ("release", 1, NOW + GRACE)]


def test_draining_route_keeps_waiting_for_its_release_time():
    draining = RouteEntry("chat", target_replicas=2, release_at_s=NOW + 20)
    assert _actions(plan_route(draining, 0, NOW, GRACE)) == [("release", 0, NOW + 20)]


def test_unwanted_warm_up_is_released_at_once():
    warming = RouteEntry("chat", target_replicas=2, warming_since_s=NOW - 30)
    assert _actions(plan_route(warming, 0, NOW, GRACE)) == [("release", 0, None)]


def test_re_promotion_during_a_drain_reuses_the_warm_capacity():
    draining = RouteEntry("chat", target_replicas=2, release_at_s=NOW + 20)
    assert _actions(plan_route(draining, 2, NOW, GRACE)) == [("wait-ready", 2, None),
                                                             ("flip-to-reserved", 2, None)]


@pytest.mark.parametrize("entry, target", [
    (RouteEntry.initial("chat", "serverless"), 0),
    (RouteEntry("chat", tier="reserved", replicas=2, target_replicas=2, max_in_flight=64), 2),
])
def test_steady_route_needs_no_steps(entry, target):
    plan = plan_route(entry, target, NOW, GRACE)
    assert plan.is_empty and plan.to_dict() == {"route": "chat", "target_replicas": target, "steps": []}


def test_plan_is_plain_data():
    plan = plan_route(RouteEntry.initial("chat", "serverless"), 1, NOW, GRACE)
    assert plan.to_dict()["steps"][0] == {"action": "warm", "replicas": 1}
    assert plan.steps[0] == PlanStep("warm", 1)


def test_negative_target_is_refused():
    with pytest.raises(ValueError):
        plan_route(RouteEntry.initial("chat", "serverless"), -1, NOW, GRACE)
