"""A batch stream drained alongside an interactive trace, bucket by bucket, as the worker drains it.

A batch of ``lines`` chat lines arrives ``arrive_s`` into the trace with a ``window_s`` completion
window. ``BatchDrain`` follows it over the replay (``replay.run_policy`` calls ``backlog`` before
each decision and ``advance`` once the decision has set the next buckets' replicas), with the
worker's rules (``functions/batch/routing.py``, ``functions/core/batch_bedrock.py``), judged again
every bucket:

* **Bedrock**: while the model has a batch price, at least Bedrock's minimum records wait and the
  deadline margin (``deadline-margin-s`` before the window ends) is not reached, the lines left go
  to one Bedrock batch job at the batch price (assumed to finish before the margin) when the route
  holds no reserved replicas, or from the hand-off time on (``handoff_after_s``) when it holds some;
* **reserved**: lines take the ready replicas' idle capacity, ``[batch] reserved-share`` of their
  work less the interactive load, and nothing more (room too small for a line in one bucket adds
  up over the next ones, as a line runs across them). Reserved capacity is paid for already: $0 more;
* **on-demand**: on a route without reserved replicas, and on any route once the margin is reached,
  what reserved does not take runs on the interactive serverless tier at the on-demand price,
  throttled to ``max-workers x line-concurrency`` lines in flight. Lines still waiting when the
  window ends miss the deadline. Past the trace's end the route holds no replicas: the lines left
  go to a Bedrock job if one may still run, else on-demand, throttled, in what is left of the window.

``backlog`` is what the promotion runner reads from the batch store (``backlog_from_items``): the
lines the worker still has to run (a batch handed to Bedrock leaves it), so the simulated policy
sees the queue as the deployed one does. ``interactive_only`` drops the Bedrock path.

No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from functions.core.batch_bedrock import handoff_after_s
from functions.core.chat import Usage
from functions.core.config import TierupConfig
from functions.core.policy.backlog import BatchBacklog, backlog_from_items
from functions.core.policy.cost_model import RouteEconomics
from functions.core.pricing import batch_token_cost_usd, token_cost_usd

from .buckets import Buckets
from .engine import steps


@dataclass(frozen=True)
class BatchStream:
    lines: int
    #: seconds after the trace's start the batch arrives
    arrive_s: float
    #: its completion window
    window_s: float
    prompt_tokens: int = 800
    completion_tokens: int = 200


class BatchDrain:
    """Where each of the stream's lines runs, bucket by bucket, over a schedule decided as it goes."""

    def __init__(self, stream: BatchStream, buckets: Buckets, config: TierupConfig, route: str,
                 econ: RouteEconomics, *, interactive_only: bool = False) -> None:
        self.stream, self.config, self.route, self.econ = stream, config, route, econ
        self.bucket_s = dt = buckets.bucket_s
        self.start_s = buckets.start_s
        self.work = np.asarray(buckets.work_s, dtype=float)
        n = len(buckets)
        self.arrive = min(n - 1, round(stream.arrive_s / dt))
        self.window_end = self.arrive + round(stream.window_s / dt)  # may lie past the trace's end
        margin_s = min(config.batch.deadline_margin_s, stream.window_s)
        self.margin = self.arrive + round((stream.window_s - margin_s) / dt)
        self.handoff = self.arrive + round(handoff_after_s(stream.window_s, margin_s) / dt)
        self.line_work_s = float(econ.capacity.work_s(stream.prompt_tokens, stream.completion_tokens))
        line_s = float(econ.capacity.duration_s(stream.prompt_tokens, stream.completion_tokens))
        self.on_demand_lines_per_s = config.batch.max_workers * config.batch.line_concurrency / max(line_s, 1e-9)
        model = config.routes[route].serverless
        line = Usage(prompt_tokens=stream.prompt_tokens, completion_tokens=stream.completion_tokens)
        self.on_demand_line_usd = token_cost_usd(config.pricing, "serverless", model, line)
        self.batch_line_usd = None if interactive_only else batch_token_cost_usd(config.pricing, model, line)
        self.warmup = max(1, steps(econ.warmup_s, dt))

        self.left = stream.lines
        self.served = np.zeros(n, dtype=np.int64)  # lines run on reserved, per bucket
        self.ready = np.zeros(n)  # replicas ready to serve, per bucket (as ``engine.fleet`` counts them)
        self.targets = np.zeros(n, dtype=np.int64)
        self.bedrock_lines = self.on_demand_lines = self.missed = 0
        self.promoted_at_arrival = False
        self._room = self._throttle = 0.0  # capacity carried to the next bucket
        self._ready_at: list[int] = []
        self._previous = 0

    @property
    def queued(self) -> bool:
        return self.left > 0

    def backlog(self, now_s: float) -> BatchBacklog | None:
        """The route's queued batch work at ``now_s``, as the promotion runner reads it."""
        if self.left <= 0 or now_s < self.start_s + self.arrive * self.bucket_s:
            return None
        stream = self.stream
        item = {"lines": stream.lines, "done": stream.lines - self.left,
                "prompt_tokens": stream.lines * stream.prompt_tokens,
                "completion_tokens": stream.lines * stream.completion_tokens,
                "deadline_s": self.start_s + stream.arrive_s + stream.window_s}
        return backlog_from_items(self.route, self.config, self.econ, [item], now_s)

    def advance(self, first: int, end: int, targets: np.ndarray) -> None:
        """Run buckets ``[first, end)`` with ``targets`` (reserved replicas wanted per bucket)."""
        for b in range(first, end):
            self._follow_fleet(b, int(targets[b]))
            if b == self.arrive:
                self.promoted_at_arrival = targets[b] > 0
            if b >= self.arrive and self.left > 0:
                self._run_bucket(b, promoted=targets[b] > 0)
        if end == len(self.work) and self.left > 0:
            self._past_the_trace()

    def _follow_fleet(self, b: int, want: int) -> None:
        """Ready replicas at ``b``: raised ones serve ``warmup`` buckets later, lowered ones at once
        stop (the latest to be ready first), as ``engine.fleet``."""
        if want > self._previous:
            self._ready_at += [b + self.warmup] * (want - self._previous)
        elif want < self._previous:
            self._ready_at = sorted(self._ready_at)[:want]
        self._previous = want
        self.targets[b] = want
        self.ready[b] = sum(1 for at in self._ready_at if at <= b)

    def _run_bucket(self, b: int, promoted: bool) -> None:
        cfg = self.config.batch
        if (self.batch_line_usd is not None and self.left >= cfg.bedrock_min_records and b < self.margin
                and (not promoted or b >= self.handoff)):
            self.bedrock_lines, self.left = self.left, 0
            return
        if b >= self.window_end:
            self.missed, self.left = self.left, 0
            return
        if self.ready[b] > 0:
            self._room += max(0.0, self.ready[b] * cfg.reserved_share * self.bucket_s - self.work[b])
            self.served[b] = min(self.left, int(self._room // self.line_work_s))
            self._room -= self.served[b] * self.line_work_s
            self.left -= int(self.served[b])
        else:
            self._room = 0.0
        if self.left > 0 and (not promoted or b >= self.margin):
            self._throttle += self.on_demand_lines_per_s * self.bucket_s
            run = min(self.left, int(self._throttle))
            self._throttle -= run
            self.on_demand_lines += run
            self.left -= run

    def _past_the_trace(self) -> None:
        """Past the trace's end the route holds no replicas: a Bedrock job if one may still run,
        else the throttled on-demand path in what is left of the window."""
        end = len(self.work)
        if self.batch_line_usd is not None and self.left >= self.config.batch.bedrock_min_records and end < self.margin:
            self.bedrock_lines, self.left = self.bedrock_lines + self.left, 0
            return
        left_s = max(0.0, (self.window_end - end) * self.bucket_s)
        run = min(self.left, int(self._throttle + self.on_demand_lines_per_s * left_s))
        self.on_demand_lines += run
        self.missed += self.left - run
        self.left = 0

    def summary(self) -> dict:
        """Where the lines ran, what they cost, and the reserved replicas' utilisation over the
        window (interactive work alone, then with the batch lines)."""
        window = slice(self.arrive, min(len(self.work), self.window_end))
        capacity_s = float(self.ready[window].sum()) * self.bucket_s
        used = float(np.minimum(self.work[window], self.ready[window] * self.bucket_s).sum())
        on_reserved = int(self.served.sum())
        usd = self.bedrock_lines * (self.batch_line_usd or 0.0) + self.on_demand_lines * self.on_demand_line_usd
        paths = [name for name, count in (("reserved", on_reserved), ("bedrock-batch", self.bedrock_lines),
                                          ("on-demand", self.on_demand_lines)) if count]
        return {
            "path": ", then ".join(paths) or "-", "promoted_at_arrival": bool(self.promoted_at_arrival),
            "on_reserved": on_reserved, "bedrock_lines": self.bedrock_lines, "on_demand_lines": self.on_demand_lines,
            "deadline_misses": self.missed, "batch_usd": round(usd, 4),
            "reserved_replica_hours": round(capacity_s / 3600, 2),
            "reserved_utilisation_before": round(used / capacity_s, 4) if capacity_s else None,
            "reserved_utilisation_after": round((used + on_reserved * self.line_work_s) / capacity_s, 4)
            if capacity_s else None,
        }
