"""The stack follows the config: a second synth from a variant of the example tierup.toml
(reserved concurrency, a global inference profile and a plain on-demand model, no global cap, no
emails, a slower and disabled policy, no semantic cache), this time for a known account and region, as ``cdk deploy``
synthesises it with credentials (ARNs then hold literals where the first synth has tokens)."""

from __future__ import annotations

import os

import pytest

from .conftest import config_variant, synthesize
from .test_stack import (actions_of, function_by_handler, of_type, resolve_arn, resources_of,
                         statements_of)

VARIANT = {
    "[gateway]\n": "[gateway]\nreserved-concurrency = 50\n",
    'the account.\nserverless = "us.meta.llama3-1-8b-instruct-v1:0"':
        'the account.\nserverless = "global.anthropic.claude-haiku-4-5-20251001-v1:0"',
    '[routes.summarize]\nserverless = "us.meta.llama3-1-8b-instruct-v1:0"':
        '[routes.summarize]\nserverless = "amazon.nova-micro-v1:0"',
    '[pricing.models."us.meta.llama3-1-70b-instruct-v1:0"]':
        '[pricing.models."global.anthropic.claude-haiku-4-5-20251001-v1:0"]\ninput-per-mtok = 1.0\n'
        'output-per-mtok = 5.0\n\n[pricing.models."amazon.nova-micro-v1:0"]\ninput-per-mtok = 0.035\n'
        'output-per-mtok = 0.14\n\n[pricing.models."us.meta.llama3-1-70b-instruct-v1:0"]',
    "semantic = true": "semantic = false",
    "[budgets.global]\nmonthly-usd = 1000.0\n": "[budgets.global]\n",
    'alert-emails = ["ops@example.com"]': "alert-emails = []",
    "[policy]\nenabled = true\ninterval-s = 60": "[policy]\nenabled = false\ninterval-s = 300",
}


DEPLOY_ENV = {"CDK_DEFAULT_ACCOUNT": "123456789012", "CDK_DEFAULT_REGION": "eu-west-1"}


@pytest.fixture(scope="module")
def resources(tmp_path_factory):
    config_file = config_variant(tmp_path_factory.mktemp("config"), VARIANT)
    saved = {name: os.environ.get(name) for name in DEPLOY_ENV}
    os.environ.update(DEPLOY_ENV)
    try:
        _, template = synthesize(config_file, tmp_path_factory.mktemp("cdk.out"))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return template.to_json()["Resources"]


def test_the_web_adapter_layer_is_the_deploy_region_s(resources):
    _, gateway = function_by_handler(resources, "run.sh")
    assert gateway["Layers"] == ["arn:aws:lambda:eu-west-1:753240598075:layer:LambdaAdapterLayerArm64:30"]


def test_gateway_reserved_concurrency_comes_from_the_config_through_the_kill_switch(resources):
    """Not on the function resource: a deploy would re-apply it over a hard stop (concurrency 0)."""
    gateway_id, gateway = function_by_handler(resources, "run.sh")
    switch_id, _ = function_by_handler(resources, "functions.killswitch_handler.handler")
    assert "ReservedConcurrentExecutions" not in gateway
    [applied] = [r["Properties"] for r in resources.values() if r["Type"] == "Custom::TierupGatewayConcurrency"]
    assert applied["ServiceToken"] == {"Fn::GetAtt": [switch_id, "Arn"]}
    assert applied["FunctionName"] == {"Ref": gateway_id} and applied["ReservedConcurrency"] == 50


def test_a_global_profile_gets_its_model_in_any_region_and_a_plain_model_its_own_region(resources):
    _, gateway = function_by_handler(resources, "run.sh")
    [bedrock] = [s for s in statements_of(resources, gateway) if "bedrock:InvokeModel" in actions_of(s)]
    # Bedrock is called in [tiers.serverless] region (us-east-1), not the stack's (eu-west-1); the
    # partition is a literal where the region is known (@aws-cdk/core:enablePartitionLiterals)
    assert {resolve_arn(r) for r in resources_of(bedrock)} == {
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
        "global.anthropic.claude-haiku-4-5-20251001-v1:0",
        "arn:aws:bedrock:*::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0",
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0",  # summarize
        "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0",  # embed route
    }


def test_no_global_cap_means_no_budget_and_no_global_alarms(resources):
    assert of_type(resources, "AWS::Budgets::Budget") == {}
    alarms = [r["Properties"] for r in of_type(resources, "AWS::CloudWatch::Alarm").values()]
    assert sorted(a["AlarmName"] for a in alarms if "-spend-" in a["AlarmName"]) == [
        "tierup-spend-hourly-anomaly", "tierup-spend-route-chat-daily", "tierup-spend-route-chat-monthly-pace"]


def test_no_emails_means_only_the_kill_switch_subscribes(resources):
    subscriptions = [r["Properties"] for r in of_type(resources, "AWS::SNS::Subscription").values()]
    assert [s["Protocol"] for s in subscriptions] == ["lambda"]


def test_policy_schedule_follows_interval_and_enabled(resources):
    [rule] = [r for r in of_type(resources, "AWS::Events::Rule").values()
              if r["Properties"]["ScheduleExpression"].startswith("rate(")
              and r["Properties"].get("Description") != "follow the Bedrock batch jobs"]
    assert rule["Properties"]["ScheduleExpression"] == "rate(5 minutes)"
    assert rule["Properties"]["State"] == "DISABLED"


def test_a_bad_config_fails_the_synth_naming_the_key(tmp_path):
    from aws_cdk import App

    from functions.core.errors import ConfigError
    from infra.app import build_stack

    from .conftest import cdk_context

    bad = config_variant(tmp_path, {"max-in-flight = 256": "max-in-flight = 0"})
    with pytest.raises(ConfigError, match=r"gateway\.max-in-flight"):
        build_stack(App(context=cdk_context(), outdir=str(tmp_path / "cdk.out")), bad)
