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
