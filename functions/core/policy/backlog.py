"""Queued batch work as an input to the promotion decision.

A route's batch backlog (lines queued for the worker, ``functions/batch``) is part of what a
replica count costs over the hold a decision commits to:

* **Idle capacity drains it.** Batch lines take a replica's slots only while fewer than
  ``reserved-share`` of them are busy, so ``n`` replicas leave ``n * share - interactive load``
  replica units of idle capacity each second. What they drain of the backlog within the hold (and
  before the deadline) is paid for already; the rest runs on its cheapest other path (a Bedrock
  batch job where the model has a batch price, else on-demand) and is priced there, spread over
  the hold. So a candidate with idle capacity is cheaper by the other-path price of what it drains.
  Only replicas that serve drain: one a raise adds drains nothing through its warm-up. And only
  lines that would not drain anyway count: the replicas the interactive traffic holds go on
  draining after the hold until the worker stops waiting for reserved capacity (``margin_s``
  before the deadline), and what they would drain by then is worth no replica.
* **A deadline at risk** (the other paths, at the share the worker may take of them, cannot finish
  the backlog before the earliest batch's window ends): the work neither they nor a candidate's
  idle capacity could finish by then would miss, and is charged to that candidate at its on-demand
  price, spread over the hold. Candidates that rescue it are cheaper by that much: a deadline can
  justify a replica the interactive traffic alone would not.

Both are USD/s added to the cost model's projection (``policy.expected_usd_per_s``), so a
decision's projected costs include the backlog's; the backlog starts an episode of its own (the
promotion's break-even rule then applies) only when it alone makes a replica cheaper; the episodes
remembered are otherwise the interactive traffic's. A credit smaller than the decision's own margin
per replica (``material``) is dropped: it rests on the same noisy forecast and would only tip
decisions the interactive traffic leaves on the edge, each tip costing a replica's hold. Hysteresis,
the minimum hold and the cooldown apply unchanged. Runners build a ``BatchBacklog`` from the
batch store (``backlog_from_items``) and pass it to ``decide``.

Pure: no I/O and no clock here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..chat import Usage
from ..config import TierupConfig
from ..pricing import batch_token_cost_usd, token_cost_usd
from .cost_model import RouteEconomics
from .forecast import DemandForecast


@dataclass(frozen=True)
class BatchBacklog:
    """A route's queued batch work (lines not answered yet) and what it costs elsewhere."""

    lines: int
    prompt_tokens: float
    completion_tokens: float
    #: epoch seconds: the earliest end of a queued batch's completion window
    deadline_s: float
    #: USD of the backlog on its cheapest other path: a Bedrock batch job, else on-demand
    other_path_usd: float
    #: USD of the backlog on-demand: the price of a line the deadline would miss
    on_demand_usd: float
    #: lines a second the other paths may run (None: no limit, a Bedrock batch job takes them all)
    other_lines_per_s: float | None
    #: share of a replica's slots batch lines may take (``[batch] reserved-share``)
    reserved_share: float
    #: seconds before the deadline the worker stops waiting for reserved capacity (``deadline-margin-s``)
    margin_s: float = 0.0


def backlog_usd_per_s(econ: RouteEconomics, replicas: np.ndarray, forecast: DemandForecast,
                      backlog: BatchBacklog, now_s: float, hold_s: float, ready: int | None = None,
                      held: int = 0) -> np.ndarray:
    """USD/s the backlog adds to each candidate replica count's projected cost over ``hold_s``:
    what its idle capacity leaves to the other paths, and what would miss the deadline.

    ``ready``: replicas serving now (None: every candidate's are); added ones drain nothing through
    their warm-up. ``held``: ready replicas the interactive traffic keeps anyway; what their idle
    share drains before the worker stops waiting for reserved capacity (``margin_s`` before the
    deadline) would drain at no cost whatever the candidate, so only the rest is worth a replica."""
    replicas = np.asarray(replicas, dtype=float)
    work = float(econ.load(backlog.prompt_tokens, backlog.completion_tokens))  # replica-seconds
    if work <= 0 or backlog.lines <= 0 or hold_s <= 0:
        return np.zeros(len(replicas))
    burst = forecast.burst_factors
    interactive = econ.load(forecast.prompt_tps * burst, forecast.completion_tps * burst)

    def idle(counts: np.ndarray) -> np.ndarray:  # replica units batch lines may take, per count
        counts = np.asarray(counts, dtype=float).reshape(-1)
        return np.maximum(0.0, counts[:, None] * backlog.reserved_share - interactive[None, :]).mean(axis=1)

    serving = replicas if ready is None else np.minimum(replicas, float(ready))

    def drains(span_s: float) -> np.ndarray:  # replica-seconds each candidate drains in ``span_s``
        warming = 0.0 if ready is None else min(span_s, econ.warmup_s)
        return idle(serving) * warming + idle(replicas) * (span_s - warming)

    time_left = max(0.0, backlog.deadline_s - now_s)
    span = min(hold_s, time_left)
    # after the hold the route is back to the replicas it holds anyway, which go on draining
    later = float(idle(np.array([float(held)]))[0]) * max(0.0, time_left - backlog.margin_s - span)
    left_over = np.maximum(0.0, work - np.minimum(work, drains(span)) - later)
    elsewhere_usd = backlog.other_path_usd * left_over / work / hold_s
    if backlog.other_lines_per_s is None:
        elsewhere = math.inf
    else:
        elsewhere = backlog.other_lines_per_s * time_left * work / backlog.lines
    missed = np.maximum(0.0, work - elsewhere - drains(time_left))
    return elsewhere_usd + backlog.on_demand_usd * missed / work / hold_s


