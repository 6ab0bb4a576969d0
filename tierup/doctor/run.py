"""Which checks ``tierup doctor`` runs, with which clients: the composition of the doctor.

Checks that need the deployed stack (the alert topic, alarms, budget) read its outputs from
CloudFormation; before the first deploy they say so instead of failing.
"""

from __future__ import annotations

import ast
from pathlib import Path

from functions.gateway.composition import Runtime

from .aws_checks import (check_alarms, check_bedrock, check_budget, check_concurrency, check_layer,
                         check_subscriptions, check_topic_policy, guarded)
from .config_checks import check_prices, check_prompt_caching
from .container_checks import check_certificate
from .findings import Finding, error_code, offline_reason, unchecked
from .modal_checks import ModalSdkWorkspace, ModalWorkspace, check_modal

ROOT = Path(__file__).resolve().parents[2]


def web_adapter_layer_arn(region: str) -> str | None:
    """The layer the stack attaches (``WEB_ADAPTER_LAYER_ARN`` in infra/gateway.py), read without
    importing the CDK (seconds of start-up for one string)."""
    try:
        tree = ast.parse((ROOT / "infra" / "gateway.py").read_text(encoding="utf-8"))
    except OSError:
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "WEB_ADAPTER_LAYER_ARN" for t in node.targets):
            value = ast.literal_eval(node.value)
            return value.format(region=region) if isinstance(value, str) else None
    return None


def deployed_stack(cloudformation, stack_name: str) -> tuple[dict[str, str], list[str]] | None:
    """(outputs by key, the stack's Lambda function names), or None when it is not deployed."""
    try:
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    except Exception as exc:
        if error_code(exc) == "ValidationError":  # "Stack with id ... does not exist"
            return None
        raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    functions = [r["PhysicalResourceId"] for r in cloudformation.list_stack_resources(StackName=stack_name).get(
        "StackResourceSummaries", []) if r.get("ResourceType") == "AWS::Lambda::Function"]
    return outputs, functions


def run_doctor(runtime: Runtime, *, region: str | None = None,
               modal: ModalWorkspace | None = None, with_modal: bool = True) -> list[Finding]:
    config = runtime.config
    aws = runtime.aws
    region = region or aws.region or "us-east-1"
    findings = check_prices(config) + check_prompt_caching(config)

    stack: tuple[dict[str, str], list[str]] | None = None
    try:
        stack = deployed_stack(aws.client("cloudformation", region), config.project)
        stack_note = None if stack else (f"stack {config.project} is not deployed in {region} yet "
                                         "(run again after cdk deploy)")
    except Exception as exc:
        stack_note = offline_reason(exc) or f"{type(exc).__name__}: {exc}"
    outputs, functions = stack or ({}, [])

    findings += guarded("lambda concurrency",
                        lambda: check_concurrency(config, aws.client("lambda", region), functions))
    findings += check_bedrock(config, lambda bedrock_region: aws.client("bedrock", bedrock_region))
    if config.gateway.hosting == "container":  # no Web Adapter; the load balancer's certificate instead
        findings += guarded("gateway certificate", lambda: check_certificate(config, aws.client("acm", region), region))
    else:
        layer = web_adapter_layer_arn(region)
        findings += (guarded("web adapter layer", lambda: check_layer(aws.client("lambda", region), layer)) if layer
                     else [unchecked("web adapter layer", "infra/gateway.py names no WEB_ADAPTER_LAYER_ARN")])

    topic = next((value for key, value in outputs.items() if key.startswith("AlertTopicArn")), None)
    if topic:
        sns, cloudwatch = aws.client("sns", region), aws.client("cloudwatch", region)
        findings += guarded("alert emails", lambda: check_subscriptions(config, sns, topic))
        findings += guarded("alert topic policy", lambda: check_topic_policy(sns, topic))
        findings += guarded("alarms", lambda: check_alarms(config, cloudwatch, topic))
        findings += guarded("aws budget", lambda: check_budget(
            config, aws.client("budgets", "us-east-1"),  # Budgets is a global service, served from us-east-1
            aws.client("sts", region).get_caller_identity()["Account"], topic))
    else:
        reason = stack_note or f"stack {config.project} has no AlertTopicArn output"
        findings += [unchecked(name, reason) for name in ("alert emails", "alert topic policy", "alarms", "aws budget")]

    if with_modal:
        findings += check_modal(config, modal or ModalSdkWorkspace())
    return findings
