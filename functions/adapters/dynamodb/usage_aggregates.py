"""``UsageAggregates`` on DynamoDB (``usage`` table): per-minute usage per route and per tenant.

    pk = "usage#<scope>"   sk = "m#<minute, 12 digits>"
    requests, prompt_tokens, completion_tokens, cached_tokens, cost_usd, refused, tier_<tier>
    w_<writer>   the last flush batch of ledger <writer> applied to this item (its ``seq``)

Written with ``ADD`` (one ``UpdateItem`` per scope and minute per flush of each instance, never
per request), so instances add up without coordination; read with one ``Query``.

Idempotent: each update of a batch is conditional on ``w_<writer>`` being below the batch's
``seq`` and sets it in the same update, so a batch that is written again (after a timeout or an
error, when DynamoDB may have applied some of its rows) adds each row once; a failed condition
means "already applied". A ledger writes its batches in order and retries a failed one before
any later one, so one number per writer suffices (a set of batch ids would grow with every
flush). The price: about 20 bytes per instance that wrote to the same minute of the same scope.
"""

from __future__ import annotations

import re

from botocore.exceptions import ClientError

from ...core.ports import MinuteUsage, WriteBatch
from .counters import _conditional_failed
from .numbers import number
from .storage_errors import translates_storage_errors

_FIELDS = ("requests", "prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd", "refused")
_WRITER = re.compile(r"^[A-Za-z0-9]{1,40}$")


def _pk(scope: str) -> str:
    return f"usage#{scope}"


def _sk(minute: int) -> str:
    return f"m#{minute:012d}"


class DynamoUsageAggregates:
    def __init__(self, client_factory, table: str, *, keep_days: int = 35) -> None:
        self._client_factory = client_factory
        self._table = table
        self._keep_s = keep_days * 86400

    def update_request(self, row: MinuteUsage, batch: WriteBatch | None = None) -> dict:
        """The ``UpdateItem`` request that adds ``row`` (once per ``batch``, when one is given)."""
        names, values, parts = {}, {}, []
        for index, name in enumerate(_FIELDS):
            value = getattr(row, name)
            if value:
                names[f"#f{index}"] = name
                values[f":f{index}"] = number(value)
                parts.append(f"#f{index} :f{index}")
        for index, (tier, count) in enumerate(sorted((row.by_tier or {}).items())):
            names[f"#t{index}"] = f"tier_{tier}"
            values[f":t{index}"] = number(count)
            parts.append(f"#t{index} :t{index}")
        values[":e"] = number(row.minute * 60 + self._keep_s)
        sets = "SET expires_at = :e"
        request = {"TableName": self._table, "Key": {"pk": {"S": _pk(row.scope)}, "sk": {"S": _sk(row.minute)}},
                   "ExpressionAttributeValues": values}
        if batch is not None:
            if not _WRITER.match(batch.writer):
                raise ValueError(f"writer id {batch.writer!r} must be 1-40 letters or digits")
            names["#w"] = f"w_{batch.writer}"
            values[":seq"] = number(batch.seq)
            sets += ", #w = :seq"
            request["ConditionExpression"] = "attribute_not_exists(#w) OR #w < :seq"
        request["UpdateExpression"] = ("ADD " + ", ".join(parts) + " " if parts else "") + sets
        if names:
            request["ExpressionAttributeNames"] = names
        return request

    @translates_storage_errors("usage")
    def add(self, rows: list[MinuteUsage], batch: WriteBatch | None = None) -> None:
        client = self._client_factory()
        for row in rows:
            try:
                client.update_item(**self.update_request(row, batch))
            except ClientError as exc:
                if batch is None or not _conditional_failed(exc):
                    raise
                # this row of this batch was applied by an earlier attempt: nothing to add

    @translates_storage_errors("usage")
    def minutes(self, scope: str, since_minute: int, until_minute: int) -> list[MinuteUsage]:
        client = self._client_factory()
        found: list[MinuteUsage] = []
        request = {"TableName": self._table, "KeyConditionExpression": "pk = :pk AND sk BETWEEN :a AND :b",
                   "ExpressionAttributeValues": {":pk": {"S": _pk(scope)}, ":a": {"S": _sk(since_minute)},
                                                 ":b": {"S": _sk(until_minute)}},
                   "ConsistentRead": True}
        while True:
            response = client.query(**request)
            found.extend(_row(scope, item) for item in response["Items"])
            if "LastEvaluatedKey" not in response:
                return found
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _row(scope: str, item: dict) -> MinuteUsage:
    def number(name: str) -> float:
        return float(item[name]["N"]) if name in item else 0.0

    by_tier = {name[5:]: int(float(value["N"])) for name, value in item.items() if name.startswith("tier_")}
    return MinuteUsage(minute=int(item["sk"]["S"][2:]), scope=scope, requests=int(number("requests")),
                       prompt_tokens=int(number("prompt_tokens")), completion_tokens=int(number("completion_tokens")),
                       cached_tokens=int(number("cached_tokens")), cost_usd=number("cost_usd"),
                       refused=int(number("refused")), by_tier=by_tier)
