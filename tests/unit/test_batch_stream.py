"""The batch stream's routing model (``tierup simulate --batch-lines``, ``bench/batch_cost.py``) on
hand-built buckets."""

from __future__ import annotations

import numpy as np

from functions.core.policy.cost_model import economics_for
from tests.support import make_config
from tierup.simulate.batch_stream import BatchStream, price_batch, route_batch
from tierup.simulate.buckets import Buckets


def test_lines_take_only_the_idle_share_of_held_replicas():
    # room at share 0.5 of 10 s: 5 - 2 = 3, 5 - 8 < 0, none (no replica), 5
    served, left = route_batch(np.array([1, 1, 0, 1]), np.array([2.0, 8.0, 0.0, 0.0]), 10.0, 1.0, 10, 0.5, 4)
    assert served.tolist() == [3, 0, 0, 5] and left == 2
    # nothing after the fallback bucket
    served, left = route_batch(np.array([1, 1, 0, 1]), np.array([2.0, 8.0, 0.0, 0.0]), 10.0, 1.0, 10, 0.5, 1)
    assert served.tolist() == [3, 0, 0, 0] and left == 7


def _buckets(n: int) -> Buckets:
    zeros = np.zeros(n)
    return Buckets(10.0, 0.0, zeros, zeros, zeros, zeros, zeros, zeros)


def test_a_batch_on_a_promoted_route_drains_on_reserved_before_the_handoff():
    config = make_config()
    route = config.routes["chat"]
    econ = economics_for("chat", route, config)
    line_work = float(econ.capacity.work_s(800, 200))
    # a 24-hour window: the hand-off 9 hours in; one replica idle all along drains 5 s of work a bucket
    stream = BatchStream(lines=int(5 * 100 / line_work), arrive_s=0.0, window_s=86_400)
    row = price_batch(stream, np.ones(8640, dtype=np.int64), _buckets(8640), config, route, econ)
    assert row["path"] == "reserved, then on-demand" and row["on_reserved"] == stream.lines
    assert row["tierup_usd"] == 0.0 and row["on_demand_usd"] > 0
    # the same batch on a route without replicas: one Bedrock job at half price
    row = price_batch(stream, np.zeros(8640, dtype=np.int64), _buckets(8640), config, route, econ)
    assert row["path"] == "bedrock-batch" and row["tierup_share"] == 0.5
