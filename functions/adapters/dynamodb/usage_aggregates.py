"""``UsageAggregates`` on DynamoDB (``usage`` table): per-minute usage per route and per tenant.

    pk = "usage#<scope>"   sk = "m#<minute, 12 digits>"
    requests, prompt_tokens, completion_tokens, cached_tokens, cost_usd, refused, gateway_cost_usd, tier_<tier>
    s<0-5>_n, s<0-5>_p, s<0-5>_c   routes: arrivals and tokens per 10 seconds of the minute
    w_<writer>   the last flush batch of ledger <writer> applied to this item (its ``seq``)

Written with ``ADD`` (one ``UpdateItem`` per scope and minute per flush of each instance, never
per request), so instances add up without coordination; read with one ``Query``.

Idempotent (``write_marks``): each update of a batch is conditional on ``w_<writer>`` being
below the batch's ``seq`` and sets it, so a batch that is written again (after a timeout or an
error, when DynamoDB may have applied some of its rows) adds each row once. A ledger writes its
batches in order and retries a failed one before any later one.
"""

from __future__ import annotations

from ...core.ports import MinuteUsage, WriteBatch
from .numbers import number
from .storage_errors import translates_storage_errors
from .write_marks import update_once

_FIELDS = ("requests", "prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd", "refused",
           "gateway_cost_usd")
#: a route's arrivals per 10 seconds of the minute: s<0-5>_n (requests), _p (prompt), _c (completion tokens)
_TENTH_FIELDS = ("n", "p", "c")


def _pk(scope: str) -> str:
    return f"usage#{scope}"


def _sk(minute: int) -> str:
    return f"m#{minute:012d}"


class DynamoUsageAggregates:
    def __init__(self, client_factory, table: str, *, keep_days: int = 35) -> None:
        self._client_factory = client_factory
        self._table = table
        self._keep_s = keep_days * 86400

    def update_request(self, row: MinuteUsage) -> dict:
        """The ``UpdateItem`` request that adds ``row``."""
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
        for tenth, counts in sorted((row.by_10s or {}).items()):
            for field, count in zip(_TENTH_FIELDS, counts):
                if count:
                    names[f"#s{tenth}{field}"] = f"s{tenth}_{field}"
                    values[f":s{tenth}{field}"] = number(count)
                    parts.append(f"#s{tenth}{field} :s{tenth}{field}")
        values[":e"] = number(row.minute * 60 + self._keep_s)
        request = {"TableName": self._table, "Key": {"pk": {"S": _pk(row.scope)}, "sk": {"S": _sk(row.minute)}},
                   "ExpressionAttributeValues": values,
                   "UpdateExpression": ("ADD " + ", ".join(parts) + " " if parts else "") + "SET expires_at = :e"}
        if names:
            request["ExpressionAttributeNames"] = names
        return request

    @translates_storage_errors("usage")
    def add(self, rows: list[MinuteUsage], batch: WriteBatch | None = None) -> None:
        client = self._client_factory()
        for row in rows:  # a row of this batch that an earlier attempt applied adds nothing
            update_once(client, self.update_request(row), batch)

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
    by_10s: dict[int, list[int]] = {}
    for name, value in item.items():
        if len(name) == 4 and name[0] == "s" and name[1].isdigit() and name[2] == "_" and name[3] in _TENTH_FIELDS:
            by_10s.setdefault(int(name[1]), [0, 0, 0])[_TENTH_FIELDS.index(name[3])] = int(float(value["N"]))
    return MinuteUsage(minute=int(item["sk"]["S"][2:]), scope=scope, requests=int(number("requests")),
                       prompt_tokens=int(number("prompt_tokens")), completion_tokens=int(number("completion_tokens")),
                       cached_tokens=int(number("cached_tokens")), cost_usd=number("cost_usd"),
                       refused=int(number("refused")), by_tier=by_tier, by_10s=by_10s or None,
                       gateway_cost_usd=number("gateway_cost_usd"), gpu_cost_usd=number("gpu_cost_usd"))
