"""Wiring the response cache into the gateway: which embedder, which store, which hooks.

The composition root calls ``wire_cache`` once; ``choose_embedder`` is also what the deploy-time
tests read to see which embedder a region gets.
"""

from __future__ import annotations

import asyncio

from ..core.ports import Embedder
from .response_cache import TieredResponseCache


def choose_embedder(runtime, provider_override: str | None) -> Embedder | None:
    """The embedder ``[cache] embedder`` names; None when no route uses the semantic cache."""
    config = runtime.config
    if not any(route.cache.semantic for route in config.routes.values()):
        return None
    choice = config.cache.embedder
    if choice == "auto":
        choice = "local" if provider_override == "simulated" else "titan"
    if choice == "local":
        from ..adapters.embeddings_local import shared_local_embedder

        return shared_local_embedder()
    from ..adapters.embeddings_titan import TitanEmbedder
    from ..core.config.cache import titan_region

    region = titan_region(config)  # the region the stack grants Titan in (infra/bedrock_access.py)
    return TitanEmbedder(model_id=config.cache.titan_model, dimensions=config.cache.titan_dimensions,
                         client_factory=lambda: runtime.aws.client("bedrock-runtime", region))


def wire_cache(runtime, parts, provider_override: str | None = None) -> TieredResponseCache | None:
    """Set ``parts.cache`` (the composition root calls this once); None if no route caches."""
    from ..adapters.dynamodb.cache import DynamoCacheStore
    from ..core.tables import CACHE

    routes = runtime.config.routes.values()
    if not any(r.kind == "chat" and (r.cache.exact or r.cache.semantic) for r in routes):
        return None
    embedder = choose_embedder(runtime, provider_override)
    metrics = None
    if any(r.cache.max_wrong_hit_rate is not None for r in routes):
        from ..adapters.emf_metrics import EmfMetrics, metrics_namespace

        # the same switch as the ledger's metrics: on Lambda, or when asked for locally
        if runtime.environ.get("AWS_LAMBDA_FUNCTION_NAME") or runtime.environ.get("TIERUP_EMF") == "stdout":
            metrics = EmfMetrics(metrics_namespace(runtime.config.project))
    cache = TieredResponseCache(runtime.config, DynamoCacheStore(runtime.dynamodb, runtime.table(CACHE)), embedder,
                                metrics=metrics)
    parts.cache = cache
    load = getattr(embedder, "load", None)
    if load is not None:
        async def load_embedder() -> None:
            await asyncio.to_thread(load)

        parts.on_startup.append(load_embedder)
    parts.on_shutdown.append(cache.stats.flush)
    parts.on_shutdown.append(cache.calibration.flush)
    return cache
