"""boto3 clients, made in one place. boto3 is imported on first use, not at module import,
so that the gateway's cold start does not pay for it before it needs it.

``TIERUP_AWS_ENDPOINT`` points DynamoDB, SNS, CloudWatch, Lambda and Secrets Manager at a local
stand-in (moto server); Bedrock is never redirected.

All clients share one boto3 session, so credentials are resolved once per process: with a
``credential_process`` or SSO profile each resolution can take a second or more, and the CLI
makes several clients per command.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

_LOCAL_SERVICES = {"dynamodb", "sns", "cloudwatch", "lambda", "secretsmanager", "budgets", "logs"}


@dataclass
class AwsClients:
    region: str | None = None
    endpoint_url: str | None = None
    _clients: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _session: object | None = None

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "AwsClients":
        env = os.environ if environ is None else environ
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        return cls(region=region, endpoint_url=env.get("TIERUP_AWS_ENDPOINT") or None)

    def client(self, service: str, region: str | None = None):
        key = (service, region)
        client = self._clients.get(key)
        if client is None:
            with self._lock:
                client = self._clients.get(key)
                if client is None:
                    client = self._make(service, region)
                    self._clients[key] = client
        return client

    def _make(self, service: str, region: str | None):
        import boto3
        from botocore.config import Config

        endpoint = self.endpoint_url if service in _LOCAL_SERVICES else None
        config = Config(retries={"mode": "standard", "max_attempts": 3},
                        max_pool_connections=64, connect_timeout=2, read_timeout=60)
        if self._session is None:  # under self._lock (client() holds it)
            self._session = boto3.session.Session()
        return self._session.client(service, region_name=region or self.region, endpoint_url=endpoint,
                                    config=config)
