"""What a request costs at per-token prices. No I/O here.

Prompt tokens read from or written to a provider's prompt cache are billed at the model's own
cache rates (``usage_cost_usd``), wherever usage is priced: dollar quotas, spend caps, the ledger.

Only the per-token tiers (``serverless``, ``overflow``) are priced here, always by the model id
the route configures for the tier (never the id a provider reports back: an OpenAI-compatible
upstream may answer ``gpt-4o-mini-2024-07-18`` for ``gpt-4o-mini``). The GPU tiers cost nothing
per token: their GPU seconds are billed by the traffic policy (``functions/promotion/gpu_spend.py``).
A per-token model without a price is an error, never $0: config validation refuses it at start-up,
and should one get through (a config built without validation), the request is refused before
any provider is called.
"""

from __future__ import annotations

from .chat import Usage
from .config import PER_TOKEN_TIERS, ModelPrice, PricingConfig
from .errors import UnpricedModelError


def token_price(pricing: PricingConfig, tier: str | None, model: str | None) -> ModelPrice | None:
    """The per-token price of ``model`` on ``tier``; None on a GPU tier (billed per second)."""
    if tier not in PER_TOKEN_TIERS:
        return None
    price = pricing.model_price(model)
    if price is None:
        raise UnpricedModelError(f"model {model!r} of the {tier} tier has no price in [pricing.models]; "
                                 "the request is refused rather than billed at $0")
    return price


def token_cost_usd(pricing: PricingConfig, tier: str | None, model: str | None, usage: Usage) -> float:
    """USD for ``usage`` on ``model`` served by ``tier``; 0 on a GPU tier (billed per second)."""
    price = token_price(pricing, tier, model)
    if price is None:
        return 0.0
    return usage_cost_usd(price, usage)


def usage_cost_usd(price: ModelPrice, usage: Usage) -> float:
    """USD for ``usage`` at ``price``: the prompt tokens read from or written to the provider's
    prompt cache at their own rates (both are counted inside ``prompt_tokens``), the rest of the
    prompt at the input rate, the answer at the output rate."""
    read = min(usage.cached_tokens, usage.prompt_tokens)
    written = min(usage.cache_write_tokens, usage.prompt_tokens - read)
    plain = usage.prompt_tokens - read - written
    return (plain * price.input_per_mtok + read * price.cache_read_rate + written * price.cache_write_rate
            + usage.completion_tokens * price.output_per_mtok) / 1_000_000


def batch_token_cost_usd(pricing: PricingConfig, model: str, usage: Usage) -> float | None:
    """USD for ``usage`` in a Bedrock batch job on ``model``; ``None`` when it has no batch price."""
    price = pricing.model_price(model)
    if price is None or price.batch_input_per_mtok is None or price.batch_output_per_mtok is None:
        return None
    return (usage.prompt_tokens * price.batch_input_per_mtok
            + usage.completion_tokens * price.batch_output_per_mtok) / 1_000_000
