"""How plan quotas are enforced (``[quotas]``): leasing, reclaim and the usage ledger."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ._base import Section


class QuotaConfig(Section):
    #: enforce the plans' limits (off: plans only bound prompt and output sizes)
    enabled: bool = True
    #: share of a limit's room left that one DynamoDB write leases to an instance; near the limit
    #: a lease shrinks to one request's need, so leasing never admits past the limit
    lease_fraction: float = Field(default=0.05, alias="lease-fraction", gt=0, le=1)
    #: a lease (or a reservation) of an instance that stopped renewing it is reclaimed after this
    lease_ttl_s: float = Field(default=15.0, alias="lease-ttl-s", ge=1)
    #: settled usage and aggregates are written, and idle leases handed back, this often
    flush_interval_s: float = Field(default=1.0, alias="flush-interval-s", gt=0)
    #: a limit found full is not asked again for this long (refusals then cost no I/O)
    refusal_recheck_s: float = Field(default=0.25, alias="refusal-recheck-s", ge=0)
    #: keep one ledger record per request in DynamoDB (besides the per-minute aggregates)
    ledger_records: bool = Field(default=True, alias="ledger-records")
    #: days ledger records and per-minute aggregates are kept
    ledger_days: int = Field(default=35, alias="ledger-days", gt=0)
    #: write what a request owes (settled quota, ledger record, aggregates, metrics) before its
    #: response completes, rather than only in the background: needed where the host freezes the
    #: process when a response ends (Lambda). ``auto``: on when ``AWS_LAMBDA_FUNCTION_NAME`` is set
    durable_before_response: bool | Literal["auto"] = Field(default="auto", alias="durable-before-response")
