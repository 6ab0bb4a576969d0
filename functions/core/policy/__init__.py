"""The traffic-volume policy: when a route's sustained traffic makes reserved GPUs cheaper.

The interface every runner codes against (the policy Lambda, ``tierup dev``'s loop, the
simulator)::

    decide(route, route_config, history, state, now_s, config, live=None) -> (RouteDecision, RoutePolicyState)

``history`` is the route's per-minute usage (scope ``route:NAME``), oldest first, for the last
``[policy] history-minutes`` minutes; minutes without traffic may be missing. ``live``
(``LiveSignals``, optional) carries the route's in-flight, queued and last-seconds counts: leading
indicators of a burst. The runner persists
the returned state (``dataclasses.asdict``; ``RoutePolicyState.from_dict`` reads it back) and
hands it to the next run; it applies the decision with the executor (warm first, then flip).

Modules, one concept each: ``cost_model`` (what a tier costs, what a replica absorbs),
``forecast`` (demand over the decision's horizon), ``policy`` (the decision with hysteresis),
``decision`` (the plain-data state and verdict), ``schedule`` (pricing a whole schedule over a
trace) and ``hindsight`` (the offline optimum the policy is measured against).

No I/O anywhere in this package.
"""

from .cost_model import RouteEconomics, economics_for
from .decision import RouteDecision, RoutePolicyState
from .policy import decide, decide_with_economics
from .signals import LiveSignals

__all__ = ["LiveSignals", "RouteDecision", "RouteEconomics", "RoutePolicyState", "decide",
           "decide_with_economics", "economics_for"]
