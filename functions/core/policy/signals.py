"""Leading indicators: what a route looks like right now, between the per-minute aggregates.

The per-minute usage history tells the policy what a route did; these tell it what is building
up at this moment (requests in flight, requests waiting, the last few seconds of arrivals), so a
burst can be met before a whole minute of it has been recorded. Runners fill what they know: the
policy Lambda from the 10-second buckets the gateways add to the per-minute aggregates
(``live_from_minutes``), ``tierup dev`` from its in-process recorder, the simulator from the trace.

No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ports import MinuteUsage


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


#: seconds of the policy's clock one live bucket covers (``MinuteUsage.by_10s``)
BUCKET_S = 10


def live_from_minutes(rows: list[MinuteUsage], now_s: float, flush_lag_s: float) -> LiveSignals | None:
    """A route's live signals from its per-minute rows' 10-second buckets: the latest bucket that
    ended at least ``flush_lag_s`` ago (the gateways have flushed it by then), or None when the
    rows carry no buckets (an older gateway). Arrivals are counted when a request's record is
    flushed, after it finished: a bucket still gains its slowest requests later, and in-flight
    and queued counts are not known here (0)."""
    if not any(row.by_10s for row in rows):
        return None
    last_end = (now_s - flush_lag_s) // BUCKET_S * BUCKET_S
    start = last_end - BUCKET_S
    minute, tenth = int(start // 60), int(start % 60 // BUCKET_S)
    counts = next((row.by_10s or {} for row in rows if row.minute == minute), {}).get(tenth, (0, 0, 0))
    requests, prompt, completion = counts
    return LiveSignals(at_s=last_end, recent_window_s=BUCKET_S, recent_requests=int(requests),
                       recent_prompt_tokens=int(prompt), recent_completion_tokens=int(completion))
