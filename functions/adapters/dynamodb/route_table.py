"""The route table, the policy's memory and its decision log, in the ``state`` table.

Items (all in ``functions.core.tables.STATE``):

    pk="route"           sk=ROUTE      one RouteEntry: tier, replicas, capacity, warming/release times
    pk="policy-state"    sk=ROUTE      the policy's RoutePolicyState, as JSON
    pk="decision#ROUTE"  sk=MILLIS     one decision: reason, projected savings, plan, outcome (TTL)

The route table is small (one item per route), so the gateway reads it whole with one Query.
Only the promotion executor writes route items; the gateway never writes here.
"""

from __future__ import annotations

import json
import time

from ...core.route_table import RouteEntry
from .numbers import number
from .storage_errors import translates_storage_errors

_ROUTE_PK = "route"
_STATE_PK = "policy-state"
_NUMBERS = ("replicas", "target_replicas", "max_in_flight", "since_s", "warming_since_s",
            "release_at_s", "updated_s")


def _decision_pk(route: str) -> str:
    return f"decision#{route}"


def _query_all(client, table: str, pk: str, **extra) -> list[dict]:
    items: list[dict] = []
    request = {"TableName": table, "KeyConditionExpression": "pk = :pk",
               "ExpressionAttributeValues": {":pk": {"S": pk}}, **extra}
    while True:
        page = client.query(**request)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page or "Limit" in extra:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class DynamoRouteTable:
    """``RouteTableStore`` on DynamoDB. ``client_factory`` returns a boto3 DynamoDB client."""

    def __init__(self, client_factory, table: str) -> None:
        self._client_factory = client_factory
        self._table = table

    @translates_storage_errors("route-table")
    def read_routes(self) -> dict[str, RouteEntry]:
        items = _query_all(self._client_factory(), self._table, _ROUTE_PK, ConsistentRead=True)
        entries = (_entry(item) for item in items)
        return {entry.route: entry for entry in entries}

    @translates_storage_errors("route-table")
    def write_route(self, entry: RouteEntry) -> None:
        item = {"pk": {"S": _ROUTE_PK}, "sk": {"S": entry.route}, "tier": {"S": entry.tier}}
        for name in _NUMBERS:
            value = getattr(entry, name)
            if value is not None:
                item[name] = number(value)
        self._client_factory().put_item(TableName=self._table, Item=item)


def _entry(item: dict) -> RouteEntry:
    data: dict = {"route": item["sk"]["S"], "tier": item["tier"]["S"]}
    for name in _NUMBERS:
        if name in item:
            number = float(item[name]["N"])
            data[name] = int(number) if name in ("replicas", "target_replicas", "max_in_flight") else number
    return RouteEntry.from_dict(data)


class DynamoPolicyJournal:
    """``PolicyJournal`` on DynamoDB: per-route policy state and a TTL'd log of decisions."""

    def __init__(self, client_factory, table: str, decision_ttl_s: int = 30 * 86400) -> None:
        self._client_factory = client_factory
        self._table = table
        self._ttl_s = decision_ttl_s

    def load_states(self) -> dict[str, dict]:
        items = _query_all(self._client_factory(), self._table, _STATE_PK, ConsistentRead=True)
        return {item["sk"]["S"]: json.loads(item["state"]["S"]) for item in items}

    def save_state(self, route: str, state: dict) -> None:
        self._client_factory().put_item(TableName=self._table, Item={
            "pk": {"S": _STATE_PK}, "sk": {"S": route}, "state": {"S": json.dumps(state)}})

    def record_decision(self, route: str, at_s: float, record: dict) -> None:
        self._client_factory().put_item(TableName=self._table, Item={
            "pk": {"S": _decision_pk(route)}, "sk": {"S": f"{int(at_s * 1000):015d}"},
            "reason": {"S": str(record.get("reason", ""))},
            "record": {"S": json.dumps(record)},
            "expires_at": number(int(at_s) + self._ttl_s)})

    def recent_decisions(self, route: str, limit: int = 20) -> list[dict]:
        items = _query_all(self._client_factory(), self._table, _decision_pk(route),
                           ScanIndexForward=False, Limit=limit)
        now = time.time()  # DynamoDB deletes expired items only eventually
        return [json.loads(item["record"]["S"]) for item in items
                if float(item.get("expires_at", {}).get("N", "inf")) > now]
