"""Requests laid on 10-second buckets: what the simulator prices, at request resolution.

Each request is added once, with its arrival, prompt and completion tokens; per bucket the
builder keeps the request and token counts, the replica-seconds of GPU work the requests need
(with and without the context-length model, ``functions/core/gpu_capacity.py``) and the
request-seconds in flight (each request is in flight from its arrival for its duration on a
full replica, so a burst inside a minute shows as concurrency). Memory is per bucket, never per
request, so two weeks of a hot client fit.

No I/O here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from functions.core.gpu_capacity import ReplicaCapacity
from functions.core.policy.schedule import MinuteDemand
from functions.core.ports import MinuteUsage

BUCKET_S = 10.0


@dataclass(frozen=True)
class Buckets:
    """A trace on ``bucket_s`` buckets from ``start_s`` (epoch seconds, a whole minute)."""

    bucket_s: float
    start_s: float
    requests: np.ndarray
    prompt_tokens: np.ndarray
    completion_tokens: np.ndarray
    #: replica-seconds of work, with the context-length model / without it (flat per token)
    work_s: np.ndarray
    flat_work_s: np.ndarray
    #: request-seconds in flight during the bucket (mean in-flight = busy_s / bucket_s)
    busy_s: np.ndarray

    def __len__(self) -> int:
        return len(self.requests)

    @property
    def per_minute(self) -> int:
        return round(60.0 / self.bucket_s)

    def minutes(self) -> MinuteDemand:
        """Per-minute totals (the usage aggregates' view)."""
        k = self.per_minute
        return MinuteDemand(requests=_fold(self.requests, k), prompt_tokens=_fold(self.prompt_tokens, k),
                            completion_tokens=_fold(self.completion_tokens, k), start_s=self.start_s)

    def usage_rows(self, route: str) -> list[MinuteUsage]:
        """The trace as the usage aggregates hold it: one row per minute with traffic, with its
        arrivals per 10 seconds (``by_10s``) as the gateways record them when the buckets are 10 s."""
        minutes = self.minutes()
        first = int(self.start_s // 60)
        tenths = self.bucket_s == 10.0 and self.per_minute == 6

        def by_10s(t: int) -> dict | None:
            if not tenths:
                return None
            lo = t * 6
            return {j: [int(self.requests[lo + j]), int(self.prompt_tokens[lo + j]), int(self.completion_tokens[lo + j])]
                    for j in range(6) if self.requests[lo + j] > 0}

        return [MinuteUsage(minute=first + int(t), scope=f"route:{route}", requests=int(minutes.requests[t]),
                            prompt_tokens=int(minutes.prompt_tokens[t]),
                            completion_tokens=int(minutes.completion_tokens[t]), by_10s=by_10s(int(t)))
                for t in np.flatnonzero(minutes.requests > 0)]


def _fold(values: np.ndarray, k: int) -> np.ndarray:
    return values.reshape(-1, k).sum(axis=1)


class BucketBuilder:
    """Accumulates requests into ``Buckets``; ``length_s`` is rounded up to whole minutes."""

    def __init__(self, capacity: ReplicaCapacity, start_s: float, length_s: float, bucket_s: float = BUCKET_S):
        if (60.0 / bucket_s) % 1:
            raise ValueError("bucket_s must divide a minute")
        self.capacity = capacity
        self.flat = ReplicaCapacity(capacity.prefill_tokens_per_s, capacity.decode_tokens_per_s,
                                    capacity.max_concurrent, context_weight=0.0)
        self.start_s = math.floor(start_s / 60.0) * 60.0
        minutes = max(1, math.ceil((start_s + length_s - self.start_s) / 60.0))
        self.bucket_s = bucket_s
        self.n = round(minutes * 60.0 / bucket_s)
        self._sums = {name: np.zeros(self.n) for name in
                      ("requests", "prompt", "completion", "work", "flat", "starts", "start_sum", "ends", "end_sum")}

    def add(self, arrival_s, prompt, completion) -> None:
        """Add requests (arrays, or scalars) arriving at ``arrival_s`` (epoch seconds)."""
        offset = np.atleast_1d(np.asarray(arrival_s, dtype=float)) - self.start_s
        prompt = np.broadcast_to(np.asarray(prompt, dtype=float), offset.shape)
        completion = np.broadcast_to(np.asarray(completion, dtype=float), offset.shape)
        horizon = self.n * self.bucket_s
        keep = (offset >= 0) & (offset < horizon)
        offset, prompt, completion = offset[keep], prompt[keep], completion[keep]
        index = (offset // self.bucket_s).astype(np.int64)
        end = np.minimum(offset + self.capacity.duration_s(prompt, completion), horizon)
        end_index = np.minimum((end // self.bucket_s).astype(np.int64), self.n - 1)
        sums, n = self._sums, self.n
        sums["requests"] += np.bincount(index, minlength=n)
        sums["prompt"] += np.bincount(index, weights=prompt, minlength=n)
        sums["completion"] += np.bincount(index, weights=completion, minlength=n)
        sums["work"] += np.bincount(index, weights=self.capacity.work_s(prompt, completion), minlength=n)
        sums["flat"] += np.bincount(index, weights=self.flat.work_s(prompt, completion), minlength=n)
        sums["starts"] += np.bincount(index, minlength=n)
        sums["start_sum"] += np.bincount(index, weights=offset, minlength=n)
        sums["ends"] += np.bincount(end_index, minlength=n)
        sums["end_sum"] += np.bincount(end_index, weights=end, minlength=n)

    def build(self) -> Buckets:
        sums = self._sums
        edges = np.arange(self.n + 1) * self.bucket_s

        def area(count, total):
            # integral over [0, edge] of #(events <= t): sum over events before the edge of (edge - t)
            before = np.concatenate([[0.0], np.cumsum(count)])
            sum_before = np.concatenate([[0.0], np.cumsum(total)])
            return edges * before - sum_before

        busy = np.diff(area(sums["starts"], sums["start_sum"]) - area(sums["ends"], sums["end_sum"]))
        return Buckets(bucket_s=self.bucket_s, start_s=self.start_s, requests=sums["requests"],
                       prompt_tokens=sums["prompt"], completion_tokens=sums["completion"], work_s=sums["work"],
                       flat_work_s=sums["flat"], busy_s=np.maximum(busy, 0.0))


def from_requests(capacity: ReplicaCapacity, arrival_s, prompt, completion, bucket_s: float = BUCKET_S) -> Buckets:
    """Buckets of one batch of requests (arrays)."""
    arrival_s = np.asarray(arrival_s, dtype=float)
    if len(arrival_s) == 0:
        raise ValueError("no requests")
    start = float(arrival_s.min())
    builder = BucketBuilder(capacity, start, float(arrival_s.max()) - start + 1e-6, bucket_s)
    builder.add(arrival_s, prompt, completion)
    return builder.build()
