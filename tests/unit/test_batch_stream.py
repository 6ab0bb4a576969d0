"""The batch stream's drain (``tierup simulate --batch-lines``, ``bench/batch_cost.py``) on hand-built
traces: reserved takes only idle capacity, and the replayed policy sees the backlog."""

from __future__ import annotations

import numpy as np

from functions.core.policy.cost_model import economics_for
from tests.support import make_config
from tierup.simulate.batch_replay import replay_batch
from tierup.simulate.batch_stream import BatchDrain, BatchStream
from tierup.simulate.buckets import Buckets, from_requests

MODEL = "us.meta.llama3-1-8b-instruct-v1:0"


def _buckets(n: int, work: np.ndarray | None = None) -> Buckets:
    zeros = np.zeros(n)
    return Buckets(10.0, 0.0, zeros, zeros, zeros, zeros if work is None else work, zeros, zeros)


def _no_bedrock_config(margin_s: int = 1800):
    """A model priced at 0.33 USD/Mtok whose batches are too small for a Bedrock job: what a
    replica's idle capacity drains is worth less than the replica, what it rescues from a deadline
    more (the example GPU costs 2.17 USD/h)."""
    return make_config({"pricing": {"models": {MODEL: {"input-per-mtok": 0.33, "output-per-mtok": 0.33}}},
                        "batch": {"bedrock-min-records": 1_000_000, "deadline-margin-s": margin_s}})


def _drain(config, buckets: Buckets, targets: np.ndarray, stream: BatchStream) -> BatchDrain:
    drain = BatchDrain(stream, buckets, config, "chat", economics_for("chat", config.routes["chat"], config))
    drain.advance(0, len(buckets), targets)
    return drain


def test_lines_take_only_the_idle_share_of_ready_replicas():
    config = _no_bedrock_config()
    rng = np.random.default_rng(1)
    work = rng.uniform(0.0, 12.0, 720)  # up to 1.2 replicas busy with interactive work
    targets = np.repeat([0, 1, 2, 1, 0, 2], 120)
    drain = _drain(config, _buckets(720, work), targets, BatchStream(lines=900_000, arrive_s=0, window_s=86_400))
    ready = drain.ready
    # a raised replica serves only once warm (120 s = 12 buckets); a lowered one stops at once
    assert ready[120] == 0 and ready[132] == 1 and ready[240] == 1 and ready[252] == 2 and ready[360] == 1
    room = np.maximum(0.0, ready * 0.5 * 10.0 - work)
    batch_work = drain.served * drain.line_work_s
    assert (batch_work[ready == 0] == 0).all() and batch_work.sum() > 0
    # never more than reserved-share of the ready replicas' capacity, interactive work first
    # (a line may run across buckets, so the bound holds summed up to every bucket)
    assert (np.cumsum(batch_work) <= np.cumsum(room) + 1e-9).all()
    assert np.cumsum(room)[-1] - np.cumsum(batch_work)[-1] < drain.line_work_s * 3


def test_a_batch_on_a_promoted_route_drains_on_reserved_before_the_handoff():
    config = make_config()
    econ = economics_for("chat", config.routes["chat"], config)
    line_work = float(econ.capacity.work_s(800, 200))
    # one replica idle all along drains 5 s of work a bucket; the hand-off is 9 hours in
    stream = BatchStream(lines=int(5 * 100 / line_work), arrive_s=0.0, window_s=86_400)
    summary = _drain(config, _buckets(8640), np.ones(8640, dtype=np.int64), stream).summary()
    assert summary["path"] == "reserved" and summary["on_reserved"] == stream.lines
    assert summary["batch_usd"] == 0.0 and summary["deadline_misses"] == 0
    # the same batch on a route without replicas: one Bedrock job at half price
    summary = _drain(config, _buckets(8640), np.zeros(8640, dtype=np.int64), stream).summary()
    assert summary["path"] == "bedrock-batch" and summary["bedrock_lines"] == stream.lines
    assert summary["batch_usd"] == round(stream.lines * 1000 * 0.11e-6, 4)


def _trace(econ, phases: list[tuple[float, float]]) -> Buckets:
    """Steady phases of (hours, requests/s) of 2,000-token prompts and 10-token answers."""
    arrivals, start = [], 0.0
    for hours, rps in phases:
        arrivals.append(start + np.arange(0.0, hours * 3600, 1.0 / rps))
        start += hours * 3600
    arrivals = np.concatenate(arrivals)
    return from_requests(econ.capacity, arrivals, np.full(len(arrivals), 2000), np.full(len(arrivals), 10))


def test_a_backlog_that_fits_idle_reserved_capacity_keeps_the_replica():
    config = _no_bedrock_config()
    route = config.routes["chat"]
    econ = economics_for("chat", route, config)
    # two busy hours promote the route; then traffic too light to pay for the replica on its own,
    # but leaving it 60 % idle: with the batch's lines to drain, it pays
    buckets = _trace(econ, [(2, 2.0), (10, 0.7)])
    row = replay_batch(BatchStream(20_000, 1.5 * 3600, 86_400), buckets, "chat", route, config, econ)
    blind, sees = row["blind"], row["sees_backlog"]
    assert blind["promoted_at_arrival"] and sees["promoted_at_arrival"]
    # blind to the backlog the policy releases the replica when the busy hours end and the lines
    # run on-demand; seeing it, it keeps the replica and the lines run there
    assert sees["replica_hours"] > blind["replica_hours"] + 4
    assert blind["on_demand_lines"] > 15_000 and sees["on_reserved"] == 20_000
    assert sees["tierup_usd"] < 0.6 * blind["tierup_usd"]
    assert sees["whole_bill_usd"] < blind["whole_bill_usd"]
    assert blind["deadline_misses"] == sees["deadline_misses"] == 0
    assert sees["reserved_utilisation_after"] > sees["reserved_utilisation_before"]


def test_a_deadline_at_risk_raises_a_replica_and_a_distant_one_does_not():
    config = _no_bedrock_config()
    route = config.routes["chat"]
    econ = economics_for("chat", route, config)
    quiet = _buckets(8 * 360)  # no interactive traffic at all
    # 30,000 lines within 6 hours: the throttled on-demand path runs about 20,000
    row = replay_batch(BatchStream(30_000, 0.0, 6 * 3600), quiet, "chat", route, config, econ)
    assert row["blind"]["deadline_misses"] > 9000 and row["blind"]["promotions"] == 0
    assert row["sees_backlog"]["promotions"] == 1 and row["sees_backlog"]["deadline_misses"] == 0
    assert row["sees_backlog"]["on_reserved"] > 25_000
    # with 48 hours the on-demand path finishes in time, and a replica would cost more than it saves
    row = replay_batch(BatchStream(30_000, 0.0, 48 * 3600), quiet, "chat", route, config, econ)
    assert row["sees_backlog"]["promotions"] == 0 and row["sees_backlog"]["deadline_misses"] == 0
    assert row["sees_backlog"]["on_demand_lines"] == 30_000
