"""Budgets: spend caps, alert thresholds and what happens when a cap is reached."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ._base import Section

#: refuse requests in the scope; also drop reserved GPUs to zero; also stop the gateway function
BudgetAction = Literal["refuse", "drop-reserved", "hard-stop"]


class BudgetCap(Section):
    monthly_usd: float | None = Field(default=None, alias="monthly-usd", ge=0)
    daily_usd: float | None = Field(default=None, alias="daily-usd", ge=0)
    action: BudgetAction = "refuse"


class BudgetsConfig(Section):
    alert_emails: list[str] = Field(default_factory=list, alias="alert-emails")
    thresholds: list[float] = Field(default_factory=lambda: [0.5, 0.8, 1.0])
    #: release kill switches engaged by a cap when a new budget period starts
    auto_release_new_period: bool = Field(default=True, alias="auto-release-new-period")
    global_: BudgetCap = Field(default_factory=BudgetCap, alias="global")
    routes: dict[str, BudgetCap] = Field(default_factory=dict)
    tenants: dict[str, BudgetCap] = Field(default_factory=dict)
