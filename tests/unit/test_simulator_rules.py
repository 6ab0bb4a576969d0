"""Each rule of the simulator on tiny hand-built traces, against hand-computed values."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from functions.core.gpu_capacity import GPUS, ReplicaCapacity, decode_s_per_step, prefill_s_per_token
from functions.core.policy.cost_model import RouteEconomics
from functions.core.policy.hindsight import hindsight_targets
from functions.core.policy.schedule import MinuteDemand
from tierup.simulate.buckets import Buckets, BucketBuilder
from tierup.simulate.engine import Rules, fleet, simulate

#: $1/s per replica (of which $0.25 CPU and memory), $1 per 1,000 serverless tokens, 20 s warm-up,
#: 30 s release tail, 4 requests at once per replica
ECON = RouteEconomics(serverless_usd_per_prompt_token=0.001, serverless_usd_per_completion_token=0.001,
                      gpu_usd_per_s=1.0, prefill_tokens_per_s=1e6, decode_tokens_per_s=1e6,
                      target_utilisation=1.0, warmup_s=20.0, max_replicas=4, container_usd_per_s=0.25,
                      max_concurrent=4, release_tail_s=30.0)
ONLY = Rules(throttling=False)


def _buckets(requests, *, tokens_per_request=10.0, work_per_request=0.0, in_flight=0.0) -> Buckets:
    """Per 10-s bucket: requests (each ``tokens_per_request`` prompt tokens), GPU work and mean in flight."""
    requests = np.asarray(requests, dtype=float)
    return Buckets(bucket_s=10.0, start_s=0.0, requests=requests, prompt_tokens=requests * tokens_per_request,
                   completion_tokens=np.zeros_like(requests), work_s=requests * work_per_request,
                   flat_work_s=requests * work_per_request, busy_s=np.full_like(requests, in_flight * 10.0))


def test_fleet_warms_before_serving_and_bills_the_release_tail():
    paid, ready, _ = fleet(np.array([0, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1]), warmup_steps=2, tail_steps=3)
    assert ready.tolist() == [0, 0, 0, 2, 2, 1, 1, 1, 1, 1, 1, 1]
    # one replica released at bucket 5 is paid through buckets 5, 6 and 7
    assert paid[:12].tolist() == [0, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1]


def test_a_lowering_cancels_a_replica_still_warming_first():
    paid, ready, _ = fleet(np.array([1, 1, 1, 2, 1, 1, 1, 1]), warmup_steps=2, tail_steps=0)
    assert ready.tolist() == [0, 0, 1, 1, 1, 1, 1, 1]  # the second never served
    assert paid[:8].tolist() == [1, 1, 1, 2, 1, 1, 1, 1]


def test_release_tail_is_billed_and_the_old_rules_forgot_it():
    buckets = _buckets([0] * 8)
    targets = np.array([1, 1, 0, 0, 0, 0, 0, 0])
    # paid 2 buckets, then the 30-s tail: 5 buckets x 10 s x $1
    assert simulate(buckets, ECON, targets, ONLY).gpu_usd == pytest.approx(50.0)
    assert simulate(buckets, ECON, targets, replace(ONLY, release_tail=False)).gpu_usd == pytest.approx(20.0)


def test_a_tail_past_the_end_of_the_trace_is_billed_but_a_held_replica_is_not():
    buckets = _buckets([0] * 3)
    released = simulate(buckets, ECON, np.array([1, 1, 0]), ONLY)
    assert released.gpu_usd == pytest.approx(50.0)
    assert released.cost_by_bucket.tolist() == pytest.approx([10.0, 10.0, 30.0])  # the tail lands last
    assert simulate(buckets, ECON, np.array([1, 1, 1]), ONLY).gpu_usd == pytest.approx(30.0)


def test_cpu_and_memory_are_billed_beside_the_gpu():
    buckets = _buckets([0] * 4)
    targets = np.ones(4, dtype=np.int64)
    assert simulate(buckets, ECON, targets, ONLY).gpu_usd == pytest.approx(40.0)
    assert simulate(buckets, ECON, targets, replace(ONLY, cpu_memory=False)).gpu_usd == pytest.approx(30.0)


def test_requests_reach_a_replica_only_once_it_is_ready_and_are_cold_if_routed_earlier():
    buckets = _buckets([3, 3, 3, 3])  # 3 requests per bucket, 30 tokens = $0.03 each bucket on serverless
    targets = np.ones(4, dtype=np.int64)
    warm = simulate(buckets, ECON, targets, ONLY)
    assert warm.cold_requests == 0
    assert warm.reserved_requests == 6 and warm.spilled_requests == 0 and warm.serverless_requests == 6
    assert warm.serverless_usd == pytest.approx(0.06)
    naive = simulate(buckets, ECON, targets, ONLY, flip="immediately")
    assert naive.cold_requests == 6 and naive.reserved_requests == 12


def test_always_reserved_starts_cold_unless_the_old_rules_warm_it_for_free():
    buckets = _buckets([3, 3, 3, 3])
    targets = np.ones(4, dtype=np.int64)
    assert simulate(buckets, ECON, targets, ONLY, starts_warm=True).reserved_requests == 6
    old = replace(ONLY, cold_start=False)
    assert simulate(buckets, ECON, targets, old, starts_warm=True).reserved_requests == 12


def test_a_replica_admits_max_concurrent_requests_and_the_rest_spill():
    # 8 in flight on average against 4 admitted: half of the 10 requests spill
    buckets = _buckets([0, 0, 10, 10], in_flight=8.0)
    targets = np.ones(4, dtype=np.int64)
    outcome = simulate(buckets, ECON, targets, ONLY)
    assert outcome.reserved_requests == pytest.approx(10.0) and outcome.spilled_requests == pytest.approx(10.0)
    unlimited = simulate(buckets, ECON, targets, replace(ONLY, concurrency=False))
    assert unlimited.reserved_requests == pytest.approx(20.0)


def test_throughput_within_a_bucket_caps_what_a_replica_serves():
    # 20 s of GPU work in a 10-s bucket: one replica serves half
    buckets = _buckets([0, 0, 10, 0, 0, 0], work_per_request=2.0)
    outcome = simulate(buckets, ECON, np.ones(6, dtype=np.int64), ONLY)
    assert outcome.reserved_requests == pytest.approx(5.0)
    # the old rules price whole minutes: 20 s of work in a 60-s minute fits
    old = Rules.old()
    assert simulate(buckets, ECON, np.array([1, 1, 1, 1, 1, 1]), old, starts_warm=True).spilled_requests == 0


def test_context_cost_prefill_and_decode_against_the_formulas():
    capacity = ReplicaCapacity(prefill_tokens_per_s=1000.0, decode_tokens_per_s=100.0, max_concurrent=8)
    gpu = GPUS["L40S"]
    prefill_ratio = float(prefill_s_per_token(gpu, 8000) / prefill_s_per_token(gpu, 1000))
    decode_ratio = float(decode_s_per_step(gpu, 8, 8000) / decode_s_per_step(gpu, 8, 1000))
    # 8,000-token prompt, no answer: 8 s at the reference rate, times the attention factor
    assert capacity.work_s(8000, 0) == pytest.approx(8.0 * prefill_ratio)
    # a 1,000-token answer at a 8,000-token context: 10 s, times the KV-read factor
    assert capacity.work_s(7500, 1000) - capacity.work_s(7500, 0) == pytest.approx(10.0 * decode_ratio)
    assert prefill_ratio > 1.1 and decode_ratio > 1.4
    flat = ReplicaCapacity(1000.0, 100.0, 8, context_weight=0.0)
    assert flat.work_s(8000, 1000) == pytest.approx(18.0)


def test_the_busy_time_of_a_request_spreads_over_the_buckets_it_spans():
    # decode 1 token/s, one at a time, no context model: 20 answer tokens keep a request 20 s in flight
    capacity = ReplicaCapacity(1e12, 1.0, 1, context_weight=0.0)
    builder = BucketBuilder(capacity, 0.0, 60.0)
    builder.add(5.0, 0.0, 20.0)
    buckets = builder.build()
    assert buckets.busy_s[:4].tolist() == pytest.approx([5.0, 10.0, 5.0, 0.0])
    assert buckets.requests.sum() == 1 and buckets.work_s.sum() == pytest.approx(20.0)


def test_serverless_throttles_past_its_quota_failing_or_delaying():
    econ = replace(ECON, serverless_tokens_per_minute=1000.0)
    # minute 0: 30 requests of 50 tokens = 1,500 tokens to serverless; minute 1: nothing
    buckets = _buckets([30, 0, 0, 0, 0, 0] + [0] * 6, tokens_per_request=50.0)
    none = np.zeros(12, dtype=np.int64)
    failed = simulate(buckets, econ, none, Rules(throttle="fail"))
    assert failed.throttled_requests == pytest.approx(10.0)  # a third over the quota
    assert failed.serverless_usd == pytest.approx(1.0)  # only what went through is billed
    delayed = simulate(buckets, econ, none, Rules(throttle="delay"))
    assert delayed.throttled_requests == pytest.approx(10.0) and delayed.serverless_usd == pytest.approx(1.5)
    assert simulate(buckets, econ, none, replace(Rules(), throttling=False)).throttled_requests == 0
    # each minute is throttled on its own: two busy minutes throttle a third of each
    busy = _buckets([30, 0, 0, 0, 0, 0, 30, 0, 0, 0, 0, 0], tokens_per_request=50.0)
    assert simulate(busy, econ, none, Rules(throttle="delay")).throttled_requests == pytest.approx(20.0)
    assert simulate(busy, econ, none, Rules(throttle="fail")).serverless_usd == pytest.approx(2.0)


def test_hindsight_pays_the_release_tail_so_it_bridges_a_short_dip():
    econ = replace(ECON, warmup_s=60.0)
    demand = MinuteDemand(requests=np.ones(9), prompt_tokens=np.ones(9), completion_tokens=np.zeros(9))
    # a minute on serverless costs $1,000 with no replica serving, $0 with one; a replica-minute $60;
    # minutes 3-5 are a dip. A release saves the minutes until the raise that warms for minute 6.
    spill = np.array([[1000.0, 0.0]] * 9)
    spill[3:6] = 0.0
    assert hindsight_targets(econ, demand, 0, 1, spill_usd=spill).tolist() == [1, 1, 1, 0, 0, 1, 1, 1, 1]
    bridged = hindsight_targets(econ, demand, 0, 1, spill_usd=spill, release_usd=1000.0)
    assert bridged.tolist() == [1] * 9
