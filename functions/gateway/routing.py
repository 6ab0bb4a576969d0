"""Which provider serves a route on each tier, and the order tiers are tried in.

``StaticRouter`` serves each route from its configured start tier and falls back, on a
provider error, to the serverless tier and then to overflow (when enabled).
"""

from __future__ import annotations

from collections.abc import Callable

from ..core.config import Tier, TierupConfig
from ..core.context import RequestContext
from ..core.ports import ChatProvider, Target

ProviderFactory = Callable[[Tier, str], ChatProvider | None]


class ProviderRegistry:
    """One provider per (tier, route), built on first use and kept for the process's life."""

    def __init__(self, config: TierupConfig, factory: ProviderFactory) -> None:
        self._config = config
        self._factory = factory
        self._providers: dict[tuple[Tier, str], ChatProvider | None] = {}

    def get(self, tier: Tier, route: str) -> ChatProvider | None:
        key = (tier, route)
        if key not in self._providers:
            endpoint = self._config.tiers.get(tier)
            if endpoint is None or not endpoint.enabled:
                self._providers[key] = None
            else:
                self._providers[key] = self._factory(tier, route)
        return self._providers[key]

    def target(self, tier: Tier, route: str) -> Target | None:
        model = self._config.routes[route].model_for(tier)
        provider = self.get(tier, route) if model else None
        return Target(tier=tier, provider=provider, model=model) if provider and model else None

    async def close(self) -> None:
        for provider in self._providers.values():
            if provider is not None:
                await provider.close()


def fallback_order(first: Tier) -> list[Tier]:
    order: list[Tier] = [first]
    for tier in ("serverless", "overflow"):
        if tier not in order:
            order.append(tier)
    return order


class StaticRouter:
    def __init__(self, registry: ProviderRegistry) -> None:
        self._registry = registry

    def targets(self, ctx: RequestContext) -> list[Target]:
        found = (self._registry.target(tier, ctx.route_name) for tier in fallback_order(ctx.route.start_tier))
        return [t for t in found if t is not None]

    def report(self, target: Target, ok: bool) -> None:
        return None
