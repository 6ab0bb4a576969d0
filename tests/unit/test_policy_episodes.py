"""The ski-rental rule on adversarial episodes, and the policy's use of it and of live signals.

Route ``chat`` of the example config (see test_policy.py): Llama 3.1 8B on Bedrock at
0.22 USD/Mtok, an L40S at 0.000542 USD/s, 2 minutes of warm-up, 10 minutes of minimum hold,
5 minutes of cooldown; 1000 prompt + 200 completion tokens per request, one replica holds
~6.1 req/s at 80 % utilisation.
"""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest

from functions.core.policy import LiveSignals, RoutePolicyState, decide
from functions.core.policy.episodes import (MAX_EPISODES, break_even_s, buy_after_s, competitive_bound,
                                            episode_cost, predicted_length_s, remember)
from functions.core.ports import MinuteUsage
from tests.support import POLICY_TEST_ECONOMICS, deep_merge, make_config

PROMPT, COMPLETION = 1000, 200
NOW_S = 1_700_000_040.0 + 3 * 86400  # a whole minute
NOW_MINUTE = int(NOW_S // 60)


@pytest.fixture
def config():
    return make_config(POLICY_TEST_ECONOMICS)


def _rows(requests_by_minute: dict[int, float]) -> list[MinuteUsage]:
    """Usage rows for minutes given relative to now (-1 = the minute that just ended)."""
    return [MinuteUsage(minute=NOW_MINUTE + offset, scope="route:chat", requests=int(count),
                        prompt_tokens=int(count * PROMPT), completion_tokens=int(count * COMPLETION))
            for offset, count in sorted(requests_by_minute.items()) if count]


def _decide(config, rows, state=RoutePolicyState(), now_s=NOW_S, live=None):
    return decide("chat", config.routes["chat"], rows, state, now_s, config, live)


# --- the rule itself ----------------------------------------------------------------------------

@pytest.mark.parametrize("trust", [1.0, 0.5, 0.25])
def test_any_prediction_stays_within_the_competitive_bound(trust):
    """Adversarial lengths (just before and just after the buy, far beyond it) against predictions
    that are right, far too long and far too short: never above 1 + 1/λ times the optimum."""
    rng = random.Random(7)
    worst = 0.0
    for _ in range(2000):
        break_even = rng.uniform(10, 3000)
        for predicted in (rng.uniform(0, 10 * break_even), 0.0, 1e9, break_even, break_even * 0.99):
            buy_at = buy_after_s(break_even, predicted, trust)
            assert trust * break_even - 1e-9 <= buy_at <= break_even / trust + 1e-9
            for length in (buy_at - 1e-6, buy_at, buy_at * 1.0001, break_even, 50 * break_even,
                           rng.uniform(0, 5 * break_even)):
                length = max(length, 1e-6)
                optimum = min(length, break_even)
                worst = max(worst, episode_cost(length, buy_at, break_even) / optimum)
    assert worst <= competitive_bound(trust) + 1e-6
    assert worst > competitive_bound(trust) * 0.95, "the adversary reaches close to the bound"


@pytest.mark.parametrize("trust", [0.5, 0.25])
def test_a_right_prediction_is_near_optimal(trust):
    for break_even in (30.0, 300.0, 3000.0):
        for length in np.linspace(1, 20 * break_even, 500):
            cost = episode_cost(length, buy_after_s(break_even, length, trust), break_even)
            assert cost <= (1 + trust) * min(length, break_even) + 1e-6


def test_a_sequence_of_adversarial_episodes_stays_within_the_bound():
    """Episodes drawn to defeat the learned prediction (short after long, long after short) cost,
    in total, at most 1 + 1/λ times the optimum."""
    trust, break_even, history = 0.5, 300.0, ()
    paid = optimum = 0.0
    for index in range(200):
        predicted = predicted_length_s(history, 0.0, prior_s=600.0)
        buy_at = buy_after_s(break_even, predicted, trust)
        # the adversary ends the episode just after the buy when it bought, runs it long when it waited
        length = buy_at * 1.001 if index % 2 else 10 * break_even
        paid += episode_cost(length, buy_at, break_even)
        optimum += min(length, break_even)
        history = remember(history, length)
    assert paid <= competitive_bound(trust) * optimum


def test_prediction_is_learned_from_the_routes_own_episodes():
    assert predicted_length_s((), 0.0, prior_s=600.0) == 600.0, "the prior before any history"
    spikes_and_a_day = (120.0, 90.0, 150.0, 120.0, 86400.0)
    assert predicted_length_s(spikes_and_a_day, 0.0, prior_s=600.0) == 120.0
    # once an episode has outlived every spike, only the long ones predict it
    assert predicted_length_s(spikes_and_a_day, 200.0, prior_s=600.0) == 86400.0
    assert predicted_length_s((60.0,), 90.0, prior_s=600.0) == 90.0, "no evidence it lasts longer"
    assert len(remember(tuple(float(i) for i in range(40)), 1.0)) == MAX_EPISODES
    assert break_even_s(10.0, 0.0) == float("inf")


# --- the policy ---------------------------------------------------------------------------------

def test_short_episodes_learned_refuse_a_spike_that_long_ones_would_promote(config):
    """A 5-minute surge at 5 req/s (break-even ~9 min): a route whose episodes were 2-minute spikes
    stays serverless, one whose episodes last hours promotes (after λ x break-even)."""
    rows = _rows({-5: 300, -4: 300, -3: 300, -2: 300, -1: 300})
    spiky = RoutePolicyState(episodes=(120.0, 120.0, 90.0, 120.0))
    long_lived = RoutePolicyState(episodes=(7200.0, 10800.0, 5400.0))
    refused, _ = _decide(config, rows, spiky)
    promoted, _ = _decide(config, rows, long_lived)
    assert refused.replicas == 0 and "Staying serverless" in refused.reason
    assert promoted.replicas >= 1


def _with_scaledown_window(idle_s: float):
    return make_config(deep_merge(POLICY_TEST_ECONOMICS, {"pricing": {"gpus": {"L40S": {"idle-s": idle_s}}}}))


def test_the_promotion_break_even_counts_the_scale_down_window():
    """A 3-minute surge at 5 req/s on a route whose episodes last hours promotes after λ x the
    break-even. Its replicas are billed through the drain grace *and* Modal's scale-down window
    after the episode: with a 5-minute window the break-even is ~9 min (wait 4.5), without one ~6
    min (wait under 3)."""
    rows = _rows({-3: 300, -2: 300, -1: 300})
    long_lived = RoutePolicyState(episodes=(7200.0, 10800.0, 5400.0))
    waits, _ = _decide(_with_scaledown_window(300), rows, long_lived)
    promotes, _ = _decide(_with_scaledown_window(0), rows, long_lived)
    assert waits.replicas == 0 and "Staying serverless" in waits.reason
    assert promotes.replicas >= 1


def test_a_marginal_raise_waits_until_the_need_has_lasted_its_break_even():
    """3 warm replicas at 21.5 req/s: a 4th is ~11 % cheaper, but it is paid 2 minutes warming
    and 6 minutes of release tail, which one 10-minute hold does not earn back; it is added only
    once wanted, run after run, for the rest of that break-even. A burst that pays at once raises at once."""
    config = _with_scaledown_window(300)
    state = RoutePolicyState(replicas=3, promoted_at_s=NOW_S - 3600, hot_since_s=NOW_S - 3600,
                             hot_until_s=NOW_S - 60, episodes=(7200.0,))
    def steady(rps, minutes_later=0):  # the hour up to ``minutes_later`` minutes after NOW_S
        return _rows({m: rps * 60 for m in range(-60 + minutes_later, minutes_later)})

    first, waiting = _decide(config, steady(21.5), state)
    assert first.replicas == 3 and "release tail" in first.reason
    assert waiting.raise_since_s == NOW_S
    early, still = _decide(config, steady(21.5, 1), waiting, now_s=NOW_S + 60)
    assert early.replicas == 3 and still.raise_since_s == NOW_S, "the wait counts from when it began"
    later, raised = _decide(config, steady(21.5, 20), waiting, now_s=NOW_S + 20 * 60)
    assert later.replicas == 4 and raised.raise_since_s is None
    # a lull resets the wait
    quiet, reset = _decide(config, steady(15, 1), waiting, now_s=NOW_S + 60)
    assert quiet.replicas == 3 and reset.raise_since_s is None
    burst, _ = _decide(config, _rows({m: 30 * 60 for m in range(-60, 0)}), state)
    assert burst.replicas == 4


def test_bursts_inside_the_minute_are_priced_at_10_second_resolution(config):
    """5 req/s for ten minutes, which one replica holds on the minute's average; on a route whose
    gateways saw each minute's 300 requests arrive within one 10-second burst (30 req/s, beyond
    four replicas), a replica would absorb a fifth of them: it stays serverless."""
    long_lived = RoutePolicyState(episodes=(7200.0, 10800.0), hot_since_s=NOW_S - 3600, hot_until_s=NOW_S - 60)
    even = [dataclasses.replace(row, by_10s={j: [50, 50 * PROMPT, 50 * COMPLETION] for j in range(6)})
            for row in _rows({m: 300 for m in range(-10, 0)})]
    bursty = [dataclasses.replace(row, by_10s={2: [300, 300 * PROMPT, 300 * COMPLETION]})
              for row in _rows({m: 300 for m in range(-10, 0)})]
    steady, _ = _decide(config, even, long_lived)
    bursts, _ = _decide(config, bursty, long_lived)
    assert steady.replicas >= 1, steady.reason
    assert bursts.replicas == 0, bursts.reason


def test_a_two_minute_spike_does_not_promote_from_cold(config):
    """No history at all: the break-even rule alone keeps a 2-minute spike on serverless."""
    state = RoutePolicyState()
    targets = []
    series = [0] * 5 + [300, 300] + [0] * 20
    for t, _ in enumerate(series):
        rows = _rows({m: c for m, c in enumerate(series[:t])})
        decision, state = _decide(config, rows, state, now_s=NOW_S + 60 * t)
        targets.append(decision.replicas)
    assert not any(targets)
    assert state.episodes and state.episodes[-1] <= 180, "the spike is remembered as a short episode"


def test_episode_history_round_trips_through_json(config):
    state = RoutePolicyState(replicas=1, promoted_at_s=5.0, hot_since_s=1.0, hot_until_s=2.0,
                             episodes=(120.0, 3600.0), raise_since_s=3.0)
    back = RoutePolicyState.from_dict(json.loads(json.dumps(dataclasses.asdict(state))))
    assert back == state
    assert RoutePolicyState.from_dict({"replicas": 2, "unknown": 1}).episodes == ()


def test_a_burst_raises_to_the_needed_count_in_one_step(config):
    """A route serving 1 req/s for an hour; then 25 req/s for 3 minutes (needs 4 replicas)."""
    rows = _rows({**{m: 60 for m in range(-60, -3)}, -3: 1500, -2: 1500, -1: 1500})
    decision, _ = _decide(config, rows, RoutePolicyState(episodes=(7200.0,)))
    assert decision.replicas == 4, decision.reason


def test_cold_start_is_not_padded_with_empty_minutes(config):
    """3 minutes of history at 25 req/s: forecast at 25 req/s, not at 3/10 of it."""
    from functions.core.policy.forecast import activity_start

    rows = _rows({-3: 1500, -2: 1500, -1: 1500})
    decision, _ = _decide(config, rows, RoutePolicyState(episodes=(7200.0,)))
    assert decision.forecast_rps == pytest.approx(25.0, rel=0.05)
    assert decision.replicas == 4
    assert activity_start(rows, NOW_MINUTE - 10, NOW_MINUTE, 10) == NOW_MINUTE - 3
    # a route that was busy a few minutes before its latest traffic is not starting from cold
    busy = _rows({-12: 60, -3: 60})
    assert activity_start(busy, NOW_MINUTE - 10, NOW_MINUTE, 10) == NOW_MINUTE - 10


def test_a_ramp_peak_in_the_latest_minute_is_not_clipped(config):
    rows = _rows({**{m: 60 for m in range(-60, -1)}, -1: 600})
    decision, _ = _decide(config, rows, RoutePolicyState(episodes=(7200.0,)))
    assert decision.forecast_rps > (9 * 60 + 600) / 10 / 60 * 0.99


def test_raises_further_while_replicas_warm(config):
    """1 replica asked for 30 s ago and still warming; the load now needs 4: raise at once."""
    rows = _rows({m: 1500 for m in range(-10, 0)})
    warming = RoutePolicyState(replicas=1, promoted_at_s=NOW_S - 30, hot_since_s=NOW_S - 600,
                               hot_until_s=NOW_S - 60)
    decision, state = _decide(config, rows, warming)
    assert decision.replicas == 4 and state.promoted_at_s == NOW_S


def test_never_lowers_while_replicas_warm(config):
    warming = RoutePolicyState(replicas=4, promoted_at_s=NOW_S - 30)
    decision, _ = _decide(config, _rows({-1: 10}), warming)
    assert decision.replicas == 4 and "warm" in decision.reason


def test_live_signals_detect_a_burst_the_minutes_have_not_recorded(config):
    """A steady 2 req/s route; the last 10 s brought 240 requests (24 req/s) and a queue."""
    rows = _rows({m: 120 for m in range(-60, 0)})
    live = LiveSignals(at_s=NOW_S, in_flight=40, queued=12, recent_window_s=10.0, recent_requests=240,
                       recent_prompt_tokens=240 * PROMPT, recent_completion_tokens=240 * COMPLETION)
    quiet, _ = _decide(config, rows, RoutePolicyState(episodes=(7200.0,)))
    burst, _ = _decide(config, rows, RoutePolicyState(episodes=(7200.0,), hot_since_s=NOW_S - 600,
                                                      hot_until_s=NOW_S - 60), live=live)
    assert quiet.replicas == 0
    assert burst.replicas == 4 and "live burst" in burst.reason


def test_live_signals_within_the_noise_change_nothing(config):
    rows = _rows({m: 120 for m in range(-60, 0)})
    live = LiveSignals(at_s=NOW_S, in_flight=3, recent_window_s=10.0, recent_requests=25,
                       recent_prompt_tokens=25 * PROMPT, recent_completion_tokens=25 * COMPLETION)
    with_live, _ = _decide(config, rows, live=live)
    without, _ = _decide(config, rows)
    assert with_live.forecast_rps == without.forecast_rps


def test_a_first_minute_after_idle_is_read_for_the_part_it_filled(config):
    """Traffic began 30 s before the minute ended: without the gateways' 10-second buckets the
    policy waits for a whole minute; with them it reads the rate over the 30 s it covered."""
    half = 750  # 25 req/s for 30 s
    plain = _rows({-1: half})
    bucketed = [dataclasses.replace(plain[0], by_10s={3: [250, 250 * PROMPT, 250 * COMPLETION],
                                                      4: [250, 0, 0], 5: [250, 0, 0]})]
    waiting, _ = _decide(config, plain, RoutePolicyState(episodes=(7200.0,)))
    read, _ = _decide(config, bucketed, RoutePolicyState(episodes=(7200.0,)))
    assert waiting.replicas == 0 and "began within the last minute" in waiting.reason
    assert read.forecast_rps == pytest.approx(25.0)


def test_live_scatter_on_a_quiet_route_is_not_a_burst(config):
    """0.6 req/s forecast, 6 requests expected in 10 s: 10 is 1.7 x but within Poisson scatter
    (1.6 standard deviations), which a policy run every few seconds would meet hourly; 30 is a burst."""
    rows = _rows({m: 36 for m in range(-60, 0)})
    base, _ = _decide(config, rows)

    def with_count(count):
        live = LiveSignals(at_s=NOW_S, recent_window_s=10.0, recent_requests=count,
                           recent_prompt_tokens=count * PROMPT, recent_completion_tokens=count * COMPLETION)
        return _decide(config, rows, live=live)[0].forecast_rps

    assert base.forecast_rps == pytest.approx(0.6)
    assert with_count(10) == base.forecast_rps
    assert with_count(30) == pytest.approx(3.0)
