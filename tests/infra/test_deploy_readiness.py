"""What would break or silently lose its guarantees on a team's first ``cdk deploy`` (issue 11),
checked offline on the synthesised templates: the example tierup.toml, and a variant with a
gateway reservation, an extra provider key and the pace alarms' kill switch opted in.
Assertions are on properties and counts, never on logical IDs."""

from __future__ import annotations

import fnmatch
import json
import tarfile
from pathlib import Path

import pytest

from functions.core.config import load_config
from functions.core.config.cache import titan_region
from functions.core.errors import ConfigError
from functions.core.gateway_concurrency import RESOURCE_TYPE
from functions.core.stack_outputs import STACK_SETTINGS, output_key
from functions.core.tables import TABLES, table_env_var
from tests.support import EXAMPLE_CONFIG

from .conftest import CDK_JSON, cdk_context, config_variant, synthesize
from .test_stack import dashboard_widgets, function_by_handler, of_type, resolve_arn, resources_of, statements_of

CONFIG = load_config(EXAMPLE_CONFIG)
PROJECT = CONFIG.project
VARIANT = {
    "[gateway]\n": "[gateway]\nreserved-concurrency = 40\n",
    'base-url = "https://api.openai.com/v1"\napi-key-env = "OPENAI_API_KEY"\nenabled = false':
        'base-url = "https://api.openai.com/v1"\napi-key-env = "OPENAI_API_KEY"\nenabled = true',
    "[budgets]\n": "[budgets]\npace-kill-switch = true\n",
    '[tiers.serverless]\nprovider = "bedrock"\nregion = "us-east-1"':
        '[tiers.serverless]\nprovider = "bedrock"\nregion = "us-west-2"',
}


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    _, template = synthesize(EXAMPLE_CONFIG, tmp_path_factory.mktemp("cdk.out"))
    return template.to_json()


@pytest.fixture(scope="module")
def variant(tmp_path_factory):
    config_file = config_variant(tmp_path_factory.mktemp("config"), VARIANT)
    _, template = synthesize(config_file, tmp_path_factory.mktemp("cdk.out"))
    return load_config(config_file), template.to_json()


def alarms_of(template: dict) -> list[dict]:
    return [r["Properties"] for r in of_type(template["Resources"], "AWS::CloudWatch::Alarm").values()]


# --- 1: no reserved concurrency --------------------------------------------------------------------

def test_no_function_reserves_concurrency(example, variant):
    """An account at the default quota (10) refuses any reservation: the deploy would roll back."""
    for template in (example, variant[1]):
        functions = of_type(template["Resources"], "AWS::Lambda::Function").values()
        assert [f for f in functions if "ReservedConcurrentExecutions" in f["Properties"]] == []


# --- 2: CloudWatch alarms may publish to the alert topic -------------------------------------------

