"""``CounterStore`` on DynamoDB (``usage`` table): one item per counter, conditional writes.

    pk = <counter key>    sk = "counter"    v = total    expires_at = TTL
    w_<writer>   the last numbered write of <writer> applied (``write_marks``)

``try_add`` is one ``UpdateItem`` whose condition ``v <= limit - amount`` makes the check and the
add one atomic step, so no interleaving of writers across any number of instances passes the
limit. An item whose ``expires_at`` has passed reads as 0 and is restarted by the next write
(TTL deletes items only eventually).

A write given a ``WriteBatch`` is applied once however often it is sent: sent again after its
answer was lost, it answers as it would have the first time (``try_add``: admitted) without
adding again.
"""

from __future__ import annotations

import time

from ...core.ports import WriteBatch
from .numbers import number
from .storage_errors import translates_storage_errors
from .write_marks import update_once

SORT_KEY = "counter"


def _number(item: dict, name: str) -> float:
    value = item.get(name)
    return float(value["N"]) if value else 0.0


class DynamoCounterStore:
    def __init__(self, client_factory, table: str, *, clock=time.time) -> None:
        self._client_factory = client_factory
        self._table = table
        self._clock = clock

    def _key(self, key: str) -> dict:
        return {"pk": {"S": key}, "sk": {"S": SORT_KEY}}

    def _update(self, key: str, amount: float, expires_at: int, room: float | None,
                batch: WriteBatch | None) -> tuple[bool, float]:
        condition = "(attribute_not_exists(expires_at) OR expires_at > :now)"
        values = {":a": number(amount), ":e": number(int(expires_at)), ":now": number(int(self._clock()))}
        if room is not None:
            condition += " AND (attribute_not_exists(v) OR v <= :room)"
            values[":room"] = number(room)
        applied, item = update_once(self._client_factory(), {
            "TableName": self._table, "Key": self._key(key), "UpdateExpression": "ADD v :a SET expires_at = :e",
            "ConditionExpression": condition, "ExpressionAttributeValues": values, "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}, batch)
        if not applied and item and _number(item, "expires_at") <= self._clock():
            return self._restart(key, amount, expires_at, room, batch)
        return applied, _number(item, "v")

    def _restart(self, key: str, amount: float, expires_at: int, room: float | None,
                 batch: WriteBatch | None) -> tuple[bool, float]:
        """The item outlived its TTL: start it again from ``amount`` (if that fits at all)."""
        if room is not None and room < 0:
            return False, 0.0
        applied, _ = update_once(self._client_factory(), {
            "TableName": self._table, "Key": self._key(key), "UpdateExpression": "SET v = :a, expires_at = :e",
            "ConditionExpression": "expires_at <= :now",
            "ExpressionAttributeValues": {":a": number(amount), ":e": number(int(expires_at)),
                                          ":now": number(int(self._clock()))}}, batch)
        if not applied:  # another writer restarted it first
            return self._update(key, amount, expires_at, room, batch)
        return True, float(amount)

    @translates_storage_errors("spend")
    def try_add(self, key: str, amount: float, limit: float, expires_at: int,
                batch: WriteBatch | None = None) -> tuple[bool, float]:
        return self._update(key, amount, expires_at, limit - amount, batch)

    @translates_storage_errors("spend")
    def add(self, key: str, amount: float, expires_at: int, batch: WriteBatch | None = None) -> float:
        return self._update(key, amount, expires_at, None, batch)[1]

    @translates_storage_errors("spend")
    def read(self, keys: list[str]) -> dict[str, float]:
        found = {key: 0.0 for key in keys}
        now = self._clock()
        client = self._client_factory()
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 100):
            request = {self._table: {"Keys": [self._key(k) for k in unique[start:start + 100]],
                                     "ConsistentRead": True}}
            while request:
                response = client.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self._table, []):
                    if _number(item, "expires_at") > now or "expires_at" not in item:
                        found[item["pk"]["S"]] = _number(item, "v")
                request = response.get("UnprocessedKeys") or None
        return found
