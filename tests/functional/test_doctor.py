"""``tierup doctor``'s checks against moto server (SNS, CloudWatch, Lambda, CloudFormation, STS)
and botocore's Stubber where moto has no such call (Bedrock's control plane, Lambda's account
settings and layers, the Budgets subscribers): one test per failure it must name, and the
offline run that says what it could not check."""

from __future__ import annotations

import json
import subprocess
import sys

import boto3
import pytest
from botocore.stub import Stubber

from tests.support import EXAMPLE_CONFIG, ROOT, make_config
from tierup.doctor.aws_checks import (check_alarms, check_bedrock_model, check_budget, check_concurrency,
                                      check_layer, check_subscriptions, check_topic_policy, guarded)
from tierup.doctor.config_checks import check_prices, check_prompt_caching
from tierup.doctor.modal_checks import (DeployedFunction, ModalAuthError, ModalNotDeployed, ModalUnreachable,
                                        check_modal)
from tierup.doctor.run import run_doctor, web_adapter_layer_arn

CONFIG = make_config()
PROFILE = "us.meta.llama3-1-8b-instruct-v1:0"
BASE = "meta.llama3-1-8b-instruct-v1:0"
ACCOUNT = "123456789012"


def _statuses(findings) -> list[str]:
    return [f.status for f in findings]


