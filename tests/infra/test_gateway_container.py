"""``[gateway] hosting = "container"``: the stack synthesised from the example tierup.toml with the
gateway on ECS Fargate behind an HTTPS load balancer. What is checked: cdk-nag passes with reasoned
acknowledgements; the load balancer's settings that streaming depends on; the health check; the
autoscaling; arm64 and the very bundle the Lambda runs; the same grants and environment as the
gateway function (the default synth, beside it); CloudWatch logs; and what the Lambda-only parts
become. Assertions are on properties and counts, never on logical IDs."""

from __future__ import annotations

import json

import pytest

from functions.core.config import load_config
from functions.core.tables import TABLES, table_env_var
from infra.bundling import LAMBDA_RUNTIME, PYTHON_VERSION, lambda_bundle
from tests.support import EXAMPLE_CONFIG, ROOT

from .conftest import acknowledged_rules, cdk_context, config_variant, synthesize
from .test_stack import actions_of, function_by_handler, of_type, statements_of

CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0b6a8c37-1f7e-4a0e-9f3b-2c1d4e5f6a7b"
CONTAINER = {"provider-timeout-s = 120\n":
             'provider-timeout-s = 120\nhosting = "container"\n\n[gateway.container]\n'
             f'certificate-arn = "{CERTIFICATE}"\nmin-tasks = 2\nmax-tasks = 6\n'
             'target-requests-per-task = 1800\ntarget-cpu-percent = 55\n'}


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    return config_variant(tmp_path_factory.mktemp("config"), CONTAINER)


@pytest.fixture(scope="module")
def synthesized(config_file, tmp_path_factory):
    return synthesize(config_file, tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="module")
def resources(synthesized):
    return synthesized[1].to_json()["Resources"]


@pytest.fixture(scope="module")
def lambda_resources(tmp_path_factory):
    """The default synth (Lambda hosting), to compare the gateway's grants and environment with."""
    return synthesize(EXAMPLE_CONFIG, tmp_path_factory.mktemp("cdk.out"))[1].to_json()["Resources"]


def lambda_bundle_key(config_file) -> str:
    """The S3 key of the gateway's Lambda bundle for ``config_file``, as a Lambda function gets it."""
    from aws_cdk import App, Stack
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk.assertions import Template

    stack = Stack(App(context=cdk_context()), "Probe")
    lambda_.Function(stack, "Gateway", code=lambda_bundle(ROOT, config_file), handler="run.sh",
                     runtime=LAMBDA_RUNTIME)
    [function] = of_type(Template.from_stack(stack).to_json()["Resources"], "AWS::Lambda::Function").values()
    return function["Properties"]["Code"]["S3Key"]


def one(resources: dict, kind: str) -> dict:
    [found] = of_type(resources, kind).values()
    return found["Properties"]


def containers(resources: dict) -> dict[str, dict]:
    return {c["Name"]: c for c in one(resources, "AWS::ECS::TaskDefinition")["ContainerDefinitions"]}


def attributes(props: dict, key: str) -> dict[str, str]:
    return {a["Key"]: a["Value"] for a in props[key]}


def environment(container: dict) -> dict:
    return {v["Name"]: v["Value"] for v in container["Environment"]}


def role_statements(resources: dict, role_id: str) -> list[dict]:
    statements = []
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def task_role_id(resources: dict) -> str:
    return one(resources, "AWS::ECS::TaskDefinition")["TaskRoleArn"]["Fn::GetAtt"][0]


# --- the Lambda-only parts -----------------------------------------------------------------------

