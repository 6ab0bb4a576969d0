"""Price a replica schedule over a bucketed trace, under one set of rules for every policy.

The executor, as the promotion runner applies a decision:

* a **raise** starts the new replicas at once; each is paid from then and takes traffic only
  once ready, ``warmup-s`` later (``flip="warm"``, what the executor does). ``flip="immediately"``
  is a naive autoscaler that routes to a replica still starting: those requests wait for it and
  are **cold**;
* a **lowering** takes traffic off at once (still-warming replicas are cancelled first) and keeps
  paying each released replica for ``release_tail_s``: the drain grace, then Modal's
  ``scaledown_window``;
* a schedule starts with nothing warm (the old rules let always-reserved start warm for free).

Per bucket, ``r`` serving replicas take the share ``min(1, r * max_concurrent / in_flight,
r * bucket_s / work)`` of its requests (the concurrency limit and the GPU's throughput, with the
context-length model); the rest spill to the serverless tier and are paid per token there. The
serverless tier throttles past its tokens-per-minute quota: throttled requests either fail (not
billed) or are retried until served (``throttle="delay"``: billed in full, counted as delayed).

``Rules`` switches each of these on or off, so the bench shows what each one moved.

No I/O here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from functions.core.policy.cost_model import RouteEconomics

from .buckets import Buckets


@dataclass(frozen=True)
class Rules:
    """Which of the simulator's truths apply (all, by default)."""

    #: price each 10-s bucket at the replicas' full throughput (off: whole minutes at the policy's
    #: target utilisation, as the first simulator did)
    fine_buckets: bool = True
    #: a replica admits at most ``max_concurrent`` requests at once
    concurrency: bool = True
    #: long prompts and contexts cost more GPU time per token
    context_cost: bool = True
    #: every policy starts cold and only ready replicas serve (off: always-reserved starts warm for
    #: free and the reactive autoscaler's warming replicas serve)
    cold_start: bool = True
    #: released replicas bill the drain grace and the scale-down window
    release_tail: bool = True
    #: the container's CPU and memory are billed beside the GPU
    cpu_memory: bool = True
    #: the serverless tier throttles past its tokens-per-minute quota
    throttling: bool = True
    throttle: str = "delay"  # or "fail"

    @classmethod
    def old(cls) -> "Rules":
        return cls(fine_buckets=False, concurrency=False, context_cost=False, cold_start=False,
                   release_tail=False, cpu_memory=False, throttling=False)


RULE_NAMES = ("fine_buckets", "concurrency", "context_cost", "cold_start", "release_tail", "cpu_memory", "throttling")


@dataclass(frozen=True)
class Outcome:
    """What a schedule cost and where its requests went."""

    cost_usd: float
    gpu_usd: float
    serverless_usd: float
    requests: float
    reserved_requests: float
    spilled_requests: float  # to serverless while replicas were serving, beyond their capacity
    serverless_requests: float  # to serverless while no replica served
    cold_requests: float
    throttled_requests: float  # past the serverless quota: failed (throttle="fail") or retried ("delay")
    promotions: int
    replica_seconds: float
    #: per priced bucket: replicas serving, and USD (release tails past the end land in the last)
    serving: np.ndarray | None = None
    cost_by_bucket: np.ndarray | None = None

    def share(self, count: float) -> float:
        return count / self.requests if self.requests else 0.0


def steps(seconds: float, bucket_s: float) -> int:
    return math.ceil(seconds / bucket_s - 1e-9)


def fleet(targets: np.ndarray, warmup_steps: int, tail_steps: int, initial_warm: bool = False):
    """Paid, ready and present replicas per bucket for ``targets`` (replicas wanted per bucket).

    Paid runs past the end of the trace by the last release's tail (it is billed all the same).
    """
    n = len(targets)
    paid = np.zeros(n + tail_steps + 1)
    ready = np.zeros(n + warmup_steps + 1)
    active: list[int] = []  # the bucket each present replica is (or will be) ready
    previous = 0
    for b in np.flatnonzero(np.diff(np.concatenate([[0], targets]))).tolist():
        want = int(targets[b])
        if want > previous:
            for _ in range(want - previous):
                ready_at = b if (initial_warm and b == 0) else b + warmup_steps
                active.append(ready_at)
                ready[ready_at] += 1
            paid[b] += want - previous
        else:
            active.sort()
            for _ in range(previous - want):
                ready_at = active.pop()  # the latest to be ready goes first
                ready[max(ready_at, b)] -= 1
                paid[b + tail_steps] -= 1
        previous = want
    paid = np.cumsum(paid)
    paid[n:] -= previous  # past the end only release tails are billed, not the replicas still held
    return paid, np.cumsum(ready)[:n], np.asarray(targets, dtype=float)


