"""Where the gateway runs (``[gateway] hosting``) and, for ``container``, its ECS Fargate service
(``[gateway.container]``).

``lambda`` (the default) runs the ASGI app on Lambda behind a streaming Function URL: nothing to
pay when idle, billed for every second a response streams. ``container`` runs the same app, from
the same bundle, on ECS Fargate (arm64) behind an HTTPS Application Load Balancer: a fixed hourly
price per task, however long the streams, and one task serves hundreds of streams at once.

The load balancer only speaks HTTPS: API keys travel in every request's ``Authorization`` header,
so a container deployment without ``certificate-arn`` is a config error, never a plain-HTTP
endpoint.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..errors import ConfigError
from ._base import Section

Hosting = Literal["lambda", "container"]

#: the CPU/memory pairs Fargate accepts (CPU units -> memory MiB allowed), up to 4 vCPU
FARGATE_SIZES: dict[int, range] = {
    256: range(512, 2048 + 1, 512),
    512: range(1024, 4096 + 1, 1024),
    1024: range(2048, 8192 + 1, 1024),
    2048: range(4096, 16384 + 1, 1024),
    4096: range(8192, 30720 + 1, 1024),
}
#: an ACM certificate in any partition
CERTIFICATE_ARN_PATTERN = r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+$"


class ContainerConfig(Section):
    #: Fargate CPU units per task (1024 = one Graviton vCPU)
    cpu: int = Field(default=512)
    #: memory per task in MiB; must be a size Fargate pairs with ``cpu``
    memory_mb: int = Field(default=1024, alias="memory-mb")
    #: tasks always running (1: cheapest; 2: one per Availability Zone, no gap when a task is replaced)
    min_tasks: int = Field(default=1, alias="min-tasks", ge=1)
    #: tasks autoscaling may add up to: the ceiling of the gateway's own hourly bill
    max_tasks: int = Field(default=10, alias="max-tasks", ge=1)
    #: requests per task per minute that autoscaling keeps each task near (ALBRequestCountPerTarget)
    target_requests_per_task: int = Field(default=3000, alias="target-requests-per-task", gt=0)
    #: average CPU a task is kept near: long streams are few requests but steady CPU
    target_cpu_percent: int = Field(default=60, alias="target-cpu-percent", ge=10, le=90)
    #: the ACM certificate of the HTTPS listener (required: keys must not travel in clear text)
    certificate_arn: str | None = Field(default=None, alias="certificate-arn", pattern=CERTIFICATE_ARN_PATTERN)
    #: the name clients use (a CNAME or alias to the load balancer, covered by the certificate);
    #: without it the stack's URL output is the load balancer's own DNS name
    domain_name: str | None = Field(default=None, alias="domain-name", max_length=253,
                                    pattern=r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")

    @model_validator(mode="after")
    def _check_size(self) -> "ContainerConfig":
        if self.cpu not in FARGATE_SIZES:
            raise ConfigError("gateway.container.cpu", f"{self.cpu} is not a Fargate size "
                              f"({', '.join(map(str, FARGATE_SIZES))})")
        allowed = FARGATE_SIZES[self.cpu]
        if self.memory_mb not in allowed:
            raise ConfigError("gateway.container.memory-mb", f"Fargate pairs cpu {self.cpu} with "
                              f"{allowed.start}-{allowed.stop - 1} MiB in steps of {allowed.step}")
        if self.max_tasks < self.min_tasks:
            raise ConfigError("gateway.container.max-tasks", "is below min-tasks")
        return self


def check_hosting(hosting: Hosting, container: ContainerConfig, reserved_concurrency: int | None) -> None:
    """The cross-key rules of ``[gateway]``: what ``container`` hosting needs and refuses."""
    if hosting != "container":
        return
    if container.certificate_arn is None:
        raise ConfigError("gateway.container.certificate-arn",
                          'hosting = "container" needs an ACM certificate for the HTTPS load balancer '
                          "(API keys must not travel in clear text)")
    if reserved_concurrency is not None:
        raise ConfigError("gateway.reserved-concurrency",
                          'is a Lambda setting; with hosting = "container" max-tasks bounds the gateway')
