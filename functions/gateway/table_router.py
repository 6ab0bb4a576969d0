"""``TableRouter``: routes each request by the route table the promotion executor writes.

For a promoted route the reserved tier comes first, unless

* it is **saturated**: this gateway instance already has the reserved replicas' capacity
  (``max_in_flight`` in the route table) in flight there, or
* it is **failing**: its circuit breaker is open,

in which case the request **spills** to the route's start tier (``x-tierup-spill`` says why).
After the first choice come the fallbacks, tried by the pipeline in order on provider errors:
the start tier, ``serverless``, then ``overflow`` when it is enabled. Tiers whose breaker is open
are left out, unless nothing else would be left.

The in-flight count is per gateway instance. That is exact for one process (``tierup dev``, a
container); on Lambda, where an environment serves one request at a time, saturation shows up as
the reserved endpoint's own 429/503 answers, which fall back and trip the breaker instead.

Never reads DynamoDB: the route table comes from ``RouteTableCache``'s in-memory copy.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from ..core.config import Tier, TierupConfig
from ..core.context import RequestContext
from ..core.ports import Target
from .circuit_breaker import CircuitBreaker
from .route_table_cache import RouteTableCache
from .routing import ProviderRegistry, fallback_order


class InFlightCounter:
    """Requests in flight on one route's reserved tier at this instance.

    A request whose outcome is never reported (its client went away mid-stream) would hold its
    slot for ever, so a slot older than ``stale_after_s`` is dropped.
    """

    def __init__(self, stale_after_s: float, clock: Callable[[], float]) -> None:
        self._started: deque[float] = deque()
        self._stale_after_s = stale_after_s
        self._clock = clock

    def __len__(self) -> int:
        cutoff = self._clock() - self._stale_after_s
        while self._started and self._started[0] < cutoff:
            self._started.popleft()
        return len(self._started)

    def start(self) -> None:
        self._started.append(self._clock())

    def finish(self) -> None:
        if self._started:
            self._started.popleft()


class TableRouter:
    def __init__(self, registry: ProviderRegistry, table: RouteTableCache, config: TierupConfig,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._registry = registry
        self._table = table
        self._config = config
        self._clock = clock
        self._targets: dict[tuple[Tier, str], Target | None] = {}
        #: id(target) -> (tier, route): a Target does not name its route, and two routes may share
        #: a provider and a model, so report() finds the route by the Target object it handed out
        self._owners: dict[int, tuple[Tier, str]] = {}
        self._breakers: dict[tuple[Tier, str], CircuitBreaker] = {}
        self._in_flight: dict[str, InFlightCounter] = {}

    # -- state per (tier, route) ------------------------------------------------------------

    def _target(self, tier: Tier, route: str) -> Target | None:
        key = (tier, route)
        if key not in self._targets:
            target = self._registry.target(tier, route)
            self._targets[key] = target
            if target is not None:
                self._owners[id(target)] = key
        return self._targets[key]

    def breaker(self, tier: Tier, route: str) -> CircuitBreaker:
        key = (tier, route)
        breaker = self._breakers.get(key)
        if breaker is None:
            policy = self._config.policy
            breaker = self._breakers[key] = CircuitBreaker(policy.breaker_failures, policy.breaker_cooloff_s,
                                                           self._clock)
        return breaker

    def in_flight(self, route: str) -> InFlightCounter:
        counter = self._in_flight.get(route)
        if counter is None:
            # A request cannot outlive the provider timeout, so a slot older than it is a leak.
            stale = self._config.gateway.provider_timeout_s + 5.0
            counter = self._in_flight[route] = InFlightCounter(stale, self._clock)
        return counter

    def reserved_load(self, route: str) -> tuple[int, int] | None:
        """``(in flight, capacity)`` of a promoted route's reserved tier at this instance; ``None``
        when the route is not promoted (batch work uses it to take only idle reserved capacity)."""
        entry = self._table.get(route)
        if entry is None or not entry.promoted or self._target("reserved", route) is None:
            return None
        return len(self.in_flight(route)), entry.max_in_flight

    # -- the Router port --------------------------------------------------------------------

    def targets(self, ctx: RequestContext) -> list[Target]:
        route = ctx.route_name
        chosen: list[Target] = []
        reserved = self._reserved_first(ctx)
        if reserved is not None:
            chosen.append(reserved)
        fallbacks = [t for t in (self._target(tier, route) for tier in fallback_order(ctx.route.start_tier))
                     if t is not None and t not in chosen]
        usable = [t for t in fallbacks if self.breaker(t.tier, route).state != "open"]
        if not chosen and not usable and fallbacks:
            usable = fallbacks[:1]  # every tier is failing: try the start tier rather than nothing
        return chosen + usable

    def _reserved_first(self, ctx: RequestContext) -> Target | None:
        route = ctx.route_name
        entry = self._table.get(route)
        if entry is None or not entry.promoted:
            return None
        target = self._target("reserved", route)
        if target is None:
            return None
        counter = self.in_flight(route)
        if len(counter) >= entry.max_in_flight:
            ctx.response_headers["x-tierup-spill"] = "saturated"
            return None
        if not self.breaker("reserved", route).allow():
            ctx.response_headers["x-tierup-spill"] = "reserved-failing"
            return None
        counter.start()
        return target

    def report(self, target: Target, ok: bool) -> None:
        owner = self._owners.get(id(target))
        if owner is None:
            return
        tier, route = owner
        self.breaker(tier, route).record(ok)
        if tier == "reserved":
            self.in_flight(route).finish()


def wire_table_router(runtime, parts, registry: ProviderRegistry) -> TableRouter:
    """Replace the gateway's router with one that follows the route table in the state table."""
    from ..adapters.dynamodb.route_table import DynamoRouteTable
    from ..core.tables import STATE

    cache = RouteTableCache(DynamoRouteTable(runtime.dynamodb, runtime.table(STATE)),
                            runtime.config.policy.route_table_refresh_s)
    router = TableRouter(registry, cache, runtime.config)
    parts.router = router
    parts.on_startup.append(cache.start)
    parts.on_shutdown.append(cache.stop)
    return router
