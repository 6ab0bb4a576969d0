"""One tierup Lambda function: its own role, its own log group with a retention, arm64, the shared
bundle. The gateway, the policy and the kill switch are each one of these.

Each function gets a role of its own with no managed policy: it may write to its own log group and
nothing else until the construct that owns the function grants more (least privilege, and no
``AWSLambdaBasicExecutionRole``, whose ``logs:*`` grant covers every log group in the account).

The runtime is Python 3.13, one behind the newest: cdk-nag's AwsSolutions-L1 is acknowledged here,
with the reason, because the runtime is chosen for the bundle's bytecode (infra/bundling.py).

No function reserves concurrency in the template: an account at the default concurrency quota
(10) refuses any reservation that leaves fewer than 10 unreserved, and a reservation written in
the template would be re-applied by a deploy over the kill switch's hard stop (concurrency 0).
The gateway's optional bound is applied by the kill switch instead (infra/gateway_concurrency.py).
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from .bundling import BUNDLED_CONFIG, LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME, PYTHON_VERSION

#: a month of logs is enough to investigate an incident; older spend lives in the usage table
LOG_RETENTION = logs.RetentionDays.ONE_MONTH


class TierupFunction(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, code: lambda_.Code, handler: str,
                 description: str, environment: dict[str, str], memory_mb: int, timeout: Duration,
                 layers: list[lambda_.ILayerVersion] | None = None, retry_attempts: int | None = None,
                 on_failure: lambda_.IDestination | None = None) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION,
                                       removal_policy=RemovalPolicy.DESTROY)
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             description=f"Runs: {description}")
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self, "Function",
            description=description,
            runtime=LAMBDA_RUNTIME,
            architecture=LAMBDA_ARCHITECTURE,
            code=code,
            handler=handler,
            role=self.role,
            log_group=self.log_group,
            memory_size=memory_mb,
            timeout=timeout,
            layers=layers,
            retry_attempts=retry_attempts,
            on_failure=on_failure,
            environment={"TIERUP_CONFIG": BUNDLED_CONFIG, **environment},
        )
        Validations.of(self.function).acknowledge(Acknowledgment(
            id="AwsSolutions::AwsSolutions-L1",
            reason=f"Python {PYTHON_VERSION} (supported by Lambda until mid-2029), not the newest "
                   "runtime: the bundle ships bytecode, which only the runtime's own Python "
                   f"version can compile at synth, so the runtime is the newest version the build "
                   "machines have. Raise LAMBDA_RUNTIME and PYTHON_VERSION together in "
                   "infra/bundling.py (and run `make lock`) once they have a newer one."))
