"""What the config alone can tell: a price for every model a route can run on an enabled tier.

No I/O here.
"""

from __future__ import annotations

from functions.core.config import TIERS, TierupConfig

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
