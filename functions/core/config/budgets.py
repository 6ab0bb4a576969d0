"""Budgets (``[budgets]``): spend caps, alert thresholds and what happens when a cap is reached.

Caps are in USD at the prices of ``[pricing]``, per calendar month and optionally per day (UTC).
A scope is the whole gateway (``[budgets.global]``), one route (``[budgets.routes.NAME]``) or one
tenant (``[budgets.tenants.ID]``).

No I/O here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from ._base import Section

#: at 100% of a cap: refuse requests in the scope; also drop reserved GPUs to zero; also set the
#: gateway function's reserved concurrency to zero (each action includes the ones before it)
BudgetAction = Literal["refuse", "drop-reserved", "hard-stop"]
BUDGET_ACTIONS: tuple[BudgetAction, ...] = ("refuse", "drop-reserved", "hard-stop")
#: AWS Budgets takes at most 5 notifications per budget; the stack adds one for the forecast
MAX_THRESHOLDS = 4


class BudgetCap(Section):
    """One scope's caps; ``None`` means no cap for that period."""

    monthly_usd: float | None = Field(default=None, alias="monthly-usd", ge=0)
    daily_usd: float | None = Field(default=None, alias="daily-usd", ge=0)
    action: BudgetAction = "refuse"


class BudgetsConfig(Section):
    #: addresses subscribed (by the CDK stack) to the alert topic; each must confirm once
    alert_emails: list[str] = Field(default_factory=list, alias="alert-emails")
    #: fractions of a cap at which one alert is sent per period (1.0 also engages the kill switch)
    thresholds: list[float] = Field(default_factory=lambda: [0.5, 0.8, 1.0])
    #: the monthly-pace alarms (24 h spend over 3x a monthly cap's even daily share) also engage
    #: the scope's kill switch; by default they only alert, so a good launch day stops nothing
    pace_kill_switch: bool = Field(default=False, alias="pace-kill-switch")
    #: kill switches engaged by a cap release themselves when the cap's period ends
    auto_release_new_period: bool = Field(default=True, alias="auto-release-new-period")
    #: seconds between re-reads of kill-switch flags by each gateway instance (a flag set by the
    #: CLI or the kill-switch function is honoured within this); one DynamoDB query per period
    flag_refresh_s: float = Field(default=3.0, alias="flag-refresh-s", gt=0, le=10)
    #: each instance leases spend in blocks of at most this fraction of a cap's remaining room
    #: (fewer DynamoDB writes far from the cap; blocks shrink to one request's estimate near it)
    lease_fraction: float = Field(default=0.02, alias="lease-fraction", gt=0, le=1)
    #: and never more than this many USD per block
    lease_max_usd: float = Field(default=0.05, alias="lease-max-usd", gt=0)
    #: spend caps count what serving a request cost the gateway itself (Lambda duration and
    #: requests, DynamoDB units, log ingestion) besides the model's tokens: the same bill
    include_gateway_cost: bool = Field(default=True, alias="include-gateway-cost")
    global_: BudgetCap = Field(default_factory=BudgetCap, alias="global")
    routes: dict[str, BudgetCap] = Field(default_factory=dict)
    tenants: dict[str, BudgetCap] = Field(default_factory=dict)

    @field_validator("thresholds")
    @classmethod
    def _thresholds_are_fractions(cls, value: list[float]) -> list[float]:
        for threshold in value:
            if not 0 < threshold <= 1:
                raise ValueError(f"{threshold} is not a fraction of a cap in (0, 1]")
        if len(set(value)) > MAX_THRESHOLDS:
            raise ValueError(f"at most {MAX_THRESHOLDS} thresholds: AWS Budgets takes 5 notifications per "
                             "budget and the forecast at 100% is one of them")
        return sorted(set(value))

    @field_validator("alert_emails")
    @classmethod
    def _emails_look_like_emails(cls, value: list[str]) -> list[str]:
        for address in value:
            local, _, domain = address.partition("@")
            if not local or "." not in domain:
                raise ValueError(f"{address!r} is not an email address")
        return value

    def cap_for(self, scope: str) -> BudgetCap | None:
        """The caps of ``global``, ``route:NAME`` or ``tenant:ID``; None if the scope has none."""
        if scope == "global":
            return self.global_
        kind, _, name = scope.partition(":")
        if kind == "route":
            return self.routes.get(name)
        if kind == "tenant":
            return self.tenants.get(name)
        return None
