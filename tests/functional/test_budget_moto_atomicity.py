"""Spend caps rely on DynamoDB applying each conditional write atomically; the local endpoint
must too (moto alone loses concurrent increments; ``tierup.local_stack`` serialises its calls)."""

from __future__ import annotations

import threading

import boto3


def test_concurrent_increments_of_one_item_are_never_lost(moto_endpoint):
    client = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_table(TableName="atomicity", AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")

    def increment() -> None:
        own = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
        for _ in range(50):
            own.update_item(TableName="atomicity", Key={"pk": {"S": "k"}},
                            UpdateExpression="SET v = if_not_exists(v, :zero) + :one",
                            ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}})

    threads = [threading.Thread(target=increment) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    item = client.get_item(TableName="atomicity", Key={"pk": {"S": "k"}}, ConsistentRead=True)["Item"]
    assert item["v"]["N"] == "800"