def backlog_pays(econ: RouteEconomics, batch_usd: np.ndarray) -> bool:
    """Whether the backlog alone (``backlog_usd_per_s`` of candidates 0, 1, ...) makes some replica
    count cheaper than none: an episode of its own, as sustained interactive traffic starts one."""
    replicas = np.arange(len(batch_usd), dtype=float)
    return bool((replicas[1:] * econ.gpu_usd_per_s + batch_usd[1:] < batch_usd[0]).any())


def material(batch_usd: np.ndarray, current: int, usd_per_replica: float) -> np.ndarray:
    """``batch_usd`` with differences from the current count's smaller than ``usd_per_replica`` per
    replica of difference flattened away: the idle capacity behind them is read off the same noisy
    forecast as the interactive traffic, so a credit that small would only tip decisions the
    interactive traffic leaves on the edge, and each tip costs a replica's hold, not the credit."""
    batch_usd = np.asarray(batch_usd, dtype=float)
    here = float(batch_usd[current])
    apart = np.abs(np.arange(len(batch_usd)) - current)
    return np.where(np.abs(batch_usd - here) >= usd_per_replica * np.maximum(apart, 1), batch_usd, here)


def backlog_from_items(route_name: str, config: TierupConfig, econ: RouteEconomics,
                       items: Iterable[dict], now_s: float) -> BatchBacklog | None:
    """A route's ``BatchBacklog`` from its queued batches, each ``{"lines", "prompt_tokens",
    "completion_tokens", "deadline_s", "done"}`` (``done``: lines answered or failed so far; the
    rest of the batch's tokens are prorated). None when nothing is queued before its deadline."""
    lines = prompt = completion = 0.0
    deadline = math.inf
    for item in items:
        total = int(item["lines"])
        left = total - min(total, int(item.get("done", 0)))
        if left <= 0 or float(item["deadline_s"]) <= now_s or total <= 0:
            continue
        lines += left
        prompt += float(item["prompt_tokens"]) * left / total
        completion += float(item["completion_tokens"]) * left / total
        deadline = min(deadline, float(item["deadline_s"]))
    if lines <= 0:
        return None
    route = config.routes[route_name]
    usage = Usage(prompt_tokens=round(prompt), completion_tokens=round(completion))
    on_demand = token_cost_usd(config.pricing, "serverless", route.serverless, usage)
    batch_price = batch_token_cost_usd(config.pricing, route.serverless, usage)
    bedrock = batch_price is not None and lines >= config.batch.bedrock_min_records
    # on the interactive path the worker keeps max-workers x line-concurrency lines in flight, each
    # taking about as long as on a whole replica
    line_s = float(econ.capacity.duration_s(prompt / lines, completion / lines))
    in_flight = config.batch.max_workers * config.batch.line_concurrency
    return BatchBacklog(
        lines=int(lines), prompt_tokens=prompt, completion_tokens=completion, deadline_s=deadline,
        other_path_usd=min(batch_price, on_demand) if bedrock else on_demand, on_demand_usd=on_demand,
        other_lines_per_s=None if bedrock else in_flight / max(line_s, 1e-9),
        reserved_share=config.batch.reserved_share, margin_s=config.batch.deadline_margin_s)
