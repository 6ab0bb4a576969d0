"""The policy's plain-data inputs and outputs: the state it keeps between runs, and a decision.

Both are frozen dataclasses that round-trip through ``dataclasses.asdict`` and JSON, so the
runner can persist the state (DynamoDB) and log the decision as they are.

No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RoutePolicyState:
    """What the policy remembers about a route between runs; persisted by the runner."""

    #: reserved replicas currently wanted (0 = serverless)
    replicas: int = 0
    #: when replicas were last raised (a warm-up and the minimum hold count from here)
    promoted_at_s: float | None = None
    #: since when fewer replicas have been projected cheaper (the cooldown counts from here)
    low_since_s: float | None = None
    #: the most replicas any run of the current low period wanted (what a demotion keeps)
    low_target: int = 0
    #: since when the route's demand has made reserved replicas cheaper (the current episode)
    hot_since_s: float | None = None
    #: the last run that found the current episode still going
    hot_until_s: float | None = None
    #: lengths in seconds of the route's last completed episodes (``episodes.MAX_EPISODES``)
    episodes: tuple[float, ...] = ()
    #: since when more serving replicas have been wanted without yet paying for their overhead
    raise_since_s: float | None = None

    @classmethod
    def from_dict(cls, data: dict | None) -> "RoutePolicyState":
        """Rebuild a persisted state, ignoring keys this version does not know."""
        if not data:
            return cls()
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        if "episodes" in known:  # JSON and DynamoDB hand a list (of Decimals) back
            known["episodes"] = tuple(float(length) for length in known["episodes"] or ())
        return cls(**known)


@dataclass(frozen=True)
class RouteDecision:
    """One run's verdict for one route, with its reason and projected savings."""

    route: str
    #: target reserved replicas (0 = demote / stay serverless)
    replicas: int
    previous_replicas: int
    #: one human sentence
    reason: str
    #: projected USD/hour saved by this decision against keeping ``previous_replicas``
    projected_savings_usd_per_hour: float
    forecast_rps: float
    #: prompt tokens/s
    forecast_prompt_tps: float
    forecast_completion_tps: float
    #: projected USD/hour of the route at the target replicas (GPU plus spill to serverless)
    projected_cost_usd_per_hour: float = 0.0
    #: projected USD/hour had the route stayed entirely serverless
    serverless_cost_usd_per_hour: float = 0.0

    @property
    def changed(self) -> bool:
        return self.replicas != self.previous_replicas