def served_share(buckets: Buckets, econ: RouteEconomics, serving: np.ndarray, rules: Rules) -> np.ndarray:
    """Share of each bucket's requests ``serving`` replicas absorb."""
    serving = np.asarray(serving, dtype=float)
    work = buckets.work_s if rules.context_cost else buckets.flat_work_s
    limit = np.full(len(buckets), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        limit = np.minimum(limit, np.where(work > 0, serving * buckets.bucket_s / work, np.inf))
        if rules.concurrency:
            in_flight = buckets.busy_s / buckets.bucket_s
            limit = np.minimum(limit, np.where(in_flight > 0, serving * econ.max_concurrent / in_flight, np.inf))
    return np.where(serving > 0, np.minimum(1.0, limit), 0.0)


def coarse(buckets: Buckets) -> Buckets:
    """The old simulator's view: whole minutes, capacity at the target utilisation applied by the caller."""
    k = buckets.per_minute
    fold = lambda values: values.reshape(-1, k).sum(axis=1)  # noqa: E731
    return Buckets(60.0, buckets.start_s, fold(buckets.requests), fold(buckets.prompt_tokens),
                   fold(buckets.completion_tokens), fold(buckets.work_s), fold(buckets.flat_work_s),
                   fold(buckets.busy_s))


def view(buckets: Buckets, econ: RouteEconomics, rules: Rules) -> tuple[Buckets, RouteEconomics]:
    """The trace and economics the rules price: minute buckets at the target utilisation for the
    old rules; the container without CPU and memory when they are not billed."""
    if not rules.cpu_memory:
        econ = replace(econ, gpu_usd_per_s=econ.gpu_usd_per_s - econ.container_usd_per_s, container_usd_per_s=0.0)
    if not rules.fine_buckets:
        buckets = coarse(buckets)
        # the old capacity: target utilisation of a whole minute's throughput
        buckets = replace(buckets, work_s=buckets.work_s / econ.target_utilisation,
                          flat_work_s=buckets.flat_work_s / econ.target_utilisation)
    return buckets, econ


def expand(targets_per_step: np.ndarray, step_buckets: int, length: int) -> np.ndarray:
    """A schedule decided every ``step_buckets`` buckets, laid on every bucket."""
    return np.repeat(np.asarray(targets_per_step, dtype=np.int64), step_buckets)[:length]


def simulate(buckets: Buckets, econ: RouteEconomics, targets: np.ndarray, rules: Rules = Rules(), *,
             flip: str = "warm", starts_warm: bool = False) -> Outcome:
    """Price ``targets`` (replicas wanted per 10-s bucket of ``buckets``) under ``rules``."""
    coarse_view = not rules.fine_buckets
    priced, econ = view(buckets, econ, rules)
    if coarse_view:
        targets = np.asarray(targets).reshape(-1, buckets.per_minute)[:, 0]
    dt = priced.bucket_s
    warm = max(1, steps(econ.warmup_s, dt))
    tail = steps(econ.release_tail_s, dt) if rules.release_tail else 0
    paid, ready, present = fleet(np.asarray(targets, dtype=np.int64), warm, tail,
                                 initial_warm=starts_warm and not rules.cold_start)
    serving = present if flip == "immediately" else ready
    share = served_share(priced, econ, serving, rules)
    requests = priced.requests
    on_gpu = requests * share
    with np.errstate(divide="ignore", invalid="ignore"):
        cold = np.where(serving > 0, on_gpu * (serving - ready) / np.where(serving > 0, serving, 1.0), 0.0)
    to_serverless = 1.0 - share
    per_s = np.asarray(econ.serverless_usd_per_s(requests / dt, priced.prompt_tokens / dt,
                                                 priced.completion_tokens / dt), dtype=float) * dt
    tokens = (priced.prompt_tokens + priced.completion_tokens) * to_serverless
    billed, throttled = throttle(tokens, requests * to_serverless, priced, econ, rules)
    serverless_usd = float((per_s * to_serverless * billed).sum())
    gpu_usd = float(paid.sum()) * econ.gpu_usd_per_s * dt
    return Outcome(
        cost_usd=gpu_usd + serverless_usd, gpu_usd=gpu_usd, serverless_usd=serverless_usd,
        requests=float(requests.sum()), reserved_requests=float(on_gpu.sum()),
        spilled_requests=float((requests * to_serverless * (serving > 0)).sum()),
        serverless_requests=float((requests * (serving <= 0)).sum()),
        cold_requests=float(cold.sum()), throttled_requests=throttled,
        promotions=int(((np.concatenate([[0], targets[:-1]]) == 0) & (np.asarray(targets) > 0)).sum()),
        replica_seconds=float(paid.sum()) * dt, serving=serving,
        cost_by_bucket=_by_bucket(paid, econ.gpu_usd_per_s * dt, per_s * to_serverless * billed))


def _by_bucket(paid: np.ndarray, usd_per_replica_bucket: float, serverless: np.ndarray) -> np.ndarray:
    cost = paid[:len(serverless)] * usd_per_replica_bucket + serverless
    cost[-1] += paid[len(serverless):].sum() * usd_per_replica_bucket
    return cost


def throttle(tokens: np.ndarray, requests: np.ndarray, buckets: Buckets, econ: RouteEconomics,
             rules: Rules) -> tuple[np.ndarray, float]:
    """Per bucket, the share of the serverless spend that is billed; and the requests throttled.

    The requests of a minute whose tokens exceed the quota are throttled in proportion. With
    ``fail`` they are lost (unbilled: a cheaper bill, and failed requests); with ``delay`` they are
    retried until served (billed in full), so the cost stays comparable and the count says how
    many waited.
    """
    quota = econ.serverless_tokens_per_minute
    ones = np.ones(len(tokens))
    if not rules.throttling or not quota or econ.serverless_is_gpu:
        return ones, 0.0
    k = max(1, round(60.0 / buckets.bucket_s))
    per_minute = tokens.reshape(-1, k).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        over = np.where(per_minute > quota, (per_minute - quota) / np.where(per_minute > 0, per_minute, 1), 0.0)
    throttled = float((requests.reshape(-1, k).sum(axis=1) * over).sum())
    if rules.throttle == "fail":
        return np.repeat(1.0 - over, k), throttled
    return ones, throttled
