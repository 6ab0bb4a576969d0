"""The promised share of wrong semantic hits: thresholds learnt from observations, intervals, and
the comparison that judges a cached answer against the model's."""

from __future__ import annotations

import random

import pytest

from functions.core.cache.calibration import Calibration, answers_agree, bin_of, min_samples, wilson
from functions.core.chat import Completion, ToolCall, Usage


def answer(text: str = "", calls=()) -> Completion:
    return Completion(text=text, finish_reason="stop", usage=Usage(5, 5), model="m", tool_calls=list(calls))


def test_no_observations_prove_nothing_so_nothing_is_served():
    assert Calibration().threshold(0.05, 0.8) is None
    assert wilson(0, 0) == (0.0, 1.0)


def test_a_few_clean_observations_are_not_enough_for_a_tight_bound():
    calibration = Calibration()
    for _ in range(50):
        calibration.observe(0.97, True)
    assert calibration.threshold(0.01, 0.8) is None       # 0 of 50 wrong: 450 clean ones prove 1%
    assert calibration.threshold(0.10, 0.8) == 0.97


def test_threshold_is_the_lowest_whose_pooled_hits_keep_the_bound():
    calibration = Calibration()
    for _ in range(400):
        calibration.observe(0.98, True)
    for _ in range(100):  # at 0.90 half are wrong: pooled down to there, the bound breaks
        calibration.observe(0.90, True)
        calibration.observe(0.90, False)
    for _ in range(100):
        calibration.observe(0.95, True)
    assert calibration.threshold(0.05, 0.8) == 0.95
    assert calibration.threshold(0.05, 0.96) == 0.98       # the floor cuts the search


def test_measured_interval_holds_the_true_rate():
    rng = random.Random(3)
    calibration = Calibration()
    for _ in range(2000):
        calibration.observe(0.95, rng.random() >= 0.03)
    measured = calibration.measured(0.95)
    assert measured.samples == 2000 and measured.low < 0.03 < measured.high
    assert calibration.measured(0.99).samples == 0


def test_the_learnt_threshold_keeps_the_promise_on_a_known_stream():
    """A stream where the chance of a wrong answer falls with similarity: learn on one half, check
    the served wrong share on the other stays within the bound."""
    rng = random.Random(11)

    def draw():
        similarity = rng.uniform(0.80, 1.0)
        return similarity, rng.random() < max(0.0, (0.97 - similarity) * 3)  # wrong above 0.97: never

    calibration = Calibration()
    for _ in range(5000):
        similarity, wrong = draw()
        calibration.observe(similarity, not wrong)
    threshold = calibration.threshold(0.02, 0.8)
    served = [wrong for similarity, wrong in (draw() for _ in range(5000)) if similarity >= threshold]
    assert served and sum(served) / len(served) <= 0.02
    assert threshold < 0.97  # it gives up some certainty for hits, as the bound allows


def test_merge_and_bins():
    a, b = Calibration(), Calibration()
    a.observe(0.955, True)
    b.observe(0.955, False)
    a.merge(b)
    assert a.right == {bin_of(0.955): 1.0} and a.wrong == {bin_of(0.955): 1.0} and a.samples == 2
    assert bin_of(0.955) == 191


@pytest.mark.parametrize("cached, fresh, agree", [
    ("Paris.", "paris", True),                                  # case and punctuation
    ("42", "43", False),                                        # short answers must be equal
    ("Yes", "No", False),
])
def test_short_answers_are_compared_exactly(cached, fresh, agree):
    assert answers_agree(answer(cached), answer(fresh), lambda a, b: 1.0, 0.9) is agree


def test_free_text_is_compared_by_embedding():
    long_a = "To reset your password open settings, choose security and follow the link we email you."
    long_b = "Open the settings page, pick security, then follow the emailed link to set a new password."
    assert answers_agree(answer(long_a), answer(long_b), lambda a, b: 0.93, 0.9)
    assert not answers_agree(answer(long_a), answer(long_b), lambda a, b: 0.70, 0.9)
    assert not answers_agree(answer(long_a), answer(long_b), None, 0.9)


def test_tool_calls_must_match_as_json():
    one = answer(calls=[ToolCall("c1", "weather", '{"city": "Oslo", "unit": "c"}')])
    same = answer(calls=[ToolCall("c2", "weather", '{"unit": "c", "city": "Oslo"}')])
    other = answer(calls=[ToolCall("c3", "weather", '{"city": "Bergen", "unit": "c"}')])
    assert answers_agree(one, same, None, 0.9)
    assert not answers_agree(one, other, None, 0.9)
    assert not answers_agree(one, answer("Oslo is cold."), None, 0.9)


def test_config_takes_a_bound_or_a_threshold_and_names_both_when_given_both():
    from functions.core.errors import ConfigError
    from tests.support import make_config

    route = make_config({"routes": {"chat": {"cache": {"max-wrong-hit-rate": 0.01}}}}).routes["chat"].cache
    assert route.max_wrong_hit_rate == 0.01 and route.calibration_share == 0.02
    legacy = make_config({"routes": {"chat": {"cache": {"similarity-threshold": 0.93}}}}).routes["chat"].cache
    assert legacy.similarity_threshold == 0.93 and legacy.max_wrong_hit_rate is None
    with pytest.raises(ConfigError, match="similarity-threshold.*max-wrong-hit-rate"):
        make_config({"routes": {"chat": {"cache": {"max-wrong-hit-rate": 0.01, "similarity-threshold": 0.9}}}})
    with pytest.raises(ConfigError, match="max-wrong-hit-rate"):
        make_config({"routes": {"chat": {"cache": {"max-wrong-hit-rate": 0.6}}}})


def test_the_measured_rate_is_published_as_a_metric_per_route():
    import json

    from functions.adapters.emf_metrics import EmfMetrics

    lines: list[str] = []
    calibration = Calibration()
    for n in range(400):
        calibration.observe(0.97, n % 100 != 0)
    EmfMetrics(sink=lines.append).emit_cache_calibration("chat", calibration.measured(0.95))
    [line] = lines
    emitted = json.loads(line)
    assert emitted["Route"] == "chat" and emitted["CacheWrongHitRate"] == [0.01]
    assert emitted["CacheWrongHitRateLow"][0] < 0.01 < emitted["CacheWrongHitRateHigh"][0]
    assert emitted["CacheCalibrationSamples"] == [400]


def test_asking_after_every_observation_does_not_make_a_broken_promise_look_kept():
    """Candidates wrong 1.1% of the time, bound 1%: the route re-tests as observations come, as it
    does in production. A proof that holds only at one look passes by luck in ~10% of such routes'
    lives; the promise may fail in at most 5% of them."""
    rng = random.Random(5)
    broken, routes = 0, 400
    for _ in range(routes):
        calibration = Calibration()
        for n in range(4000):
            calibration.observe(0.97, rng.random() >= 0.011)
            if n % 5 == 4 and calibration.threshold(0.01, 0.8) is not None:
                broken += 1
                break
    assert broken <= 0.05 * routes


def test_clean_observations_needed_to_prove_a_bound():
    assert min_samples(0.01) == 450 and min_samples(0.05) == 88
    calibration = Calibration()
    for _ in range(449):
        calibration.observe(0.99, True)
    assert calibration.threshold(0.01, 0.8) is None
    calibration.observe(0.99, True)
    assert calibration.threshold(0.01, 0.8) == 0.99
