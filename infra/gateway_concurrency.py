"""``[gateway] reserved-concurrency``, applied by the kill-switch function at deploy time instead of
by the gateway's function resource.

Why not ``ReservedConcurrentExecutions`` on the function: a hard stop sets the gateway's
concurrency to 0 outside CloudFormation, and a template that names a value would put it back on
the next deploy that updates the function (any code change), silently lifting the stop. Here a
custom resource, answered by the kill-switch function, sets the configured value when it is
created or the value changes, unless a hard stop is engaged; then the gateway stays at 0 and the
kill switch's release restores the configured value. Removing the setting (or the stack) un-reserves
the gateway, again unless a hard stop holds it.

An account at the default concurrency quota (10) refuses any reservation; the custom resource then
fails the deploy with Lambda's own message ("decreases account's UnreservedConcurrentExecution
below its minimum value"): ask for a higher quota first (README, "Concurrency").
"""

from __future__ import annotations

from aws_cdk import CustomResource
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from functions.core.gateway_concurrency import FUNCTION_PROPERTY, RESERVED_PROPERTY, RESOURCE_TYPE


class GatewayConcurrency(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, kill_switch: lambda_.IFunction,
                 gateway: lambda_.IFunction, reserved: int) -> None:
        super().__init__(scope, construct_id)
        self.resource = CustomResource(
            self, "Resource", service_token=kill_switch.function_arn, resource_type=RESOURCE_TYPE,
            properties={FUNCTION_PROPERTY: gateway.function_name, RESERVED_PROPERTY: reserved})