def _stubbed(service: str, region: str = "us-east-1"):
    client = boto3.client(service, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")
    stubber = Stubber(client)
    stubber.activate()
    return client, stubber


# -- Lambda concurrency ------------------------------------------------------------------------

def _account(limit: int, unreserved: int) -> dict:
    return {"AccountLimit": {"TotalCodeSize": 1, "CodeSizeUnzipped": 1, "CodeSizeZipped": 1,
                             "ConcurrentExecutions": limit, "UnreservedConcurrentExecutions": unreserved}}


def test_a_new_account_cannot_reserve_any_concurrency():
    config = make_config({"gateway": {"reserved-concurrency": 5}})
    client, stubber = _stubbed("lambda")
    stubber.add_response("get_account_settings", _account(10, 10))
    [finding] = check_concurrency(config, client)
    assert finding.status == "problem" and "quota 10" in finding.detail and "Service Quotas" in finding.fix
    stubber.add_response("get_account_settings", _account(10, 10))
    assert _statuses(check_concurrency(CONFIG, client)) == ["ok"]  # the example reserves nothing


def test_what_the_deployed_stack_already_reserves_is_counted_back():
    """After a deploy the gateway's reservation is already out of the unreserved pool."""
    config = make_config({"gateway": {"reserved-concurrency": 50}})
    client, stubber = _stubbed("lambda")
    stubber.add_response("get_account_settings", _account(1000, 950))
    stubber.add_response("get_function_concurrency", {"ReservedConcurrentExecutions": 50},
                         {"FunctionName": "tierup-gateway"})
    assert _statuses(check_concurrency(config, client, ["tierup-gateway"])) == ["ok"]
    stubber.add_response("get_account_settings", _account(1000, 950))
    assert _statuses(check_concurrency(config, client)) == ["ok"]  # 950 - 50 still leaves 900
    stubber.add_response("get_account_settings", _account(55, 55))
    assert _statuses(check_concurrency(config, client)) == ["problem"]  # 5 left, under the floor of 10


# -- Bedrock -----------------------------------------------------------------------------------

def _profile(*regions: str, status: str = "ACTIVE") -> dict:
    return {"inferenceProfileName": "US Meta Llama 3.1 8B Instruct", "inferenceProfileArn":
            f"arn:aws:bedrock:us-east-1:{ACCOUNT}:inference-profile/{PROFILE}", "inferenceProfileId": PROFILE,
            "status": status, "type": "SYSTEM_DEFINED",
            "models": [{"modelArn": f"arn:aws:bedrock:{r}::foundation-model/{BASE}"} for r in regions]}


def _access(authorization: str = "AUTHORIZED", agreement: str = "AVAILABLE") -> dict:
    return {"modelId": BASE, "agreementAvailability": {"status": agreement}, "authorizationStatus": authorization,
            "entitlementAvailability": "AVAILABLE", "regionAvailability": "AVAILABLE"}


def test_the_example_profile_with_access_is_ok():
    bedrock, stubber = _stubbed("bedrock")
    stubber.add_response("get_inference_profile", _profile("us-east-1", "us-east-2", "us-west-2"),
                         {"inferenceProfileIdentifier": PROFILE})
    stubber.add_response("get_foundation_model_availability", _access(), {"modelId": BASE})
    [finding] = check_bedrock_model(PROFILE, "us-east-1", "routes.chat.serverless", bedrock)
    assert finding.status == "ok", finding


def test_a_bare_id_that_runs_only_through_a_profile_names_the_profile_to_use():
    bedrock, stubber = _stubbed("bedrock")
    stubber.add_response("get_foundation_model", {"modelDetails": {
        "modelArn": f"arn:aws:bedrock:us-east-1::foundation-model/{BASE}", "modelId": BASE,
        "inferenceTypesSupported": ["INFERENCE_PROFILE"]}}, {"modelIdentifier": BASE})
    stubber.add_response("list_inference_profiles", {"inferenceProfileSummaries": [
        {k: v for k, v in _profile("us-east-1", "us-west-2").items() if k != "inferenceProfileArn"}
        | {"inferenceProfileArn": _profile()["inferenceProfileArn"]}]}, {"typeEquals": "SYSTEM_DEFINED"})
    [finding] = check_bedrock_model(BASE, "us-east-1", "routes.chat.serverless", bedrock)
    assert finding.status == "problem" and "only through an inference profile" in finding.detail
    assert PROFILE in finding.fix and "routes.chat.serverless" in finding.fix


def test_a_profile_that_routes_beyond_the_granted_regions_is_a_problem():
    bedrock, stubber = _stubbed("bedrock")
    stubber.add_response("get_inference_profile", _profile("us-east-1", "us-west-2", "ca-central-1"))
    [finding] = check_bedrock_model(PROFILE, "us-east-1", "routes.chat.serverless", bedrock)
    assert finding.status == "problem" and "ca-central-1" in finding.detail


def test_an_unknown_profile_and_a_model_without_access_are_problems():
    bedrock, stubber = _stubbed("bedrock")
    stubber.add_client_error("get_inference_profile", "ResourceNotFoundException", "no such profile")
    [missing] = check_bedrock_model(PROFILE, "eu-west-1", "routes.chat.serverless", bedrock)
    assert missing.status == "problem" and "list-inference-profiles" in missing.fix
    stubber.add_response("get_inference_profile", _profile("us-east-1"))
    stubber.add_response("get_foundation_model_availability", _access("NOT_AUTHORIZED", "PENDING"))
    [denied] = check_bedrock_model(PROFILE, "us-east-1", "routes.chat.serverless", bedrock)
    assert denied.status == "problem" and "NOT_AUTHORIZED" in denied.detail and "Model access" in denied.fix


def test_credentials_that_may_not_look_make_the_check_unchecked_not_failed():
    bedrock, stubber = _stubbed("bedrock")
    stubber.add_client_error("get_inference_profile", "AccessDeniedException", "not allowed")
    [finding] = guarded("bedrock", lambda: check_bedrock_model(PROFILE, "us-east-1", "k", bedrock))
    assert finding.status == "unchecked" and "AccessDeniedException" in finding.detail


# -- the alert topic, alarms and budget ------------------------------------------------------------

@pytest.fixture
def aws(moto_endpoint):
    def client(service: str):
        return boto3.client(service, endpoint_url=moto_endpoint, region_name="us-east-1")
    return client


def test_an_unconfirmed_or_missing_email_is_named(aws):
    sns = aws("sns")
    topic = sns.create_topic(Name="doctor-alerts")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="ops@example.com")
    assert _statuses(check_subscriptions(CONFIG, sns, topic)) == ["ok"]  # moto confirms at once
    config = make_config({"budgets": {"alert-emails": ["ops@example.com", "cfo@example.com"]}})
    assert _statuses(check_subscriptions(config, sns, topic)) == ["ok", "problem"]

    stubbed, stubber = _stubbed("sns")
    stubber.add_response("list_subscriptions_by_topic", {"Subscriptions": [
        {"SubscriptionArn": "PendingConfirmation", "Protocol": "email", "Endpoint": "ops@example.com",
         "TopicArn": topic}]})
    [pending] = check_subscriptions(CONFIG, stubbed, topic)
    assert pending.status == "problem" and "confirmation" in pending.detail and "aws sns subscribe" in pending.fix


