"""One typed config for tierup: the pydantic model of ``tierup.toml`` and its loader.

Precedence, highest first: a CLI flag (``--config``), the ``TIERUP_CONFIG`` environment
variable, ``./tierup.toml``. Every value not given takes the default documented on its field.
Errors name the offending key as a dotted path (``routes.chat.max-tokens``).

No I/O here beyond reading the one file it is asked to load.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import Field, ValidationError, model_validator

from ..errors import ConfigError
from ._base import Section
from .batch import BatchConfig
from .budgets import BudgetCap, BudgetsConfig
from .cache import RESERVED_TENANT_PREFIX, CacheConfig, RouteCacheConfig
from .gateway import GatewayConfig
from .plans import PlanConfig, TenantConfig
from .policy import PolicyConfig
from .pricing import GpuPrice, ModelPrice, PricingConfig
from .providers import SimulatedConfig, TierEndpoint
from .quotas import QuotaConfig
from .routes import PER_TOKEN_TIERS, TIERS, RouteConfig, Tier

__all__ = [
    "PER_TOKEN_TIERS", "TIERS", "BudgetCap", "BudgetsConfig", "CacheConfig", "GatewayConfig", "GpuPrice", "ModelPrice", "PlanConfig",
    "PolicyConfig", "PricingConfig", "QuotaConfig", "RouteCacheConfig", "RouteConfig", "SimulatedConfig",
    "TenantConfig", "Tier", "TierEndpoint", "TierupConfig", "load_config", "parse_config",
    "BatchConfig",
]


class TierupConfig(Section):
    """The whole of ``tierup.toml``."""

    #: a short name; prefixes AWS resource names and the Modal app
    project: str = Field(default="tierup", pattern=r"^[a-z][a-z0-9-]{1,30}$")
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    tiers: dict[Tier, TierEndpoint] = Field(default_factory=dict)
    simulated: SimulatedConfig = Field(default_factory=SimulatedConfig)
    routes: dict[str, RouteConfig]
    plans: dict[str, PlanConfig] = Field(default_factory=dict)
    tenants: dict[str, TenantConfig] = Field(default_factory=dict)
    budgets: BudgetsConfig = Field(default_factory=BudgetsConfig)
    pricing: PricingConfig = Field(default_factory=PricingConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    quotas: QuotaConfig = Field(default_factory=QuotaConfig)
    batch: BatchConfig = Field(default_factory=BatchConfig)

    @model_validator(mode="after")
    def _check_references(self) -> "TierupConfig":
        for name, route in self.routes.items():
            if route.model_for(route.start_tier) is None:
                raise ConfigError(f"routes.{name}.{route.start_tier}",
                                  f"the route starts on {route.start_tier} but names no model for it")
            # every dollar has a price: an unpriced model or GPU would be billed as $0, past every cap
            for tier in PER_TOKEN_TIERS:
                model = route.model_for(tier)
                if model is not None and model not in self.pricing.models:
                    raise ConfigError(f"routes.{name}.{tier}", f"model {model!r} has no price in [pricing.models]")
            if route.serverless_gpu and route.gpu not in self.pricing.gpus:
                raise ConfigError(f"routes.{name}.gpu", f"GPU {route.gpu!r} has no price in [pricing.gpus]")
            if route.default_max_tokens > route.max_tokens:
                raise ConfigError(f"routes.{name}.default-max-tokens", "is above max-tokens")
        for tenant_id, tenant in self.tenants.items():
            if tenant_id.startswith(RESERVED_TENANT_PREFIX):
                raise ConfigError(f"tenants.{tenant_id}", f"tenant ids starting with {RESERVED_TENANT_PREFIX!r} are "
                                  "reserved (the response cache's shared scope)")
            if tenant.plan not in self.plans:
                raise ConfigError(f"tenants.{tenant_id}.plan", f"unknown plan {tenant.plan!r}")
            for key in tenant.overrides:
                if key.replace("-", "_") not in PlanConfig.model_fields:
                    raise ConfigError(f"tenants.{tenant_id}.overrides.{key}", "is not a plan limit")
        for route in self.budgets.routes:
            if route not in self.routes:
                raise ConfigError(f"budgets.routes.{route}", "names no configured route")
        return self

    def plan_for(self, plan: str, tenant_id: str | None = None) -> PlanConfig:
        """The plan's limits with the tenant's overrides applied."""
        base = self.plans.get(plan) or PlanConfig()
        tenant = self.tenants.get(tenant_id) if tenant_id else None
        if not tenant or not tenant.overrides:
            return base
        overrides = {k.replace("-", "_"): v for k, v in tenant.overrides.items()}
        return base.model_copy(update=overrides)


def parse_config(data: dict) -> TierupConfig:
    """Validate a parsed TOML document; raise ``ConfigError`` naming the first bad key."""
    try:
        return TierupConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ConfigError(key, first["msg"]) from None


def config_path(explicit: str | os.PathLike | None = None) -> Path:
    """Resolve which file to load: flag, then ``TIERUP_CONFIG``, then ``./tierup.toml``."""
    chosen = explicit or os.environ.get("TIERUP_CONFIG") or "tierup.toml"
    return Path(chosen)


def load_config(path: str | os.PathLike | None = None) -> TierupConfig:
    file = config_path(path)
    try:
        raw = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"cannot read config {file}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{file} is not valid TOML: {exc}") from None
    return parse_config(data)
