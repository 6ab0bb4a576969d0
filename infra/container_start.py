"""How a gateway task starts (``[gateway] hosting = "container"``), as plain data without CDK, so
the functional tests start the gateway exactly as a task does (tests/functional/
test_container_start.py) and infra/gateway_container.py writes the same into the task definition.

The gateway container unpacks the Lambda bundle (copied into the task's volume by the fetch
container) into ``TASK_ROOT`` with Python's own zip module (the slim image has no unzip) and execs
the bundle's ``run.sh``, the Lambda's start script, with the settings below.
"""

from __future__ import annotations

from functions.core.config import TierupConfig

#: the task volume the bundle's zip is copied into
BUNDLE_DIR = "/bundle"
BUNDLE_ZIP = f"{BUNDLE_DIR}/gateway.zip"
#: where the bundle is unpacked: the path its bytecode names, and the bundled config's
TASK_ROOT = "/var/task"
APP_PORT = 8080
#: the ALB's idle timeout beyond the longest silence a request can have (provider-timeout-s)
IDLE_MARGIN_S = 30
#: uvicorn keeps an idle connection longer than the ALB does, so the ALB is the one that closes it
KEEP_ALIVE_MARGIN_S = 5
#: the deregistration delay beyond the longest stream
DRAIN_MARGIN_S = 10
#: the limits ELB sets on the idle timeout and the deregistration delay
MAX_IDLE_TIMEOUT_S = 4000
MAX_DRAIN_S = 3600
#: after draining, what uvicorn may still take to close its connections (ECS's stop timeout is longer)
GRACEFUL_SHUTDOWN_S = 20


def start_command(bundle_zip: str = BUNDLE_ZIP, task_root: str = TASK_ROOT) -> str:
    """The gateway container's shell command."""
    return f"python -m zipfile -e {bundle_zip} {task_root} && exec sh {task_root}/run.sh"


def idle_timeout_s(config: TierupConfig) -> int:
    """The load balancer's idle timeout: longer than any request can go without a byte (a
    non-streamed answer sends nothing until it is whole; provider-timeout-s bounds it)."""
    return min(MAX_IDLE_TIMEOUT_S, int(config.gateway.provider_timeout_s) + IDLE_MARGIN_S)


def drain_s(config: TierupConfig) -> int:
    """The deregistration delay: a leaving task's longest stream can finish."""
    return min(MAX_DRAIN_S, int(config.gateway.provider_timeout_s) + DRAIN_MARGIN_S)


def uvicorn_environment(config: TierupConfig, host: str = "0.0.0.0") -> dict[str, str]:  # noqa: S104
    """What ``run.sh`` reads in a task: the task's interface (the security group admits the load
    balancer only), a keep-alive past the load balancer's idle timeout, a longer graceful shutdown,
    and the metric lines on stdout (the awslogs driver ships them; CloudWatch extracts them)."""
    return {"HOST": host, "PORT": str(APP_PORT),
            "KEEP_ALIVE_S": str(idle_timeout_s(config) + KEEP_ALIVE_MARGIN_S),
            "GRACEFUL_SHUTDOWN_S": str(GRACEFUL_SHUTDOWN_S), "TIERUP_EMF": "stdout"}