def test_the_gateway_is_a_service_not_a_function(resources):
    handlers = {r["Properties"]["Handler"] for r in of_type(resources, "AWS::Lambda::Function").values()}
    assert "run.sh" not in handlers
    assert not of_type(resources, "AWS::Lambda::Url")
    service = one(resources, "AWS::ECS::Service")
    assert service["LaunchType"] == "FARGATE"
    assert service["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    assert service["DeploymentConfiguration"]["MinimumHealthyPercent"] == 100  # a deploy never drops capacity


def test_kill_switch_has_no_function_to_stop(resources):
    """The hard stop is the flags alone: no function name, no Lambda concurrency grant."""
    switch_id, switch = function_by_handler(resources, "functions.killswitch_handler.handler")
    assert "TIERUP_GATEWAY_FUNCTION_NAME" not in switch["Environment"]["Variables"]
    actions = {a for s in statements_of(resources, switch) for a in actions_of(s)}
    assert not {a for a in actions if a.startswith("lambda:")}


def test_outputs_name_the_https_url_and_no_gateway_function(synthesized):
    outputs = synthesized[1].to_json()["Outputs"]
    assert not any("FunctionName" in key for key in outputs)
    [url] = [o for key, o in outputs.items() if key.startswith("GatewayUrl")]
    assert json.dumps(url["Value"]).startswith('{"Fn::Join": ["", ["https://"')


# --- streaming through the load balancer ---------------------------------------------------------

def test_load_balancer_waits_out_the_longest_silence_and_uvicorn_outlasts_it(resources, config_file):
    provider_timeout = load_config(config_file).gateway.provider_timeout_s
    balancer = one(resources, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    assert balancer["Scheme"] == "internet-facing"
    idle = int(attributes(balancer, "LoadBalancerAttributes")["idle_timeout.timeout_seconds"])
    assert idle > provider_timeout  # a non-streamed answer sends nothing until it is whole
    keep_alive = int(environment(containers(resources)["Gateway"])["KEEP_ALIVE_S"])
    assert keep_alive > idle  # the balancer closes idle connections, never uvicorn (no 502s on reuse)


def test_only_https_with_the_configured_certificate(resources):
    [listener] = [r["Properties"] for r in of_type(resources, "AWS::ElasticLoadBalancingV2::Listener").values()]
    assert (listener["Port"], listener["Protocol"]) == (443, "HTTPS")
    assert listener["Certificates"] == [{"CertificateArn": CERTIFICATE}]
    assert listener["SslPolicy"].startswith("ELBSecurityPolicy-TLS13")


def test_targets_speak_http1_least_outstanding_first_and_drain_their_streams(resources, config_file):
    provider_timeout = load_config(config_file).gateway.provider_timeout_s
    group = one(resources, "AWS::ElasticLoadBalancingV2::TargetGroup")
    assert (group["Protocol"], group["ProtocolVersion"], group["Port"]) == ("HTTP", "HTTP1", 8080)
    settings = attributes(group, "TargetGroupAttributes")
    assert settings["load_balancing.algorithm.type"] == "least_outstanding_requests"
    assert int(settings["deregistration_delay.timeout_seconds"]) > provider_timeout
    assert settings["stickiness.enabled"] == "false"


def test_health_check_is_the_gateway_s_and_a_store_outage_does_not_recycle_tasks(resources):
    group = one(resources, "AWS::ElasticLoadBalancingV2::TargetGroup")
    assert group["HealthCheckPath"] == "/health"
    assert set(group["Matcher"]["HttpCode"].split(",")) == {"200", "503"}
    assert group["HealthCheckTimeoutSeconds"] < group["HealthCheckIntervalSeconds"]
    assert one(resources, "AWS::ECS::Service")["HealthCheckGracePeriodSeconds"] >= 60


def test_tasks_admit_only_the_load_balancer(resources):
    ingress = [r["Properties"] for r in of_type(resources, "AWS::EC2::SecurityGroupIngress").values()]
    assert len(ingress) == 1
    assert (ingress[0]["FromPort"], ingress[0]["ToPort"]) == (8080, 8080)
    assert "SourceSecurityGroupId" in ingress[0]
    groups = [r["Properties"] for r in of_type(resources, "AWS::EC2::SecurityGroup").values()]
    open_to_all = [rule for g in groups for rule in g.get("SecurityGroupIngress", [])
                   if rule.get("CidrIp") == "0.0.0.0/0"]
    assert [(rule["FromPort"], rule["ToPort"]) for rule in open_to_all] == [(443, 443)]


# --- autoscaling ---------------------------------------------------------------------------------

def test_autoscaling_follows_requests_per_task_and_cpu_within_the_configured_range(resources):
    target = one(resources, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 6)
    policies = {p["Properties"]["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]
                ["PredefinedMetricType"]: p["Properties"]["TargetTrackingScalingPolicyConfiguration"]
                for p in of_type(resources, "AWS::ApplicationAutoScaling::ScalingPolicy").values()}
    assert policies["ALBRequestCountPerTarget"]["TargetValue"] == 1800
    assert policies["ECSServiceAverageCPUUtilization"]["TargetValue"] == 55
    for policy in policies.values():  # out fast, in slowly: every scale-in drains streams
        assert policy["ScaleOutCooldown"] < policy["ScaleInCooldown"]


# --- the task: arm64, the Lambda's bundle, the Lambda's grants and environment -------------------

def test_tasks_run_on_graviton_from_the_lambda_bundle_without_an_image_build(resources, config_file):
    task = one(resources, "AWS::ECS::TaskDefinition")
    assert task["RuntimePlatform"] == {"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"}
    assert task["RequiresCompatibilities"] == ["FARGATE"]
    assert (task["Cpu"], task["Memory"]) == ("512", "1024")
    parts = containers(resources)
    fetch, gateway = parts["FetchBundle"], parts["Gateway"]
    assert fetch["Essential"] is False and gateway["Essential"] is True
    assert gateway["DependsOn"] == [{"Condition": "SUCCESS", "ContainerName": "FetchBundle"}]
    assert all(c["Image"].startswith("public.ecr.aws/") for c in parts.values())
    assert gateway["Image"].endswith(f"python:{PYTHON_VERSION}-slim")  # the bundle's bytecode version
    assert gateway["Command"][0].endswith("exec sh /var/task/run.sh")  # the Lambda's own start script
    # the object copied, and the only one the task may read, is the gateway's Lambda bundle
    bundle_key = lambda_bundle_key(config_file)
    assert bundle_key in json.dumps(fetch["Command"])
    readable = [s for s in role_statements(resources, task_role_id(resources)) if "s3:GetObject" in actions_of(s)
                and not json.dumps(s["Resource"]).endswith('/files/*"]]}')]  # batch files, as on Lambda
    assert len(readable) == 1 and actions_of(readable[0]) == ["s3:GetObject"]
    assert json.dumps(readable[0]["Resource"]).endswith(f'/{bundle_key}"]]}}')


def test_task_gets_the_gateway_function_s_environment(resources, lambda_resources):
    _, function = function_by_handler(lambda_resources, "run.sh")
    lambda_env = function["Environment"]["Variables"]
    container_env = environment(containers(resources)["Gateway"])
    adapter_only = {"AWS_LAMBDA_EXEC_WRAPPER", "AWS_LWA_INVOKE_MODE", "AWS_LWA_READINESS_CHECK_PATH"}
    assert set(lambda_env) - adapter_only <= set(container_env)
    for name in (table_env_var(spec) for spec in TABLES):
        assert container_env[name] == lambda_env[name]
    assert container_env["TIERUP_CONFIG"] == lambda_env["TIERUP_CONFIG"]
    assert container_env["HOST"] == "0.0.0.0"  # the task's interface, where the balancer connects
    assert container_env["TIERUP_EMF"] == "stdout"  # metric lines, as Lambda always writes them


def test_task_role_has_the_gateway_function_s_grants(resources, lambda_resources):
    """One set of grants: the task role's statements are the function's, less what each host needs
    for itself (the function writes its log group; the task reads its bundle)."""
    _, function = function_by_handler(lambda_resources, "run.sh")

    def comparable(statements):
        return sorted(json.dumps(s, sort_keys=True) for s in statements
                      if not any(a.startswith("logs:") or a == "s3:GetObject" for a in actions_of(s)))

    assert comparable(role_statements(resources, task_role_id(resources))) == \
        comparable(statements_of(lambda_resources, function))
    assert comparable(role_statements(resources, task_role_id(resources)))  # not vacuous


def test_both_containers_log_to_one_group_with_a_retention(resources):
    groups = {logical_id: r["Properties"] for logical_id, r in of_type(resources, "AWS::Logs::LogGroup").items()}
    for container in containers(resources).values():
        log = container["LogConfiguration"]
        assert log["LogDriver"] == "awslogs"
        assert groups[log["Options"]["awslogs-group"]["Ref"]]["RetentionInDays"] == 30


def test_container_alarms_notify_the_topic(resources):
    alarms = {r["Properties"]["AlarmName"]: r["Properties"]
              for r in of_type(resources, "AWS::CloudWatch::Alarm").values()}
    for name in ("tierup-gateway-5xx-share", "tierup-gateway-unhealthy-tasks", "tierup-gateway-cpu"):
        assert alarms[name]["AlarmActions"], name
    assert "tierup-gateway-throttles" not in alarms  # a Lambda alarm, meaningless here


# --- cdk-nag -------------------------------------------------------------------------------------

def test_cdk_nag_passes_with_only_reasoned_acknowledgements(synthesized):
    stack, _ = synthesized
    acknowledged = acknowledged_rules(stack)
    ours = {rule: reason for rule, reason in acknowledged.items() if rule.startswith("AwsSolutions::")}
    batch = [rule for rule in ours if "<BatchFiles" in rule or "model-invocation-job" in rule
             or rule.endswith("-S1")]  # the batch tier's, as on Lambda
    assert set(ours) - set(batch) == {f"AwsSolutions::AwsSolutions-{rule}" for rule in
                                      ("SMG4", "L1", "SQS3", "EC23", "ELB2", "ECS2", "ECS4")}
    assert all(len(reason) > 40 for reason in ours.values())


def test_cfn_lint_finds_no_errors(synthesized, tmp_path):
    from cfnlint.api import ManualArgs, lint_file

    path = tmp_path / "template.json"
    path.write_text(json.dumps(synthesized[1].to_json()), encoding="utf-8")
    matches = lint_file(path, config=ManualArgs(regions=["us-east-1", "eu-west-1"]))
    findings = [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches
                if m.rule.id.startswith(("E", "W"))]
    assert [f for f in findings if f.startswith("E")] == [], findings
