"""The route table: where each route's traffic goes now, as the gateway reads it.

One ``RouteEntry`` per route, written only by the promotion executor and read (cached) by the
gateway's router. It says which tier serves the route, how many reserved replicas are ready
behind it, and how much concurrent traffic those replicas absorb before the gateway spills.

    serverless ──warm──> warming ──ready──> reserved ──flip──> draining ──release──> serverless
    (start tier)   (traffic still on      (traffic on    (traffic back on the
                    the start tier)        reserved)      start tier; capacity held
                                                          for a short grace)

No I/O here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Literal

from .config import Tier

Phase = Literal["serverless", "warming", "reserved", "draining"]


@dataclass(frozen=True)
class RouteEntry:
    route: str
    #: the tier the gateway sends the route's traffic to first: the route's start tier or ``reserved``
    tier: Tier = "serverless"
    #: reserved replicas serving traffic now (0 unless ``tier == "reserved"``)
    replicas: int = 0
    #: replicas asked of the GPU control (``min_containers``); above ``replicas`` while warming
    target_replicas: int = 0
    #: requests in flight the reserved replicas absorb; past it the gateway spills to the start tier
    max_in_flight: int = 0
    #: when ``tier`` last changed (epoch seconds, on the policy's clock)
    since_s: float = 0.0
    #: when the current warm-up began; None when nothing is warming
    warming_since_s: float | None = None
    #: capacity above ``replicas`` is released at this time (after in-flight requests drain)
    release_at_s: float | None = None
    updated_s: float = 0.0

    @classmethod
    def initial(cls, route: str, start_tier: Tier, now_s: float = 0.0) -> "RouteEntry":
        return cls(route=route, tier=start_tier, since_s=now_s, updated_s=now_s)

    @property
    def promoted(self) -> bool:
        return self.tier == "reserved" and self.replicas > 0

    @property
    def phase(self) -> Phase:
        if self.warming_since_s is not None:
            return "warming"
        if self.release_at_s is not None:
            return "draining"
        return "reserved" if self.promoted else "serverless"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RouteEntry":
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)

    def evolve(self, **changes) -> "RouteEntry":
        return replace(self, **changes)
