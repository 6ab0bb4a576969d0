"""The gateway's own AWS bill: what one request costs to serve, and what a month costs per hosting.

Every AWS price the gateway's cost depends on is in ``AWS_PRICES``, once, with where it comes
from (US East, N. Virginia, on-demand, list prices; other regions are usually 0-30% higher).
A request's *units* (``GatewayUnits``: Lambda GB-seconds, invocations, DynamoDB request units,
log bytes) are counted as it runs (``functions.adapters.gateway_meter``); this module only prices
them, and projects a month of traffic onto each hosting option:

* ``lambda``: billed for memory x wall time from invocation to the stream's last byte (a
  streaming answer holds the function for the whole answer), plus a charge per request;
* ``container``: ECS Fargate arm64 tasks behind an Application Load Balancer, billed per hour
  whatever the traffic; many streams share one task, so stream time costs almost nothing;
* ``lambda-managed``: Lambda Managed Instances, EC2 instances billed per hour plus a management
  fee and a charge per request; many invocations share one instance, as in a container.

DynamoDB units and log bytes are the same under every host: they are counted per request and
added to each option. No I/O here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config.gateway import DEFAULT_LAMBDA_MEMORY_MB

#: hours in a month, as AWS bills them (365 x 24 / 12)
HOURS_PER_MONTH = 730.0
#: CloudWatch Logs bills per GB ingested, where a GB is 2^30 bytes
BYTES_PER_GB = 1024 ** 3
#: the lines the Lambda platform writes for each invocation (START, END, REPORT: about 300 bytes
#: in the text format), ingested into CloudWatch Logs like the function's own
LAMBDA_PLATFORM_LOG_BYTES = 300


@dataclass(frozen=True, slots=True)
class AwsPrice:
    usd: float
    unit: str
    source: str


_LAMBDA = "aws.amazon.com/lambda/pricing (us-east-1)"
_DYNAMODB = "aws.amazon.com/dynamodb/pricing/on-demand (us-east-1, since the 2024-11-01 on-demand price cut)"
_CLOUDWATCH = "aws.amazon.com/cloudwatch/pricing (us-east-1)"
_FARGATE = "aws.amazon.com/fargate/pricing (us-east-1, Linux/ARM)"
_ELB = "aws.amazon.com/elasticloadbalancing/pricing (us-east-1, Application Load Balancer)"
_LMI = "aws.amazon.com/lambda/pricing, Lambda Managed Instances (us-east-1)"
_EC2 = "aws.amazon.com/ec2/pricing/on-demand (us-east-1)"

#: the one table of AWS prices the gateway's own cost uses
AWS_PRICES: dict[str, AwsPrice] = {
    "lambda-gb-s-arm64": AwsPrice(0.0000133334, "GB-second", f"{_LAMBDA}, arm64, first 7.5 billion GB-s a month"),
    "lambda-gb-s-x86_64": AwsPrice(0.0000166667, "GB-second", f"{_LAMBDA}, x86_64, first 6 billion GB-s a month"),
    "lambda-request": AwsPrice(0.20 / 1e6, "request", _LAMBDA),
    "dynamodb-read-unit": AwsPrice(0.125 / 1e6, "read request unit", _DYNAMODB),
    "dynamodb-write-unit": AwsPrice(0.625 / 1e6, "write request unit", _DYNAMODB),
    "logs-ingested-gb": AwsPrice(0.50, "GB ingested", f"{_CLOUDWATCH}, Logs standard class (and Lambda logs' "
                                                      "first 10 TB)"),
    "custom-metric-month": AwsPrice(0.30, "metric a month", f"{_CLOUDWATCH}, first 10,000 metrics (EMF-extracted "
                                                           "metrics are custom metrics)"),
    "fargate-vcpu-hour-arm64": AwsPrice(0.03238, "vCPU-hour", _FARGATE),
    "fargate-gb-hour-arm64": AwsPrice(0.00356, "GB-hour", _FARGATE),
    "alb-hour": AwsPrice(0.0225, "load balancer hour", _ELB),
    "alb-lcu-hour": AwsPrice(0.008, "LCU-hour", _ELB),
    "lmi-request": AwsPrice(0.20 / 1e6, "request", _LMI),
    "lmi-management-fee": AwsPrice(0.15, "fraction of the EC2 on-demand price", _LMI),
    "ec2-m7g-large-hour": AwsPrice(0.0816, "instance hour (2 vCPU, 8 GiB)", f"{_EC2}, Linux, m7g.large"),
    "internet-egress-gb": AwsPrice(0.09, "GB out to the internet", f"{_EC2}, data transfer out, first 10 TB a "
                                                                   "month (after 100 GB free; Lambda and ALB alike)"),
    "public-ipv4-hour": AwsPrice(0.005, "public IPv4 address hour", "aws.amazon.com/vpc/pricing (public IPv4 "
                                                                    "addresses)"),
}

#: Application Load Balancer: one LCU-hour buys, per hour, the highest of these dimensions
ALB_NEW_CONNECTIONS_PER_S_PER_LCU = 25.0
ALB_ACTIVE_CONNECTIONS_PER_LCU = 3000.0
ALB_GB_PER_HOUR_PER_LCU = 1.0
#: Lambda gives a function one full vCPU at this memory size (CPU share grows linearly with memory)
LAMBDA_MB_PER_VCPU = 1769


def price(name: str) -> float:
    return AWS_PRICES[name].usd


@dataclass(frozen=True, slots=True)
class GatewayUnits:
    """The AWS units one request used (or a share of shared work, such as a ledger page)."""

    #: Lambda invocations (1 per request on Lambda, 0 on a host billed per hour)
    invocations: int = 0
    #: Lambda memory x billed duration (1 ms granularity)
    gb_seconds: float = 0.0
    read_units: float = 0.0
    write_units: float = 0.0
    #: bytes written to CloudWatch Logs (EMF metric lines and log lines)
    log_bytes: int = 0
    #: response bytes sent to the client (data transfer out to the internet)
    egress_bytes: int = 0

    def __add__(self, other: "GatewayUnits") -> "GatewayUnits":
        return GatewayUnits(self.invocations + other.invocations, self.gb_seconds + other.gb_seconds,
                            self.read_units + other.read_units, self.write_units + other.write_units,
                            self.log_bytes + other.log_bytes, self.egress_bytes + other.egress_bytes)


def lambda_gb_seconds(duration_ms: float, memory_mb: int) -> float:
    """Lambda bills memory (in GB of 1024 MB) x duration rounded up to the millisecond."""
    return memory_mb / 1024 * math.ceil(duration_ms) / 1000


def lambda_units(duration_ms: float, memory_mb: int) -> GatewayUnits:
    """One Lambda invocation of ``duration_ms`` at ``memory_mb``, with its platform log lines."""
    return GatewayUnits(invocations=1, gb_seconds=lambda_gb_seconds(duration_ms, memory_mb),
                        log_bytes=LAMBDA_PLATFORM_LOG_BYTES)


def storage_and_logs_usd(units: GatewayUnits) -> float:
    """DynamoDB request units, CloudWatch Logs ingestion and the answer's bytes out to the internet:
    the same under every host."""
    return (units.read_units * price("dynamodb-read-unit") + units.write_units * price("dynamodb-write-unit")
            + units.log_bytes / BYTES_PER_GB * price("logs-ingested-gb")
            + units.egress_bytes / BYTES_PER_GB * price("internet-egress-gb"))


def gateway_cost_usd(units: GatewayUnits, arch: str = "arm64") -> float:
    """USD for ``units``: Lambda duration and requests (when on Lambda), DynamoDB and logs."""
    return (units.gb_seconds * price(f"lambda-gb-s-{arch}") + units.invocations * price("lambda-request")
            + storage_and_logs_usd(units))


# -- a month of traffic on each hosting option --------------------------------------------------

@dataclass(frozen=True, slots=True)
class RequestProfile:
    """What a mean request uses, apart from its stream time (``bench/gateway_cost.py`` measures it)."""

    #: CPU the gateway spends per request (parsing, auth, quota, relaying, settling), all of it:
    #: what sizes a host that many requests share
    cpu_ms: float
    read_units: float
    write_units: float
    #: log and metric bytes the process writes (the Lambda platform's lines are added apart)
    log_bytes: float
    #: response bytes sent to the client (a streamed answer's SSE events: ~150 bytes a token, ~10 gzipped)
    egress_bytes: float = 0.0
    #: request bytes received (a load balancer processes both)
    request_bytes: float = 1500.0
    #: the part of ``cpu_ms`` on the request's critical path: before the provider is called and
    #: after its last token (None: all of it). The rest runs while the model generates.
    critical_cpu_ms: float | None = None

    @property
    def critical_ms(self) -> float:
        return self.cpu_ms if self.critical_cpu_ms is None else min(self.critical_cpu_ms, self.cpu_ms)


def lambda_cpu_stretch(memory_mb: int) -> float:
    """How much longer CPU work takes on a function of ``memory_mb`` than on one full vCPU."""
    return max(1.0, LAMBDA_MB_PER_VCPU / memory_mb)


def lambda_duration_s(stream_s: float, profile: RequestProfile, memory_mb: int) -> float:
    """Seconds one invocation is billed for: Lambda bills wall time from invocation to return.

    CPU on the critical path (before the provider is called, after its last token) adds to the
    model's stream time; CPU spent while the model generates (relaying chunks between tokens,
    background refreshes) overlaps time billed anyway, as long as it fits: stretched by the
    function's share of a vCPU, it may not exceed the stream time, and where it would, the
    invocation lasts as long as that CPU takes instead. So
    ``duration = critical x stretch + max(stream, (total - critical) x stretch)``.
    """
    stretch = lambda_cpu_stretch(memory_mb)
    critical_s = profile.critical_ms / 1000 * stretch
    overlapped_s = (profile.cpu_ms - profile.critical_ms) / 1000 * stretch
    return critical_s + max(stream_s, overlapped_s)


#: ``bench/gateway_cost.py`` on its mix, as on Lambda at the typical answer's pace: each request
#: writes what it owes before its response completes (ledger page, aggregates, metric lines), so it
#: costs writes and CPU a batch of requests would share, and a busy instance's background reads
#: (kill-switch flags, the route table) and lease renewals fall on its requests. About half its CPU
#: is on the critical path; the rest (relaying chunks, background reads) overlaps the generation
LAMBDA_PROFILE = RequestProfile(cpu_ms=22.8, critical_cpu_ms=12.4, read_units=1.82, write_units=5.76,
                                log_bytes=882.0, egress_bytes=27_685.0)
#: the same mix in a long-lived process: the ledger is flushed once a second for all requests, and
#: answers are gzipped (``[gateway] compress-responses``, on in a container)
CONTAINER_PROFILE = RequestProfile(cpu_ms=3.5, read_units=0.01, write_units=0.11, log_bytes=14.0,
                                   egress_bytes=2_394.0)


@dataclass(frozen=True, slots=True)
class ContainerShape:
    """The container option: Fargate arm64 tasks behind one Application Load Balancer."""

    vcpu: float = 0.5
    memory_gb: float = 1.0
    #: tasks kept even when idle (two: one per Availability Zone, so a task or zone can fail)
    min_tasks: int = 2
    #: CPU use per task autoscaling aims for
    target_cpu: float = 0.6
    #: streams one task serves at once ([gateway] max-in-flight)
    max_in_flight: int = 256


@dataclass(frozen=True, slots=True)
class ManagedInstancesShape:
    """Lambda Managed Instances: instances of one type, many invocations sharing each."""

    instance_price: str = "ec2-m7g-large-hour"
    vcpu_per_instance: float = 2.0
    #: instances kept at least (Lambda spreads them over Availability Zones)
    min_instances: int = 3
    target_cpu: float = 0.6
    #: concurrent invocations one instance takes (Python: 16 per vCPU by default)
    max_concurrency: int = 32


@dataclass(frozen=True, slots=True)
class MonthlyCost:
    option: str
    compute_usd: float
    storage_and_logs_usd: float
    #: tasks or instances running (mean), or the Lambda memory size for ``lambda``
    detail: str

    @property
    def total_usd(self) -> float:
        return self.compute_usd + self.storage_and_logs_usd


def _shared_usd(requests: float, profile: RequestProfile) -> float:
    return storage_and_logs_usd(GatewayUnits(read_units=profile.read_units * requests,
                                             write_units=profile.write_units * requests,
                                             log_bytes=int(profile.log_bytes * requests),
                                             egress_bytes=int(profile.egress_bytes * requests)))


def lambda_month(requests: float, mean_stream_s: float, profile: RequestProfile, *,
                 memory_mb: int, arch: str = "arm64") -> MonthlyCost:
    units = lambda_units(lambda_duration_s(mean_stream_s, profile, memory_mb) * 1000, memory_mb)
    compute = requests * (units.gb_seconds * price(f"lambda-gb-s-{arch}") + price("lambda-request"))
    logs = requests * LAMBDA_PLATFORM_LOG_BYTES / BYTES_PER_GB * price("logs-ingested-gb")
    return MonthlyCost("lambda", compute + logs, _shared_usd(requests, profile), f"{memory_mb} MB {arch}")


def container_month(requests: float, mean_stream_s: float, profile: RequestProfile,
                    shape: ContainerShape = ContainerShape()) -> MonthlyCost:
    rps = requests / (HOURS_PER_MONTH * 3600)
    in_flight = rps * mean_stream_s
    tasks = max(shape.min_tasks, math.ceil(rps * profile.cpu_ms / 1000 / (shape.vcpu * shape.target_cpu)),
                math.ceil(in_flight / shape.max_in_flight))
    task_hour = shape.vcpu * price("fargate-vcpu-hour-arm64") + shape.memory_gb * price("fargate-gb-hour-arm64")
    lcus = max(rps / ALB_NEW_CONNECTIONS_PER_S_PER_LCU, in_flight / ALB_ACTIVE_CONNECTIONS_PER_LCU,
               rps * 3600 * (profile.request_bytes + profile.egress_bytes) / 1e9 / ALB_GB_PER_HOUR_PER_LCU)
    # a public load balancer holds a public IPv4 address in each of its (two) zones, a task one each
    alb = price("alb-hour") + lcus * price("alb-lcu-hour") + (2 + tasks) * price("public-ipv4-hour")
    return MonthlyCost("container", (tasks * task_hour + alb) * HOURS_PER_MONTH, _shared_usd(requests, profile),
                       f"{tasks} x {shape.vcpu:g} vCPU / {shape.memory_gb:g} GB + ALB")


def managed_instances_month(requests: float, mean_stream_s: float, profile: RequestProfile,
                            shape: ManagedInstancesShape = ManagedInstancesShape()) -> MonthlyCost:
    rps = requests / (HOURS_PER_MONTH * 3600)
    instances = max(shape.min_instances,
                    math.ceil(rps * profile.cpu_ms / 1000 / (shape.vcpu_per_instance * shape.target_cpu)),
                    math.ceil(rps * mean_stream_s / shape.max_concurrency))
    hourly = price(shape.instance_price) * (1 + price("lmi-management-fee"))
    compute = instances * hourly * HOURS_PER_MONTH + requests * price("lmi-request")
    return MonthlyCost("lambda-managed", compute, _shared_usd(requests, profile), f"{instances} instances")


def monthly_gateway_costs(requests: float, mean_stream_s: float, *, memory_mb: int = DEFAULT_LAMBDA_MEMORY_MB,
                          arch: str = "arm64", lambda_profile: RequestProfile = LAMBDA_PROFILE,
                          container_profile: RequestProfile = CONTAINER_PROFILE) -> list[MonthlyCost]:
    """A month of ``requests`` averaging ``mean_stream_s`` from start to last byte, on each host
    (``lambda``, ``container``, ``lambda-managed``). Lambda Managed Instances run the function as
    Lambda does, so a request writes what it owes before completing there too (``lambda_profile``).

    The simulator and ``tierup costs`` call this; ``bench/gateway_cost.py`` measures the profiles.
    """
    return [lambda_month(requests, mean_stream_s, lambda_profile, memory_mb=memory_mb, arch=arch),
            container_month(requests, mean_stream_s, container_profile),
            managed_instances_month(requests, mean_stream_s, lambda_profile)]


def break_even_requests(mean_stream_s: float, *, option: str = "container", **options) -> float | None:
    """Requests a month past which ``option`` costs less than Lambda (None: not below 10 billion);
    ``options`` as ``monthly_gateway_costs`` takes them."""
    def cheaper(requests: float) -> bool:
        costs = {c.option: c.total_usd for c in monthly_gateway_costs(requests, mean_stream_s, **options)}
        return costs[option] < costs["lambda"]

    low, high = 1.0, 1e10
    if not cheaper(high):
        return None
    for _ in range(60):  # bisection on a log scale: costs are monotone in requests for each option
        middle = math.sqrt(low * high)
        low, high = (low, middle) if cheaper(middle) else (middle, high)
    return high


# -- what the live ledger says ------------------------------------------------------------------

#: days in a month, as ``HOURS_PER_MONTH`` counts them
DAYS_PER_MONTH = HOURS_PER_MONTH / 24


@dataclass(frozen=True, slots=True)
class LedgerTraffic:
    """A window of ledger entries, scaled to a month."""

    requests_per_month: float
    #: mean seconds from a request's arrival to its last byte
    mean_stream_s: float
    model_usd_per_month: float
    gateway_usd_per_month: float


def ledger_traffic(entries, days: float) -> LedgerTraffic:
    """``entries`` (``LedgerEntry``) of the last ``days`` days, scaled to a month."""
    count = len(entries)
    scale = DAYS_PER_MONTH / days
    mean_ms = sum(entry.latency_ms for entry in entries) / count if count else 0.0
    return LedgerTraffic(requests_per_month=count * scale, mean_stream_s=mean_ms / 1000,
                         model_usd_per_month=sum(entry.cost_usd for entry in entries) * scale,
                         gateway_usd_per_month=sum(entry.gateway_cost_usd for entry in entries) * scale)
