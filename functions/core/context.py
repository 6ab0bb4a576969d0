"""The state of one request as it moves through the gateway's pipeline. No I/O here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from .chat import ChatRequest, EmbeddingRequest, Usage
from .config import PlanConfig, RouteConfig, Tier
from .gateway_cost import GatewayUnits


@dataclass(frozen=True, slots=True)
class Tenant:
    tenant_id: str
    plan_name: str
    plan: PlanConfig
    key_id: str = ""


@dataclass(slots=True)
class RequestContext:
    request_id: str
    route_name: str
    route: RouteConfig
    tenant: Tenant
    kind: Literal["chat", "embedding"]
    chat: ChatRequest | None = None
    embedding: EmbeddingRequest | None = None
    #: request headers, lower-cased names
    headers: dict[str, str] = field(default_factory=dict)
    #: the output-token ceiling this request runs with (client's ask, or the route default)
    max_tokens: int = 0
    started: float = field(default_factory=time.perf_counter)
    started_epoch: float = field(default_factory=time.time)
    tier: Tier | None = None
    model: str | None = None
    usage: Usage | None = None
    cost_usd: float = 0.0
    #: ``miss``, ``hit-exact``, ``hit-semantic``, ``bypass``, or ``calibration`` (a would-be semantic hit sent to
    #: the model to check it: billed as a miss)
    cache_status: str = "miss"
    #: ``ok``, ``refused``, ``error`` or ``client_closed``
    outcome: str = "ok"
    error_code: str | None = None
    status: int = 200
    #: headers every stage may add to the response (x-ratelimit-*, x-tierup-*)
    response_headers: dict[str, str] = field(default_factory=dict)
    #: the AWS units serving this request used (``functions.core.gateway_meter``) and their price
    gateway_units: GatewayUnits | None = None
    gateway_cost_usd: float = 0.0
    #: per-stage scratch space (reservations, leases), keyed by stage name
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def latency_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0
