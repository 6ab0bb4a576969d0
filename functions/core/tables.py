"""The DynamoDB tables, as plain data: the CDK stack and `tierup dev` both build from these.

Every table has string keys ``pk`` (partition) and, except ``keys``, ``sk`` (sort), so each
concern can keep several item types in its one table. ``expires_at`` (epoch seconds) is the
TTL attribute where items expire; readers must still ignore expired items, because DynamoDB
deletes them only eventually.

No I/O here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class IndexSpec:
    name: str
    partition_key: str
    sort_key: str | None = None


@dataclass(frozen=True)
class TableSpec:
    #: logical name; the physical name is ``{project}-{name}`` locally (``tierup dev``, moto) and
    #: CloudFormation's on AWS, where the environment (``TIERUP_TABLE_*``) carries it
    name: str
    partition_key: str = "pk"
    sort_key: str | None = "sk"
    ttl_attribute: str | None = "expires_at"
    indexes: tuple[IndexSpec, ...] = ()
    purpose: str = ""


KEYS = TableSpec("keys", sort_key=None,
                 purpose="API keys by SHA-256 hash, each mapped to a tenant and a plan (no key expires "
                         "today; the TTL lets one carry an expires_at without a table change)")
USAGE = TableSpec("usage", purpose="quota and spend counters with their leases, per-minute usage "
                                    "aggregates and per-request ledger records")
CACHE = TableSpec("cache", purpose="exact and semantic response cache")
STATE = TableSpec("state", purpose="route table, kill-switch flags, policy decisions, alerts, audit, "
                                    "stored Responses API responses")

TABLES: tuple[TableSpec, ...] = (KEYS, USAGE, CACHE, STATE)


def table_env_var(spec: TableSpec) -> str:
    """The environment variable that carries a table's physical name (set by the CDK stack)."""
    return f"TIERUP_TABLE_{spec.name.upper()}"


def table_name(spec: TableSpec, project: str = "tierup", environ: dict | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get(table_env_var(spec)) or f"{project}-{spec.name}"