def _policy(*services: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "EnforceTls", "Effect": "Deny", "Principal": "*", "Action": "sns:Publish", "Resource": "*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        *({"Effect": "Allow", "Principal": {"Service": s}, "Action": "sns:Publish", "Resource": "*"}
          for s in services)]})


def test_a_topic_policy_that_shuts_cloudwatch_out_is_a_problem(aws):
    sns = aws("sns")
    topic = sns.create_topic(Name="doctor-policy")["TopicArn"]
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=_policy("budgets.amazonaws.com"))
    [finding] = check_topic_policy(sns, topic)
    assert finding.status == "problem" and "cloudwatch.amazonaws.com" in finding.detail
    sns.set_topic_attributes(TopicArn=topic, AttributeName="Policy",
                             AttributeValue=_policy("budgets.amazonaws.com", "cloudwatch.amazonaws.com"))
    assert _statuses(check_topic_policy(sns, topic)) == ["ok"]


def test_alarms_that_do_not_notify_the_topic_are_named(aws):
    config = make_config({"project": "doctor-alarms"})  # the moto server is shared: a prefix of its own
    cloudwatch, topic = aws("cloudwatch"), "arn:aws:sns:us-east-1:123456789012:doctor-alarms"
    assert _statuses(check_alarms(config, cloudwatch, topic)) == ["problem"]  # none deployed
    alarm = dict(MetricName="CostUSD", Namespace="doctor-alarms", Statistic="Sum", Period=3600,
                 EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")
    cloudwatch.put_metric_alarm(AlarmName="doctor-alarms-spend-daily", AlarmActions=[topic], **alarm)
    assert _statuses(check_alarms(config, cloudwatch, topic)) == ["ok"]
    cloudwatch.put_metric_alarm(AlarmName="doctor-alarms-policy-errors", **alarm)
    [finding] = check_alarms(config, cloudwatch, topic)
    assert finding.status == "problem" and "doctor-alarms-policy-errors" in finding.detail


def test_a_budget_whose_notices_miss_the_topic_is_a_problem():
    topic = "arn:aws:sns:us-east-1:123456789012:tierup-alerts"
    notice = {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN", "Threshold": 50.0,
              "ThresholdType": "PERCENTAGE"}
    budgets, stubber = _stubbed("budgets")
    for address in (topic, "arn:aws:sns:us-east-1:123456789012:elsewhere"):
        stubber.add_response("describe_budgets", {"Budgets": [
            {"BudgetName": f"{CONFIG.project}-monthly", "TimeUnit": "MONTHLY", "BudgetType": "COST"}]})
        stubber.add_response("describe_notifications_for_budget", {"Notifications": [notice]})
        stubber.add_response("describe_subscribers_for_notification", {"Subscribers": [
            {"SubscriptionType": "SNS", "Address": address}]})
    assert _statuses(check_budget(CONFIG, budgets, ACCOUNT, topic)) == ["ok"]
    assert _statuses(check_budget(CONFIG, budgets, ACCOUNT, topic)) == ["problem"]


def test_the_web_adapter_layer_must_exist_in_the_region():
    arn = web_adapter_layer_arn("ap-south-2")
    assert arn and arn.startswith("arn:aws:lambda:ap-south-2:")
    client, stubber = _stubbed("lambda", "ap-south-2")
    stubber.add_response("get_layer_version_by_arn", {"LayerVersionArn": arn, "Version": 1}, {"Arn": arn})
    assert _statuses(check_layer(client, arn)) == ["ok"]
    stubber.add_client_error("get_layer_version_by_arn", "ResourceNotFoundException", "no such layer")
    assert _statuses(check_layer(client, arn)) == ["problem"]


# -- prices and Modal ----------------------------------------------------------------------------

def test_a_model_without_a_price_is_named_with_its_key():
    assert _statuses(check_prices(CONFIG)) == ["ok"]
    # start-up refuses such a config; doctor also judges one built past validation
    route = CONFIG.routes["chat"].model_copy(update={"serverless": "amazon.nova-micro-v1:0"})
    config = CONFIG.model_copy(update={"routes": {**CONFIG.routes, "chat": route}})
    [finding] = check_prices(config)
    assert finding.status == "problem" and '"amazon.nova-micro-v1:0"' in finding.detail
    assert "routes.chat.serverless" in finding.detail


def test_doctor_says_which_routes_get_prompt_caching_and_which_lack_cache_prices():
    assert check_prompt_caching(CONFIG)[0].detail == "no route runs a Bedrock model with a prompt cache"
    nova = make_config({"routes": {"chat": {"serverless": "us.amazon.nova-micro-v1:0"}}})
    [finding] = check_prompt_caching(nova)
    assert finding.status == "ok" and "chat (us.amazon.nova-micro-v1:0)" in finding.detail
    unpriced = make_config({"routes": {"chat": {"serverless": "amazon.nova-lite-v1:0"}},
                            "pricing": {"models": {"amazon.nova-lite-v1:0": {"input-per-mtok": 0.06,
                                                                             "output-per-mtok": 0.24}}}})
    [finding] = check_prompt_caching(unpriced)
    assert finding.status == "problem" and "chat (amazon.nova-lite-v1:0)" in finding.detail
    assert "cache-write-per-mtok" in finding.fix


class FakeWorkspace:
    def __init__(self, deployed: dict | None = None, error: Exception | None = None) -> None:
        self.deployed = deployed or {}
        self.error = error

    def deployed_function(self, app_name: str, function_name: str) -> DeployedFunction:
        if self.error is not None:
            raise self.error
        if function_name not in self.deployed:
            raise ModalNotDeployed(function_name)
        return self.deployed[function_name]


def _deployed(route: str, *, proxy_auth: bool = True, max_inputs: int | None = None) -> DeployedFunction:
    gpu = CONFIG.pricing.gpus[CONFIG.routes[route].gpu]
    return DeployedFunction(web_url=f"https://YOUR-WORKSPACE--tierup-gpu-{route}.modal.run",
                            requires_proxy_auth=proxy_auth, max_inputs=max_inputs or gpu.max_concurrent_requests)


def test_modal_deployed_as_configured_is_ok_and_each_drift_is_named():
    good = {"gpu-chat": _deployed("chat"), "gpu-summarize": _deployed("summarize")}
    assert _statuses(check_modal(CONFIG, FakeWorkspace(good))) == ["ok", "ok"]
    open_endpoint = {**good, "gpu-chat": _deployed("chat", proxy_auth=False)}
    [chat, _] = check_modal(CONFIG, FakeWorkspace(open_endpoint))
    assert chat.status == "problem" and "open to the internet" in chat.detail
    resized = {**good, "gpu-chat": _deployed("chat", max_inputs=8)}
    assert "concurrent requests" in check_modal(CONFIG, FakeWorkspace(resized))[0].detail
    assert _statuses(check_modal(CONFIG, FakeWorkspace({"gpu-chat": good["gpu-chat"]}))) == ["ok", "problem"]


def test_a_refused_token_is_a_problem_and_no_token_is_unchecked():
    [refused] = check_modal(CONFIG, FakeWorkspace(error=ModalAuthError("invalid token")))
    assert refused.status == "problem" and "modal token new" in refused.fix
    [offline] = check_modal(CONFIG, FakeWorkspace(error=ModalUnreachable("no Modal token on this machine")))
    assert offline.status == "unchecked"


# -- the whole run ---------------------------------------------------------------------------------

def _account_stubs(runtime, region: str = "us-east-1") -> list[Stubber]:
    """What moto cannot answer: Lambda's account settings and layers, Bedrock's control plane."""
    lam, bedrock = runtime.aws.client("lambda", region), runtime.aws.client("bedrock", region)
    lam_stub, bedrock_stub = Stubber(lam), Stubber(bedrock)
    lam_stub.add_response("get_account_settings", _account(1000, 1000))
    arn = web_adapter_layer_arn(region)
    lam_stub.add_response("get_layer_version_by_arn", {"LayerVersionArn": arn, "Version": 1}, {"Arn": arn})
    bedrock_stub.add_response("get_inference_profile", _profile("us-east-1", "us-east-2", "us-west-2"))
    bedrock_stub.add_response("get_foundation_model_availability", _access())
    bedrock_stub.add_response("get_foundation_model", {"modelDetails": {
        "modelArn": "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0",
        "modelId": "amazon.titan-embed-text-v2:0", "inferenceTypesSupported": ["ON_DEMAND"]}})
    bedrock_stub.add_response("get_foundation_model_availability", _access())
    return [lam_stub, bedrock_stub]


def _run(runtime, stubs):
    for stub in stubs:
        stub.activate()
    try:
        return {f.check: f for f in run_doctor(runtime, region="us-east-1",
                                               modal=FakeWorkspace(error=ModalUnreachable("offline")))}
    finally:
        for stub in stubs:
            stub.deactivate()


def test_before_the_first_deploy_the_stack_checks_say_so(make_runtime):
    runtime = make_runtime()
    by_check = _run(runtime, _account_stubs(runtime))
    assert by_check["alert emails"].status == "unchecked" and "not deployed" in by_check["alert emails"].detail
    assert by_check["lambda concurrency"].status == "ok"
    assert by_check[f"bedrock {PROFILE} (us-east-1)"].status == "ok"
    assert by_check["web adapter layer"].status == "ok"
    assert by_check["modal"].status == "unchecked"
    assert not [f for f in by_check.values() if f.status == "problem"], by_check


def test_after_a_deploy_the_topic_from_the_stack_outputs_is_checked(make_runtime):
    runtime = make_runtime()
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {"AlertTopicArn": {"Value": {"Ref": "Topic"}}}}
    runtime.aws.client("cloudformation").create_stack(StackName=runtime.config.project,
                                                      TemplateBody=json.dumps(template))
    by_check = _run(runtime, _account_stubs(runtime))
    assert by_check["alert topic policy"].status == "ok"  # SNS's default policy, as moto creates it
    assert by_check["alarms"].status == "problem"  # the tiny stack has none
    assert by_check["alert email ops@example.com"].status == "problem"  # nor the subscription


def test_offline_the_command_says_what_it_could_not_check(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT),
           "MODAL_CONFIG_PATH": str(tmp_path / "absent.toml"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true"}
    result = subprocess.run([sys.executable, "-c", "from tierup.cli import main; main()", "doctor",
                             "--config", str(EXAMPLE_CONFIG)], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok        prices" in result.stdout
    assert "unchecked lambda concurrency: no usable AWS credentials" in result.stdout
    assert "unchecked modal: no Modal token on this machine" in result.stdout
    assert "0 problems" in result.stdout
