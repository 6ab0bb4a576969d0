"""Leading indicators: what a route looks like right now, between the per-minute aggregates.

The per-minute usage history tells the policy what a route did; these tell it what is building
up at this moment (requests in flight, requests waiting, the last few seconds of arrivals), so a
burst can be met before a whole minute of it has been recorded. Runners fill what they know: the
policy Lambda and ``tierup dev`` from the gateway's live counters, the simulator from the trace.

No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LiveSignals:
    """A route's live load at ``at_s``; every count covers all of the route's tiers."""

    at_s: float
    #: requests being served now
    in_flight: int = 0
    #: requests waiting for admission or for a replica
    queued: int = 0
    #: the window the ``recent_*`` counts cover, ending at ``at_s``
    recent_window_s: float = 10.0
    recent_requests: int = 0
    recent_prompt_tokens: int = 0
    recent_completion_tokens: int = 0
