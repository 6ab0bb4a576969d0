"""Plans and tenants: the limits each API key is held to."""

from __future__ import annotations

from pydantic import Field

from ._base import Section


class PlanConfig(Section):
    """``[plans.NAME]``: every limit is per tenant; ``None`` means unlimited."""

    requests_per_minute: int | None = Field(default=None, alias="requests-per-minute", gt=0)
    tokens_per_minute: int | None = Field(default=None, alias="tokens-per-minute", gt=0)
    tokens_per_day: int | None = Field(default=None, alias="tokens-per-day", gt=0)
    max_prompt_tokens: int | None = Field(default=None, alias="max-prompt-tokens", gt=0)
    max_output_tokens: int | None = Field(default=None, alias="max-output-tokens", gt=0)
    max_concurrent: int | None = Field(default=None, alias="max-concurrent", gt=0)
    monthly_budget_usd: float | None = Field(default=None, alias="monthly-budget-usd", ge=0)


class TenantConfig(Section):
    """``[tenants.ID]``: a tenant's plan plus optional per-limit overrides."""

    plan: str
    overrides: dict[str, float | int | None] = Field(default_factory=dict)
