"""What the config alone can tell: a price for every model a route can run on an enabled tier,
and which routes get Bedrock prompt caching.

No I/O here.
"""

from __future__ import annotations

from functions.core.config import TIERS, TierupConfig
from functions.core.prompt_cache import prompt_cache_support

from .findings import Finding, ok, problem


def check_prices(config: TierupConfig) -> list[Finding]:
    missing = []
    for route_name, route in config.routes.items():
        for tier in TIERS:
            endpoint = config.tiers.get(tier)
            model = route.model_for(tier)
            if endpoint is None or not endpoint.enabled or endpoint.provider == "simulated" or not model:
                continue
            if tier in ("serverless-gpu", "reserved"):
                if route.gpu not in config.pricing.gpus:
                    missing.append(f"[pricing.gpus.{route.gpu}] (routes.{route_name}.gpu)")
            elif config.pricing.model_price(model) is None:
                missing.append(f'[pricing.models."{model}"] (routes.{route_name}.{tier})')
    if missing:
        return [problem("prices", "no price for " + ", ".join(sorted(set(missing))),
                        "add each entry to tierup.toml under the exact id the route names")]
    return [ok("prices", "every model and GPU a route can run on has a price")]


def check_prompt_caching(config: TierupConfig) -> list[Finding]:
    """Routes whose serverless model has a prompt cache: cached, or not for want of cache prices."""
    cached, unpriced = [], []
    priced = config.pricing.prompt_cache_priced_models
    for route_name, route in config.routes.items():
        model = route.serverless
        if route.kind != "chat" or not route.prompt_caching or prompt_cache_support(model) is None:
            continue
        (cached if model in priced else unpriced).append(f"{route_name} ({model})")
    if unpriced:
        return [problem("prompt caching", "no cache prices, so no prompt caching, for " + ", ".join(unpriced),
                        "set cache-read-per-mtok and cache-write-per-mtok under [pricing.models] for each "
                        "(Amazon Bedrock pricing page), or prompt-caching = false on the route")]
    if cached:
        return [ok("prompt caching", "cache points after the stable prefix on " + ", ".join(cached))]
    return [ok("prompt caching", "no route runs a Bedrock model with a prompt cache")]
