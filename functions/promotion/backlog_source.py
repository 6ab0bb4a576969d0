"""A route's queued batch work, read for the policy: one query of the batch store per route and run.

The policy Lambda and ``tierup dev``'s loop pass ``backlog_from_store(...)`` to ``PolicyCycle``;
the policy prices it with ``core.policy.backlog``.
"""

from __future__ import annotations

from collections.abc import Callable

from ..core.config import TierupConfig
from ..core.policy.backlog import BatchBacklog, backlog_from_items
from ..core.policy.cost_model import economics_for

#: a route's queued batch work at a time (None: nothing queued)
BacklogSource = Callable[[str, float], BatchBacklog | None]


def backlog_from_store(store, config: TierupConfig, *, real_clock: Callable[[], float] | None = None) -> BacklogSource:
    """``store``: a ``BatchStore`` (its ``backlog(route)``). ``real_clock``: where the policy's clock
    runs ahead of real time (``tierup dev``), the batches' deadlines, kept in real time, are moved
    onto the policy's clock so that the time left to them stays what it really is."""

    def source(route: str, now_s: float) -> BatchBacklog | None:
        items = store.backlog(route)
        if real_clock is not None:
            shift = now_s - real_clock()
            items = [{**item, "deadline_s": item["deadline_s"] + shift} for item in items]
        return backlog_from_items(route, config, economics_for(route, config.routes[route], config), items, now_s)

    return source
