"""The traffic-volume policy's knobs (``[policy]``)."""

from __future__ import annotations

from pydantic import Field

from ._base import Section


class PolicyConfig(Section):
    enabled: bool = True
    #: seconds between policy runs (EventBridge every minute on AWS)
    interval_s: int = Field(default=60, alias="interval-s", gt=0)
    #: a promoted route stays promoted at least this long
    min_hold_s: int = Field(default=600, alias="min-hold-s", ge=0)
    #: demand must stay low this long before a route is demoted
    cooldown_s: int = Field(default=300, alias="cooldown-s", ge=0)
    #: promote only when reserved is projected cheaper by at least this fraction
    hysteresis: float = Field(default=0.1, ge=0, lt=1)
    #: target utilisation of reserved replicas (headroom for bursts; the rest spills)
    target_utilisation: float = Field(default=0.8, alias="target-utilisation", gt=0, le=1)
    #: minutes of per-route usage the policy reads each run; a day and more enables time-of-day
    #: seasonality in the forecast
    history_minutes: int = Field(default=1500, alias="history-minutes", ge=30)
    #: minutes of recent usage that set the forecast's level, trend and burstiness
    recent_minutes: int = Field(default=10, alias="recent-minutes", ge=3)
    #: trust in a route's own episode history when deciding whether a promotion pays (ski rental,
    #: 0 < λ <= 1): it promotes after λ x break-even when its episodes run long, after break-even / λ
    #: when they run short; whatever the traffic, at most 1 + 1/λ times the cost of the best choice
    #: made in hindsight. 1 ignores the history (the plain break-even rule, at most 2 times)
    episode_trust: float = Field(default=0.5, alias="episode-trust", gt=0, le=1)
    #: the episode length (seconds) a route is assumed to have before it has a history of its own
    episode_prior_s: float = Field(default=600.0, alias="episode-prior-s", ge=0)
    #: seconds a demoted route's capacity is kept after traffic flips away, so in-flight requests finish
    drain_grace_s: float = Field(default=60.0, alias="drain-grace-s", ge=0)
    #: days each recorded decision is kept in the state table (DynamoDB TTL)
    decision_ttl_days: int = Field(default=30, alias="decision-ttl-days", gt=0)
    #: seconds the gateway caches the route table (refreshed in the background, never per request)
    route_table_refresh_s: float = Field(default=5.0, alias="route-table-refresh-s", gt=0)
    #: consecutive failures of the reserved tier that open its circuit breaker (traffic spills)
    breaker_failures: int = Field(default=3, alias="breaker-failures", gt=0)
    #: seconds an open breaker waits before letting one trial request through (half-open)
    breaker_cooloff_s: float = Field(default=30.0, alias="breaker-cooloff-s", gt=0)
