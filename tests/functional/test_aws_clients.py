"""AWS clients share one session: credentials are resolved once per process, not once per client.
Each resolution can cost a second or more (a ``credential_process`` such as aws-vault, SSO), and a
CLI command makes several clients (``tierup killswitch status``: DynamoDB and Lambda)."""

from __future__ import annotations

import sys

from functions.adapters.aws import AwsClients


def test_credentials_are_resolved_once_for_every_client(moto_endpoint, tmp_path, monkeypatch):
    calls = tmp_path / "calls"
    script = tmp_path / "credentials.py"
    script.write_text("import json, pathlib\n"
                      f"pathlib.Path({str(calls)!r}).open('a').write('x')\n"
                      "print(json.dumps({'Version': 1, 'AccessKeyId': 'testing', 'SecretAccessKey': 'testing'}))\n")
    aws_config = tmp_path / "aws-config"
    aws_config.write_text(f"[profile counted]\ncredential_process = {sys.executable} {script}\n")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(aws_config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_PROFILE", "counted")

    clients = AwsClients(region="us-east-1", endpoint_url=moto_endpoint)
    clients.client("dynamodb").list_tables()
    clients.client("lambda").list_functions()
    clients.client("sns").list_topics()
    assert calls.read_text() == "x"


def test_dynamodb_requests_are_left_to_dynamodb_to_validate(moto_endpoint, monkeypatch):
    """botocore's check of every parameter is off for DynamoDB (CPU per call on Lambda); a bad
    request is still refused, by DynamoDB, as a ClientError the adapters translate."""
    import pytest
    from botocore.exceptions import ClientError
    from botocore.validate import ParamValidationDecorator

    from tierup.local_stack import LOCAL_CREDENTIALS

    for name, value in LOCAL_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    client = AwsClients(region="us-east-1", endpoint_url=moto_endpoint).client("dynamodb")
    # botocore wraps its serializer in the validator when validation is on (meta.config does not say)
    assert not isinstance(client._serializer, ParamValidationDecorator)
    client.create_table(TableName="validated", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST")
    with pytest.raises(ClientError) as refused:  # :one is never given a value
        client.update_item(TableName="validated", Key={"pk": {"S": "a"}}, UpdateExpression="ADD n :one")
    assert refused.value.response["Error"]["Code"] == "ValidationException"
