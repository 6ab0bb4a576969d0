"""boto3 clients, made in one place. boto3 is imported on first use, not at module import,
so that the gateway's cold start does not pay for it before it needs it.

``TIERUP_AWS_ENDPOINT`` points DynamoDB, SNS, CloudWatch, Lambda and Secrets Manager at a local
stand-in (moto server); Bedrock is never redirected.

A model call (``bedrock-runtime``) is made once, never retried by botocore: its standard retries
repeat read timeouts, dropped connections and 5xx answers, which can come after the model started
generating, and so bill one answer twice. Its read timeout is the gateway's provider-timeout-s.
The Bedrock provider itself retries only what provably never reached the model.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

_LOCAL_SERVICES = {"dynamodb", "sns", "cloudwatch", "lambda", "secretsmanager", "budgets", "logs"}
#: services whose calls run a model: a repeated call may be a second, billed generation
_MODEL_SERVICES = {"bedrock-runtime"}


def model_client_config(read_timeout_s: float):
    """botocore config for a model service: one attempt, reads waiting up to ``read_timeout_s``."""
    from botocore.config import Config

    # total_max_attempts counts the first call; botocore's max_attempts counts retries only (1 = 2 calls)
    return Config(retries={"mode": "standard", "total_max_attempts": 1}, max_pool_connections=64,
                  connect_timeout=2, read_timeout=read_timeout_s)


@dataclass
class AwsClients:
    region: str | None = None
    endpoint_url: str | None = None
    #: how long a model call may wait on a read (the gateway's provider-timeout-s)
    model_timeout_s: float = 120.0
    _clients: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_env(cls, environ: dict | None = None, *, model_timeout_s: float = 120.0) -> "AwsClients":
        env = os.environ if environ is None else environ
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        return cls(region=region, endpoint_url=env.get("TIERUP_AWS_ENDPOINT") or None,
                   model_timeout_s=model_timeout_s)

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
        if service in _MODEL_SERVICES:
            config = model_client_config(self.model_timeout_s)
        return boto3.session.Session().client(service, region_name=region or self.region,
                                              endpoint_url=endpoint, config=config)
