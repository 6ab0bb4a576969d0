"""The gateway's own limits (``[gateway]``)."""

from __future__ import annotations

from pydantic import Field, model_validator

from ._base import Section
from .gateway_container import ContainerConfig, Hosting, check_hosting

#: concurrent executions that alarm when no reservation bounds the gateway: far above a startup's
#: steady traffic, well below the usual account quota of 1,000
DEFAULT_CONCURRENCY_ALARM = 100
#: ``bench/gateway_cost.py``: the smallest size (16 MB steps) with a quarter of itself above the
#: gateway's ~112 MB peak and its critical-path CPU (~12 ms a request: before the provider's call and
#: after its last token) within 150 ms on the size's share of a vCPU (~140 ms at 160 MB); the rest of
#: its CPU runs while the model generates. Every larger size costs more in proportion to its memory,
#: and buys nothing while a model generates
DEFAULT_LAMBDA_MEMORY_MB = 160


class GatewayConfig(Section):
    #: where the ASGI app runs: ``lambda`` (Function URL) or ``container`` (ECS Fargate behind an
    #: HTTPS load balancer, ``[gateway.container]``); see gateway_container.py
    hosting: Hosting = "lambda"
    container: ContainerConfig = Field(default_factory=ContainerConfig)
    #: request bodies over this are refused with 413
    max_body_bytes: int = Field(default=1024 * 1024, alias="max-body-bytes", gt=0)
    #: requests one instance serves at once before it queues (backpressure)
    max_in_flight: int = Field(default=256, alias="max-in-flight", gt=0)
    #: longest a request waits for an in-flight slot before a 503
    max_wait_ms: int = Field(default=2000, alias="max-wait-ms", ge=0)
    #: Lambda reserved concurrency for the gateway function (None: unreserved). It is applied at
    #: deploy time by the kill-switch function, never by the function resource, so a deploy keeps
    #: a hard stop (0) in place; Lambda refuses a reservation that leaves less than its minimum
    #: unreserved (10 on a new account, 100 at the usual quota): see README, "Concurrency"
    reserved_concurrency: int | None = Field(default=None, alias="reserved-concurrency", ge=0)
    #: the gateway's concurrent executions at which an alarm emails the operators (None: 80% of
    #: reserved-concurrency when set, else ``DEFAULT_CONCURRENCY_ALARM``)
    concurrency_alarm: int | None = Field(default=None, alias="concurrency-alarm", ge=1)
    #: seconds an API-key lookup is cached in-process (revocation takes effect within this)
    key_cache_s: float = Field(default=30.0, alias="key-cache-s", ge=0)
    #: seconds before a provider call is abandoned with 504
    provider_timeout_s: float = Field(default=120.0, alias="provider-timeout-s", gt=0)
    #: the gateway function's memory. A streamed answer bills memory x its whole time, and the
    #: gateway waits on the model most of it: the smallest size that holds the process and keeps
    #: its CPU per request short is the cheapest (``bench/gateway_cost.py`` chose this default)
    lambda_memory_mb: int = Field(default=DEFAULT_LAMBDA_MEMORY_MB, alias="lambda-memory-mb", ge=128, le=10240)
    #: gzip answers for clients that accept it (``functions/gateway/compression.py``); unset: on in a
    #: container (the load balancer passes ``content-encoding`` through), off on Lambda, whose
    #: Function URLs in streaming mode do not pass a compressed stream through as it is (README,
    #: "Response compression")
    compress_responses: bool | None = Field(default=None, alias="compress-responses")
    #: days a stored Responses API response (``store`` not false) can be read and continued
    responses_ttl_days: float = Field(default=30.0, alias="responses-ttl-days", gt=0, le=365)

    @model_validator(mode="after")
    def _check_hosting(self) -> "GatewayConfig":
        check_hosting(self.hosting, self.container, self.reserved_concurrency)
        return self

    def compresses_responses(self) -> bool:
        return self.hosting == "container" if self.compress_responses is None else self.compress_responses

    def concurrency_alarm_at(self) -> int:
        if self.concurrency_alarm is not None:
            return self.concurrency_alarm
        if self.reserved_concurrency:
            return max(1, int(self.reserved_concurrency * 0.8))
        return DEFAULT_CONCURRENCY_ALARM
