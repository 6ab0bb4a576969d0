"""Where a batch line runs, chosen per line by cost and deadline.

    route promoted to reserved GPUs, reserved mostly idle  ->  reserved (already paid for: $0 a token)
    route promoted, reserved busy with users               ->  wait (the chunk is offered again later),
                                                               unless the deadline is near: other tiers
    route not promoted                                     ->  the route's interactive tiers, throttled
                                                               by the worker's line concurrency

"Mostly idle" is fewer than ``[batch] reserved-share`` of the replicas' slots in flight at this
instance: batch lines fill idle capacity at low priority and leave the rest to interactive
traffic, which spills to serverless only when reserved is full. The deadline is the batch's
``expires_at`` less ``deadline-margin-s``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..core.context import RequestContext
from ..core.errors import OverloadedError
from ..core.ports import Target

#: ``ctx.state`` key of the line's batch deadline (epoch seconds), set by the worker
DEADLINE = "batch_expires_at"


class BatchRouter:
    def __init__(self, inner, *, reserved_share: float, deadline_margin_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        """``inner``: the gateway's ``TableRouter`` (its in-flight counts are the users' too)."""
        self._inner = inner
        self._share = reserved_share
        self._margin_s = deadline_margin_s
        self._clock = clock

    def targets(self, ctx: RequestContext) -> list[Target]:
        load = self._inner.reserved_load(ctx.route_name)
        if load is not None:
            in_flight, capacity = load
            if in_flight >= capacity * self._share and not self._deadline_near(ctx):
                raise OverloadedError(f"route {ctx.route_name!r}'s reserved GPUs are busy with interactive "
                                      "traffic: batch lines wait for idle capacity")
        return self._inner.targets(ctx)

    def _deadline_near(self, ctx: RequestContext) -> bool:
        deadline = ctx.state.get(DEADLINE)
        return deadline is not None and self._clock() >= deadline - self._margin_s

    def report(self, target: Target, ok: bool) -> None:
        self._inner.report(target, ok)
