"""The benchmarks' moto stand-in keeps a connection open between calls, as DynamoDB does, so
that a benchmark does not charge the gateway a new TCP connection per DynamoDB call."""

from __future__ import annotations

import os

from bench.gateway_process import kept_alive_moto_server
from functions.adapters.aws import AwsClients
from tierup.local_stack import LOCAL_CREDENTIALS


def test_botocore_makes_many_dynamodb_calls_over_one_connection(monkeypatch):
    for name, value in LOCAL_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    with kept_alive_moto_server() as endpoint:
        client = AwsClients.from_env({**os.environ, "TIERUP_AWS_ENDPOINT": endpoint}).client("dynamodb")
        client.create_table(TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")
        for _ in range(5):
            answer = client.update_item(TableName="t", Key={"pk": {"S": "a"}}, UpdateExpression="ADD n :one",
                                        ExpressionAttributeValues={":one": {"N": "1"}},
                                        ReturnValues="ALL_NEW", ReturnConsumedCapacity="TOTAL")
            assert answer["ResponseMetadata"]["HTTPHeaders"].get("connection") != "close"
        assert answer["Attributes"]["n"] == {"N": "5"}
        assert answer["ConsumedCapacity"]["CapacityUnits"] == 1.0  # billed as DynamoDB bills it, as moto_server
        pool = client._endpoint.http_session._manager.connection_from_url(endpoint)
        assert pool.num_connections == 1