def test_the_project_s_alarms_may_publish_to_the_alert_topic(example):
    resources = example["Resources"]
    [topic_id] = of_type(resources, "AWS::SNS::Topic")
    [policy] = of_type(resources, "AWS::SNS::TopicPolicy").values()
    [cloudwatch] = [s for s in policy["Properties"]["PolicyDocument"]["Statement"]
                    if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert cloudwatch["Effect"] == "Allow" and cloudwatch["Action"] == "sns:Publish"
    assert cloudwatch["Resource"] == {"Ref": topic_id}
    assert cloudwatch["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    pattern = resolve_arn(cloudwatch["Condition"]["ArnLike"]["aws:SourceArn"])
    assert pattern == f"arn:${{AWS::Partition}}:cloudwatch:${{AWS::Region}}:${{AWS::AccountId}}:alarm:{PROJECT}-*"
    alarms = alarms_of(example)
    assert alarms and all(a["AlarmActions"] == [{"Ref": topic_id}] for a in alarms)
    for alarm in alarms:  # the ArnLike condition admits every alarm the stack creates
        arn = f"arn:${{AWS::Partition}}:cloudwatch:${{AWS::Region}}:${{AWS::AccountId}}:alarm:{alarm['AlarmName']}"
        assert fnmatch.fnmatchcase(arn, pattern), alarm["AlarmName"]


# --- 7: the provider-keys secret is never regenerated ----------------------------------------------

def test_the_provider_keys_secret_does_not_change_with_the_config(example, variant):
    def provider_secret(template: dict) -> dict:
        [(_, secret)] = [(k, r) for k, r in of_type(template["Resources"], "AWS::SecretsManager::Secret").items()
                         if "API keys" in r["Properties"]["Description"]]
        return secret

    before, after = provider_secret(example), provider_secret(variant[1])
    assert "GenerateSecretString" not in before["Properties"]
    assert before == after  # a tier's key added: nothing CloudFormation would write again
    outputs = [o for o in variant[1]["Outputs"].values() if "API keys" in o.get("Description", "")]
    assert "OPENAI_API_KEY" in outputs[0]["Description"]  # the names are in the output instead


# --- 8: metrics scoped to the project ----------------------------------------------------------------

def _namespaces_in_alarm(alarm: dict) -> list[str]:
    found = [alarm["Namespace"]] if "Namespace" in alarm else []
    for query in alarm.get("Metrics", []):
        if "MetricStat" in query:
            found.append(query["MetricStat"]["Metric"]["Namespace"])
    return found


def test_every_alarm_and_widget_reads_the_project_s_own_metrics(example):
    namespace = f"tierup/{PROJECT}"
    custom = [ns for alarm in alarms_of(example) for ns in _namespaces_in_alarm(alarm) if not ns.startswith("AWS/")]
    assert custom and set(custom) == {namespace}
    total = [a for a in alarms_of(example) if a.get("MetricName") == "CostUSD" and not a.get("Dimensions")]
    assert total and all(a["Namespace"] == namespace for a in total)  # the un-dimensioned total too
    graphed = []
    for widget in dashboard_widgets(example["Resources"]):
        for metric in widget["properties"].get("metrics", []):
            if isinstance(metric[0], str) and not metric[0].startswith("AWS/"):
                graphed.append(metric[0])
            elif isinstance(metric[0], dict) and "SEARCH(" in metric[0].get("expression", ""):
                assert f'"{namespace}"' in metric[0]["expression"]
    assert graphed and set(graphed) == {namespace}


# --- 9: gateway alarms, the kill switch's failures go somewhere ------------------------------------

def test_the_gateway_has_error_throttle_5xx_and_concurrency_alarms(example):
    resources = example["Resources"]
    gateway_id, _ = function_by_handler(resources, "run.sh")
    on_gateway = {}
    for alarm in alarms_of(example):
        dimensions = [d for d in alarm.get("Dimensions", []) if d["Value"] == {"Ref": gateway_id}]
        queries = [q["MetricStat"]["Metric"] for q in alarm.get("Metrics", []) if "MetricStat" in q]
        names = [alarm["MetricName"]] if dimensions else [
            m["MetricName"] for m in queries
            if {"Name": "FunctionName", "Value": {"Ref": gateway_id}} in m.get("Dimensions", [])]
        for name in names:
            on_gateway[name] = alarm
    assert {"Errors", "Throttles", "ConcurrentExecutions", "Url5xxCount", "UrlRequestCount"} <= set(on_gateway)
    assert on_gateway["Url5xxCount"] is on_gateway["UrlRequestCount"]  # one alarm on the share
    assert on_gateway["ConcurrentExecutions"]["Threshold"] == CONFIG.gateway.concurrency_alarm_at() == 100
    assert all("tierup-kill-switch" not in a["AlarmDescription"] for a in on_gateway.values())


def test_a_failed_kill_switch_invocation_lands_in_a_queue_that_alarms(example):
    resources = example["Resources"]
    switch_id, _ = function_by_handler(resources, "functions.killswitch_handler.handler")
    [config] = [r["Properties"] for r in of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
                if r["Properties"]["FunctionName"] == {"Ref": switch_id}]
    destination = config["DestinationConfig"]["OnFailure"]["Destination"]
    queue_id = destination["Fn::GetAtt"][0]
    assert resources[queue_id]["Type"] == "AWS::SQS::Queue"
    [alarm] = [a for a in alarms_of(example) if a.get("Dimensions") == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible" and alarm["Threshold"] == 1
    _, switch = function_by_handler(resources, "functions.killswitch_handler.handler")
    sends = [s for s in statements_of(resources, switch) if "sqs:SendMessage" in s["Action"]]
    assert [resources_of(s) for s in sends] == [[destination]]


# --- 10: Titan is called where it is granted --------------------------------------------------------

def test_titan_is_granted_in_the_region_the_gateway_calls_it(variant):
    config, template = variant
    resources = template["Resources"]
    _, gateway = function_by_handler(resources, "run.sh")
    arns = {resolve_arn(r) for s in statements_of(resources, gateway) if "bedrock:InvokeModel" in s["Action"]
            for r in resources_of(s)}
    assert titan_region(config) == "us-west-2"  # the Bedrock tier's region, not the stack's
    assert f"arn:${{AWS::Partition}}:bedrock:us-west-2::foundation-model/{config.cache.titan_model}" in arns


# --- 13: redeploys -----------------------------------------------------------------------------------

def test_cloudformation_names_the_tables_and_the_stack_publishes_them(example):
    resources, outputs = example["Resources"], example["Outputs"]
    tables = of_type(resources, "AWS::DynamoDB::Table")
    assert [t for t in tables.values() if "TableName" in t["Properties"]] == []  # redeploy after destroy works
    assert all(t["DeletionPolicy"] == "Retain" for t in tables.values())
    assert {output_key(name) for name in STACK_SETTINGS} <= set(outputs)
    assert {outputs[output_key(table_env_var(spec))]["Value"]["Ref"] for spec in TABLES} == set(tables)


def test_every_table_expires_items_on_expires_at(example):
    tables = of_type(example["Resources"], "AWS::DynamoDB::Table").values()
    assert len(tables) == len(TABLES) == 4
    assert all(t["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
               for t in tables)


def test_the_budget_name_carries_the_region(example):
    [budget] = of_type(example["Resources"], "AWS::Budgets::Budget").values()
    assert resolve_arn(budget["Properties"]["Budget"]["BudgetName"]) == f"{PROJECT}-${{AWS::Region}}-monthly"


def test_more_thresholds_than_aws_budgets_takes_is_a_config_error_naming_the_key(tmp_path):
    from aws_cdk import App

    from infra.app import build_stack

    bad = config_variant(tmp_path, {"thresholds = [0.5, 0.8, 1.0]": "thresholds = [0.25, 0.5, 0.75, 0.9, 1.0]"})
    with pytest.raises(ConfigError, match=r"budgets\.thresholds.*at most 4"):
        build_stack(App(context=cdk_context(), outdir=str(tmp_path / "cdk.out")), bad)


def test_monthly_pace_alarms_alert_and_engage_the_kill_switch_only_when_opted_in(example, variant):
    def pace(template: dict) -> list[str]:
        return sorted(a["AlarmDescription"] for a in alarms_of(template) if a["AlarmName"].endswith("monthly-pace"))

    assert len(pace(example)) == 2 and not any("[tierup-kill-switch" in d for d in pace(example))
    assert all("[tierup-kill-switch scope=" in d for d in pace(variant[1]))


def test_a_hard_stop_survives_a_deploy(variant):
    """The gateway's reservation is not a property of its function (a deploy updating the function
    would put it back over a hard stop's 0); the kill switch applies it, minding the flags."""
    config, template = variant
    resources = template["Resources"]
    gateway_id, gateway = function_by_handler(resources, "run.sh")
    switch_id, _ = function_by_handler(resources, "functions.killswitch_handler.handler")
    assert config.gateway.reserved_concurrency == 40
    assert "ReservedConcurrentExecutions" not in gateway
    [applied] = [r["Properties"] for r in resources.values() if r["Type"] == RESOURCE_TYPE]
    assert applied == {"ServiceToken": {"Fn::GetAtt": [switch_id, "Arn"]}, "FunctionName": {"Ref": gateway_id},
                       "ReservedConcurrency": 40}
    alarms = [a for a in alarms_of(template) if a.get("MetricName") == "ConcurrentExecutions"]
    assert [a["Threshold"] for a in alarms] == [32]  # 80% of the reservation


# --- 14: CDK feature flags -------------------------------------------------------------------------

def test_cdk_json_sets_every_recommended_flag_of_the_pinned_aws_cdk_lib():
    import aws_cdk

    [bundle] = (Path(aws_cdk.__file__).parent / "_jsii").glob("aws-cdk-lib@*.jsii.tgz")
    with tarfile.open(bundle) as archive:
        recommended = json.load(archive.extractfile("package/recommended-feature-flags.json"))
    context = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"]
    assert {flag: context.get(flag) for flag in recommended} == recommended


# --- cfn-lint ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["example", "variant"])
def test_cfn_lint_finds_no_errors(which, example, variant, tmp_path):
    from cfnlint.api import ManualArgs, lint_file

    template = example if which == "example" else variant[1]
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template), encoding="utf-8")
    matches = lint_file(path, config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    errors = [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches if m.rule.id.startswith("E")]
    assert errors == []
