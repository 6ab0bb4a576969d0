"""Queued batch work in the promotion decision: the rule on hand-computed cases, then ``decide``.

The hand-built route: a replica serves 1000 prompt and 100 completion tokens/s and costs
0.001 USD/s; the interactive forecast is 100 prompt + 10 completion tokens/s, a load of 0.2
replicas. The backlog is 60,000 prompt + 6,000 completion tokens: 60 + 60 = 120 replica-seconds.
With ``reserved-share`` 0.5, candidates 0, 1 and 2 replicas leave 0, 0.3 and 0.8 replica units idle.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from functions.core.policy import RoutePolicyState, decide
from functions.core.batch import line_tokens, queued_work
from functions.core.policy.backlog import (BatchBacklog, backlog_from_items, backlog_pays, backlog_usd_per_s,
                                           material)
from functions.core.policy.cost_model import RouteEconomics, economics_for
from functions.core.policy.forecast import DemandForecast
from functions.core.ports import MinuteUsage
from tests.support import POLICY_TEST_ECONOMICS, make_config

NOW = 1_700_000_040.0
ECON = RouteEconomics(serverless_usd_per_prompt_token=0.2e-6, serverless_usd_per_completion_token=0.2e-6,
                      gpu_usd_per_s=0.001, prefill_tokens_per_s=1000.0, decode_tokens_per_s=100.0,
                      target_utilisation=0.8, warmup_s=120.0, max_replicas=2)
FORECAST = DemandForecast(rps=0.1, prompt_tps=100.0, completion_tps=10.0, burst_factors=np.ones(1), method="test")
CANDIDATES = np.arange(3, dtype=float)
BACKLOG = BatchBacklog(lines=100, prompt_tokens=60_000, completion_tokens=6_000, deadline_s=NOW + 3600,
                       other_path_usd=0.3, on_demand_usd=0.6, other_lines_per_s=None, reserved_share=0.5)


def _adjust(backlog: BatchBacklog = BACKLOG, hold_s: float = 600.0) -> np.ndarray:
    return backlog_usd_per_s(ECON, CANDIDATES, FORECAST, backlog, NOW, hold_s)


def test_a_backlog_that_fits_in_the_idle_capacity_costs_nothing_more():
    # on its other path the backlog costs 0.3 USD, 0.0005 USD/s over the 600 s hold; 0.3 and 0.8
    # idle units drain its 120 replica-seconds within the hold
    assert _adjust() == pytest.approx([0.0005, 0.0, 0.0])


def test_a_backlog_larger_than_the_idle_capacity_leaves_the_rest_to_its_other_path():
    # in 100 s: 30 and 80 of 120 replica-seconds drain; 0.3 USD x 90/120 and x 40/120 over 100 s are left
    assert _adjust(hold_s=100.0) == pytest.approx([0.003, 0.00225, 0.001])


def test_busy_replicas_have_no_idle_capacity_for_the_backlog():
    busy = DemandForecast(rps=1.0, prompt_tps=1000.0, completion_tps=100.0, burst_factors=np.ones(1), method="t")
    # a load of 2 replicas: 1 and 2 replicas at share 0.5 have nothing idle
    assert backlog_usd_per_s(ECON, CANDIDATES, busy, BACKLOG, NOW, 600.0) == pytest.approx([0.0005] * 3)


def test_idle_capacity_is_averaged_over_the_burst_scenarios():
    bursty = dataclasses.replace(FORECAST, burst_factors=np.array([0.0, 4.0]))
    # loads 0 and 0.8: 1 replica leaves 0.5 or nothing idle (0.25 on average: 25 replica-seconds in
    # 100 s), 2 replicas 1.0 or 0.2 (0.6: 60 replica-seconds)
    expected = [0.003, 0.3 * 95 / 120 / 100, 0.3 * 60 / 120 / 100]
    assert backlog_usd_per_s(ECON, CANDIDATES, bursty, BACKLOG, NOW, 100.0) == pytest.approx(expected)


def test_a_deadline_at_risk_charges_the_work_that_would_miss():
    # the other paths run 0.01 lines/s: 36 of 100 lines (43.2 replica-seconds) in the hour left;
    # with 0 replicas 76.8 replica-seconds miss: 0.6 x 76.8/120 / 600 = 0.00064 USD/s more
    slow = dataclasses.replace(BACKLOG, other_lines_per_s=0.01)
    assert _adjust(slow) == pytest.approx([0.0005 + 0.00064, 0.0, 0.0])


def test_a_deadline_inside_the_hold_limits_the_drain_and_charges_what_still_misses():
    # 100 s left: idle 0.3 and 0.8 drain 30 and 80; the other paths 1.2; misses 118.8, 88.8, 38.8
    near = dataclasses.replace(BACKLOG, deadline_s=NOW + 100, other_lines_per_s=0.01)
    elsewhere = 0.3 * np.array([120, 90, 40]) / 120 / 600
    missed = 0.6 * np.array([118.8, 88.8, 38.8]) / 120 / 600
    assert _adjust(near) == pytest.approx(elsewhere + missed)


def test_a_past_deadline_or_empty_backlog_favours_no_count():
    assert _adjust(dataclasses.replace(BACKLOG, deadline_s=NOW - 1)) == pytest.approx([0.0005] * 3)
    assert _adjust(dataclasses.replace(BACKLOG, lines=0)) == pytest.approx([0.0, 0.0, 0.0])


def test_the_backlog_starts_an_episode_only_when_it_pays_for_a_replica_alone():
    # 0.0005 USD/s on its other path; a replica (0.001 USD/s) drains all of it: not worth it alone
    assert not backlog_pays(ECON, _adjust())
    # ten times the price: 0.005 USD/s saved by a 0.001 USD/s replica
    assert backlog_pays(ECON, _adjust(dataclasses.replace(BACKLOG, other_path_usd=3.0)))


# -- from the batch store's items ---------------------------------------------------------


@pytest.fixture
def config():
    return make_config(POLICY_TEST_ECONOMICS)


def _item(lines=1000, done=0, deadline_s=NOW + 86_400, prompt=800, completion=200):
    return {"lines": lines, "done": done, "deadline_s": deadline_s, "prompt_tokens": lines * prompt,
            "completion_tokens": lines * completion}


def test_backlog_from_items_prorates_what_is_left_and_prices_it_on_bedrock_batch(config):
    econ = economics_for("chat", config.routes["chat"], config)
    backlog = backlog_from_items("chat", config, econ, [_item(done=400), _item(deadline_s=NOW + 3600),
                                                        _item(deadline_s=NOW - 1), _item(done=1000)], NOW)
    assert backlog.lines == 1600 and backlog.deadline_s == NOW + 3600
    assert backlog.prompt_tokens == pytest.approx(1600 * 800)
    assert backlog.completion_tokens == pytest.approx(1600 * 200)
    # 1.6 Mtok at the batch price (0.11 USD/Mtok) and on-demand (0.22)
    assert backlog.other_path_usd == pytest.approx(0.176)
    assert backlog.on_demand_usd == pytest.approx(0.352)
    assert backlog.other_lines_per_s is None  # a Bedrock job takes them all
    assert backlog_from_items("chat", config, econ, [_item(done=1000)], NOW) is None


def test_a_backlog_under_bedrocks_minimum_is_priced_on_demand_at_the_worker_throttle(config):
    econ = economics_for("chat", config.routes["chat"], config)
    backlog = backlog_from_items("chat", config, econ, [_item(lines=50)], NOW)
    assert backlog.other_path_usd == pytest.approx(backlog.on_demand_usd)
    in_flight = config.batch.max_workers * config.batch.line_concurrency
    assert backlog.other_lines_per_s == pytest.approx(in_flight / float(econ.capacity.duration_s(800, 200)))


def test_line_tokens_estimates_the_prompt_and_reads_the_asked_completion(config):
    route = config.routes["chat"]
    body = {"messages": [{"role": "user", "content": "x" * 400}]}
    prompt, completion = line_tokens(body, route)
    assert 100 <= prompt <= 115 and completion == route.default_max_tokens
    assert line_tokens({**body, "max_tokens": 64}, route)[1] == 64
    other = {"messages": [{"role": "user", "content": "y"}], "max_tokens": 10}
    work = queued_work([{**body, "model": "chat"}, {**other, "model": "chat"}, {**other, "model": "nope"}],
                       config.routes)
    assert work == {"chat": (2, prompt + line_tokens(other, route)[0], completion + 10)}


# -- in the decision ------------------------------------------------------------------------


def _quiet_history(minutes=60, per_minute=10):
    first = int(NOW // 60) - minutes
    return [MinuteUsage(minute=first + t, scope="route:chat", requests=per_minute, prompt_tokens=per_minute * 1000,
                        completion_tokens=per_minute * 200) for t in range(minutes)]


def _on_demand_backlog(config, lines=20_000, **changes):
    econ = economics_for("chat", config.routes["chat"], config)
    backlog = backlog_from_items("chat", config, econ, [_item(lines=lines)], NOW)
    return dataclasses.replace(backlog, **{"other_path_usd": backlog.on_demand_usd, **changes})


def test_a_backlog_idle_replicas_can_drain_keeps_a_replica_quiet_traffic_would_release(config):
    # 10 req/min alone: serverless is cheaper, and the cooldown and hold have run out
    state = RoutePolicyState(replicas=1, promoted_at_s=NOW - 7200, low_since_s=NOW - 3600, low_target=0)
    alone, _ = decide("chat", config.routes["chat"], _quiet_history(), state, NOW, config)
    assert alone.replicas == 0 and "Lowering reserved replicas 1->0" in alone.reason
    # 20,000 lines on-demand (4.4 USD): each replica's idle half drains work worth more than it costs
    kept, _ = decide("chat", config.routes["chat"], _quiet_history(), state, NOW, config,
                     backlog=_on_demand_backlog(config))
    assert kept.replicas >= 1
    # 200 lines are not worth a replica's hold
    small, _ = decide("chat", config.routes["chat"], _quiet_history(), state, NOW, config,
                      backlog=_on_demand_backlog(config, lines=200))
    assert small.replicas == 0


def _targets(config, backlog, minutes=30):
    state, targets = RoutePolicyState(), []
    for minute in range(minutes):
        decision, state = decide("chat", config.routes["chat"], _quiet_history(per_minute=1), state,
                                 NOW + 60 * minute, config, backlog=backlog)
        targets.append(decision.replicas)
    return targets


def test_a_deadline_at_risk_promotes_a_quiet_route(config):
    # 20,000 lines due in 3 hours, free on their other path (so only the deadline speaks), which
    # runs 0.5 lines/s: 5,400 of them in time
    at_risk = _on_demand_backlog(config, deadline_s=NOW + 3 * 3600, other_lines_per_s=0.5, other_path_usd=0.0)
    assert max(_targets(config, at_risk)) >= 1
    assert max(_targets(config, dataclasses.replace(at_risk, other_lines_per_s=None))) == 0
    assert max(_targets(config, None)) == 0


def test_the_dev_loop_moves_real_deadlines_onto_its_clock(config):
    from functions.promotion.backlog_source import backlog_from_store

    class Store:
        def backlog(self, route):
            return [_item(deadline_s=1000.0 + 3600)] if route == "chat" else []

    # the loop's clock runs 5,000 s ahead of the real one (1,000): the hour left stays an hour
    source = backlog_from_store(Store(), config, real_clock=lambda: 1000.0)
    assert source("chat", 6000.0).deadline_s == 6000.0 + 3600
    assert backlog_from_store(Store(), config)("chat", 6000.0) is None  # read as real times: past
    assert source("summarize", 6000.0) is None


# -- what a replica really drains -------------------------------------------------------------


def test_a_replica_drains_nothing_while_it_warms():
    # a hold no longer than the warm-up: the replica a promotion would add never serves in it
    assert _adjust(hold_s=100.0)[1] < _adjust(hold_s=100.0)[0]
    assert backlog_usd_per_s(ECON, CANDIDATES, FORECAST, BACKLOG, NOW, 100.0, ready=0) == pytest.approx([0.003] * 3)
    # a replica serving already drains from now on, one added to it only after its warm-up
    assert backlog_usd_per_s(ECON, CANDIDATES, FORECAST, BACKLOG, NOW, 100.0, ready=1) == pytest.approx(
        [0.003, 0.00225, 0.00225])


def test_lines_the_held_replicas_drain_before_the_deadline_are_worth_no_more_replicas():
    # the replica the interactive traffic holds leaves 0.3 idle: 120 replica-seconds in 400 s,
    # well within the hour to the deadline; no count drains anything the held one would not
    held = backlog_usd_per_s(ECON, CANDIDATES, FORECAST, BACKLOG, NOW, 100.0, ready=1, held=1)
    assert held == pytest.approx([0.0, 0.0, 0.0])
    # with the worker giving up on reserved capacity 3,400 s before the deadline, 100 s are left
    # after the 100-s hold: the held replica drains 30 replica-seconds then; within the hold 1 and 2
    # ready replicas drain 30 and 80, so 90, 60 and 10 of the 120 are left to the other path
    margin = dataclasses.replace(BACKLOG, margin_s=3400.0)
    assert backlog_usd_per_s(ECON, CANDIDATES, FORECAST, margin, NOW, 100.0, ready=2, held=1) == pytest.approx(
        0.3 * np.array([90, 60, 10]) / 120 / 100)


def _busy_history(minutes=60, per_minute=240):
    first = int(NOW // 60) - minutes
    return [MinuteUsage(minute=first + t, scope="route:chat", requests=per_minute, prompt_tokens=per_minute * 1000,
                        completion_tokens=per_minute * 200) for t in range(minutes)]


def test_a_replica_whose_idle_share_is_not_needed_is_not_held_for_the_backlog(config):
    # steady traffic that pays for one replica, which has served for hours: its idle half drains the
    # 20,000 lines long before the deadline, so a second replica for them saves nothing
    state = RoutePolicyState(replicas=1, promoted_at_s=NOW - 7200)
    alone, _ = decide("chat", config.routes["chat"], _busy_history(), state, NOW, config)
    assert alone.replicas == 1, alone.reason
    with_backlog, _ = decide("chat", config.routes["chat"], _busy_history(), state, NOW, config,
                             backlog=_on_demand_backlog(config))
    assert with_backlog.replicas == 1, with_backlog.reason


def test_a_promotion_for_the_backlog_counts_the_warm_up_the_replica_drains_nothing_in():
    # a replica (0.0008 USD/s) leaves half its capacity to the lines; what it drains is worth
    # 0.00092 USD/s on-demand once it serves, but it serves only 480 of the 600-s hold (0.00073 USD/s)
    from tests.support import deep_merge

    config = make_config(deep_merge(POLICY_TEST_ECONOMICS, {"pricing": {"gpus": {"L40S": {"usd-per-second": 0.0008}}}}))
    econ = economics_for("chat", config.routes["chat"], config)
    backlog = _on_demand_backlog(config)
    rate = backlog.on_demand_usd / float(econ.load(backlog.prompt_tokens, backlog.completion_tokens))
    assert 0.4 * rate < econ.gpu_usd_per_s < 0.5 * rate
    assert max(_targets(config, backlog, minutes=120)) == 0


def test_a_credit_within_the_decisions_margin_moves_nothing():
    # a margin of 1 USD/s a replica: the 0.5 between 1 and 2 replicas is dropped, the 3 to 0 kept
    assert material(np.array([4.0, 1.0, 0.5]), 1, 1.0) == pytest.approx([4.0, 1.0, 1.0])
    # apart by two replicas, a credit must beat two replicas' margin
    assert material(np.array([3.0, 2.0, 1.5]), 0, 1.0) == pytest.approx([3.0, 2.0, 3.0])
