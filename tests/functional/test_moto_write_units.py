"""The local stand-in reports write units as DynamoDB bills them: one per KB of the larger of an
item's before and after images, at least one (moto alone answers 0.5 for every ``UpdateItem``,
which halved the gateway's metered write units on moto and in ``bench/gateway_cost.py``)."""

from __future__ import annotations

import boto3

from functions.core.tables import USAGE


def _update(client, table: str, value: str) -> float:
    answer = client.update_item(TableName=table, Key={"pk": {"S": "units-test"}, "sk": {"S": "x"}},
                                UpdateExpression="SET v = :v", ExpressionAttributeValues={":v": {"S": value}},
                                ReturnConsumedCapacity="TOTAL")
    return answer["ConsumedCapacity"]["CapacityUnits"]


def test_update_item_costs_a_write_unit_per_kb_and_at_least_one(make_runtime, moto_endpoint):
    runtime = make_runtime()
    client = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    table = runtime.table(USAGE)
    assert _update(client, table, "small") == 1.0
    assert _update(client, table, "a" * 2500) == 3.0  # 2.5 KB after
    assert _update(client, table, "tiny") == 3.0  # the larger image is the one before
