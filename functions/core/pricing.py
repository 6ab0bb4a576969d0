"""What a request costs at per-token prices. No I/O here."""

from __future__ import annotations

from .chat import Usage
from .config import PricingConfig


def token_cost_usd(pricing: PricingConfig, model: str | None, usage: Usage) -> float:
    """USD for ``usage`` on ``model``; 0 for models without a per-token price (GPU tiers)."""
    price = pricing.model_price(model)
    if price is None:
        return 0.0
    return (usage.prompt_tokens * price.input_per_mtok
            + usage.completion_tokens * price.output_per_mtok) / 1_000_000
