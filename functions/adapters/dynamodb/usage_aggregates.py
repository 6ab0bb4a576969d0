"""``UsageAggregates`` on DynamoDB (``usage`` table): per-minute usage per route and per tenant.

    pk = "usage#<scope>"   sk = "m#<minute, 12 digits>"
    requests, prompt_tokens, completion_tokens, cached_tokens, cost_usd, refused, tier_<tier>

Written with ``ADD`` (one ``UpdateItem`` per scope and minute per flush of each instance, never
per request), so instances add up without coordination; read with one ``Query``.
"""

from __future__ import annotations

from ...core.ports import MinuteUsage

_FIELDS = ("requests", "prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd", "refused")


def _pk(scope: str) -> str:
    return f"usage#{scope}"


def _sk(minute: int) -> str:
    return f"m#{minute:012d}"


class DynamoUsageAggregates:
    def __init__(self, client_factory, table: str, *, keep_days: int = 35) -> None:
        self._client_factory = client_factory
        self._table = table
        self._keep_s = keep_days * 86400

    def add(self, rows: list[MinuteUsage]) -> None:
        client = self._client_factory()
        for row in rows:
            names, values, parts = {}, {}, []
            for index, name in enumerate(_FIELDS):
                value = getattr(row, name)
                if value:
                    names[f"#f{index}"] = name
                    values[f":f{index}"] = {"N": repr(value) if isinstance(value, float) else str(value)}
                    parts.append(f"#f{index} :f{index}")
            for index, (tier, count) in enumerate(sorted((row.by_tier or {}).items())):
                names[f"#t{index}"] = f"tier_{tier}"
                values[f":t{index}"] = {"N": str(count)}
                parts.append(f"#t{index} :t{index}")
            values[":e"] = {"N": str(row.minute * 60 + self._keep_s)}
            expression = ("ADD " + ", ".join(parts) + " " if parts else "") + "SET expires_at = :e"
            request = {"TableName": self._table, "Key": {"pk": {"S": _pk(row.scope)}, "sk": {"S": _sk(row.minute)}},
                       "UpdateExpression": expression, "ExpressionAttributeValues": values}
            if names:
                request["ExpressionAttributeNames"] = names
            client.update_item(**request)

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
