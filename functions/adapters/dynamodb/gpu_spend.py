"""``GpuSpendLedger`` on DynamoDB (``usage`` table): GPU time written as spend, once per interval.

    pk = "gpu-billed#<route>"   sk = "cursor"    until = first unbilled minute

One ``TransactWriteItems`` per charge moves the cursor (conditioned on it still being where the
charge starts) and adds the charge to the same items the gateway writes: the spend counters
(``spend#SCOPE#PERIOD`` / ``counter``, attribute ``v``, as ``DynamoCounterStore``) and the route's
per-minute usage aggregates (``usage#route:NAME`` / ``m#MINUTE``: ``cost_usd``, plus ``gpu_s`` and
``gpu_cost_usd``, the GPU's share of ``cost_usd``, so reports can show model and GPU apart).
All or nothing: a policy run retried after a failure, or two runs at once, bill an interval once.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from ...core.gpu_spend import GpuCharge
from .counters import SORT_KEY as COUNTER_SORT_KEY
from .numbers import number
from .usage_aggregates import _pk as usage_pk
from .usage_aggregates import _sk as usage_sk

CURSOR_SORT_KEY = "cursor"
#: usage rows outlive their minute by this long (as the gateway's aggregates do by default)
USAGE_KEEP_S = 35 * 86400


def _cursor_key(route: str) -> dict:
    return {"pk": {"S": f"gpu-billed#{route}"}, "sk": {"S": CURSOR_SORT_KEY}}


class DynamoGpuSpendLedger:
    def __init__(self, client_factory, table: str) -> None:
        self._client_factory = client_factory
        self._table = table

    def billed_until(self, route: str) -> int | None:
        item = self._client_factory().get_item(TableName=self._table, Key=_cursor_key(route),
                                               ConsistentRead=True).get("Item")
        return int(item["until"]["N"]) if item and "until" in item else None

    def record(self, charge: GpuCharge, amounts: dict[str, tuple[float, int]]) -> bool:
        cursor = {"Update": {
            "TableName": self._table, "Key": _cursor_key(charge.route), "UpdateExpression": "SET #u = :to",
            "ConditionExpression": "attribute_not_exists(#u) OR #u = :from",
            "ExpressionAttributeNames": {"#u": "until"},
            "ExpressionAttributeValues": {":to": {"N": str(charge.to_minute)},
                                          ":from": {"N": str(charge.from_minute)}}}}
        items = [cursor]
        for key, (usd, expires_at) in sorted(amounts.items()):
            items.append({"Update": {
                "TableName": self._table, "Key": {"pk": {"S": key}, "sk": {"S": COUNTER_SORT_KEY}},
                "UpdateExpression": "ADD v :a SET expires_at = if_not_exists(expires_at, :e)",
                "ExpressionAttributeValues": {":a": number(usd), ":e": {"N": str(int(expires_at))}}}})
        scope = f"route:{charge.route}"
        for minute in charge.minutes:
            items.append({"Update": {
                "TableName": self._table, "Key": {"pk": {"S": usage_pk(scope)}, "sk": {"S": usage_sk(minute.minute)}},
                "UpdateExpression": "ADD cost_usd :c, gpu_cost_usd :c, gpu_s :g "
                                    "SET expires_at = if_not_exists(expires_at, :e)",
                "ExpressionAttributeValues": {":c": number(minute.usd), ":g": number(minute.gpu_seconds),
                                              ":e": {"N": str(minute.minute * 60 + USAGE_KEEP_S)}}}})
        client = self._client_factory()
        try:
            client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = exc.response.get("CancellationReasons") or []
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return False  # the cursor moved: this interval is billed already
            raise
        return True
