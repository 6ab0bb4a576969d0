"""boto3 clients, made in one place. boto3 is imported on first use, not at module import,
so that the gateway's cold start does not pay for it before it needs it.

``TIERUP_AWS_ENDPOINT`` points DynamoDB, SNS, CloudWatch, Lambda, Secrets Manager, S3 and SQS (among
others: ``_LOCAL_SERVICES``) at a local stand-in (moto server); Bedrock is never redirected.

Each service's timeouts and retries are set in ``SERVICE_CONFIG``. DynamoDB is on the request
path (API keys, kill-switch flags, quota and spend counters), so its calls are bounded: a store
that stops answering costs a request about ``STORAGE_CALL_BOUND_S``, never a hang. Its calls
are not retried by botocore: a write that timed out may have been applied, and repeating an
``ADD`` would count it twice; the caller decides (a request gets a 503 with Retry-After, a
background flush retries what is idempotent). Every DynamoDB call's outcome is reported to
``AwsClients.health`` (``/health`` shows a store that stopped answering).

A model call (``bedrock-runtime``) is made once, never retried by botocore: its standard retries
repeat read timeouts, dropped connections and 5xx answers, which can come after the model started
generating, and so bill one answer twice. Its read timeout is the gateway's provider-timeout-s.
The Bedrock provider itself retries only what provably never reached the model.

All clients share one boto3 session, so credentials are resolved once per process: with a
``credential_process`` or SSO profile each resolution can take a second or more, and the CLI
makes several clients per command.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from ..core.dependency_health import DependencyHealth
from ..core.gateway_cost import GatewayUnits
from ..core.gateway_meter import GatewayMeter

_LOCAL_SERVICES = {"dynamodb", "sns", "cloudwatch", "lambda", "secretsmanager", "budgets", "logs", "s3", "sqs",
                   "cloudformation", "sts"}
#: services whose calls run a model: a repeated call may be a second, billed generation
_MODEL_SERVICES = {"bedrock-runtime"}


def model_client_config(read_timeout_s: float):
    """botocore config for a model service: one attempt, reads waiting up to ``read_timeout_s``."""
    from botocore.config import Config

    # total_max_attempts counts the first call; botocore's max_attempts counts retries only (1 = 2 calls)
    return Config(retries={"mode": "standard", "total_max_attempts": 1}, max_pool_connections=64,
                  connect_timeout=2, read_timeout=read_timeout_s)

#: botocore settings for every service not named in SERVICE_CONFIG
DEFAULT_CONFIG = {"retries": {"mode": "standard", "max_attempts": 3}, "connect_timeout": 2, "read_timeout": 60}
#: per-service botocore settings (merged over DEFAULT_CONFIG)
SERVICE_CONFIG: dict[str, dict] = {
    # DynamoDB answers in milliseconds; a connect or a read this slow means it is not answering.
    # Its requests are built by the adapters, never from a client's raw input, and DynamoDB
    # validates each one itself (a ValidationException), so botocore's own check of every
    # parameter is skipped: it is about a tenth of a call's CPU, and a request writes several
    # times on Lambda, where CPU is billed by the millisecond (bench/gateway_cost.py).
    "dynamodb": {"retries": {"mode": "standard", "total_max_attempts": 1}, "connect_timeout": 0.5, "read_timeout": 1.5,
                 "parameter_validation": False},
}
#: the longest one DynamoDB call can take before botocore gives up (connect + read)
STORAGE_CALL_BOUND_S = 2.0
#: services whose call outcomes are reported to ``AwsClients.health``
_WATCHED_SERVICES = {"dynamodb"}


def service_config(service: str) -> dict:
    return {**DEFAULT_CONFIG, **SERVICE_CONFIG.get(service, {})}


@dataclass
class AwsClients:
    region: str | None = None
    endpoint_url: str | None = None
    health: DependencyHealth = field(default_factory=DependencyHealth)
    #: how long a model call may wait on a read (the gateway's provider-timeout-s)
    model_timeout_s: float = 120.0
    #: counts each DynamoDB call's request units toward the gateway's own cost (None: not counted)
    meter: GatewayMeter | None = None
    _clients: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _session: object | None = None

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

    def _session_once(self):
        import boto3

        if self._session is None:  # under self._lock (client() holds it)
            self._session = boto3.session.Session()
        return self._session

    def _make(self, service: str, region: str | None):
        from botocore.config import Config

        endpoint = self.endpoint_url if service in _LOCAL_SERVICES else None
        if service in _MODEL_SERVICES:
            config = model_client_config(self.model_timeout_s)
        else:
            config = Config(max_pool_connections=64, **service_config(service))
        client = self._session_once().client(service, region_name=region or self.region,
                                          endpoint_url=endpoint, config=config)
        if service in _WATCHED_SERVICES:
            watch_outcomes(client, service, self.health)
        if service == "dynamodb":
            from .dynamodb.consumed_capacity import count_consumed_capacity

            count_consumed_capacity(client, self._storage_counter)
        return client

    def _storage_counter(self):
        """Where a DynamoDB call's units go now (looked up per call: a meter may be set later)."""
        meter = self.meter
        if meter is None:
            return None
        return lambda reads, writes: meter.count(GatewayUnits(read_units=reads, write_units=writes))


def watch_outcomes(client, name: str, health: DependencyHealth) -> None:
    """Report each call's outcome to ``health``: an answer (a conditional check that failed
    included) is a success; a 5xx, throttling, a timeout or a refused connection is a failure."""

    def answered(http_response=None, parsed=None, **_) -> None:
        status = getattr(http_response, "status_code", 200)
        code = ((parsed or {}).get("Error") or {}).get("Code", "")
        if status >= 500 or "Throttl" in code or code == "ProvisionedThroughputExceededException":
            health.failed(name, f"HTTP {status} {code}".strip())
        else:
            health.succeeded(name)

    def not_answered(exception=None, **_) -> None:
        health.failed(name, f"{type(exception).__name__}: {exception}")

    service_id = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"after-call.{service_id}", answered)
    client.meta.events.register(f"after-call-error.{service_id}", not_answered)
