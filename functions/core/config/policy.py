"""The traffic-volume policy's knobs (``[policy]``)."""

from __future__ import annotations

from pydantic import Field

from ._base import Section


class PolicyConfig(Section):
    enabled: bool = True
    #: seconds between policy runs (EventBridge every minute on AWS)
    interval_s: int = Field(default=60, alias="interval-s", gt=0)
    #: a promoted route stays promoted at least this long
    min_hold_s: int = Field(default=1800, alias="min-hold-s", ge=0)
    #: demand must stay low this long before a route is demoted
    cooldown_s: int = Field(default=900, alias="cooldown-s", ge=0)
    #: promote only when reserved is projected cheaper by at least this fraction
    hysteresis: float = Field(default=0.1, ge=0, lt=1)
    #: target utilisation of reserved replicas (headroom for bursts; the rest spills)
    target_utilisation: float = Field(default=0.8, alias="target-utilisation", gt=0, le=1)
