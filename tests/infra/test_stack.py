"""The stack synthesised from the example tierup.toml: what each resource is, what each function
may do, and that cdk-nag's AWS Solutions checks pass. Assertions are on properties and counts,
never on logical IDs."""

from __future__ import annotations

import json

import pytest

from functions.core.config import load_config
from functions.core.tables import TABLES, table_env_var
from tests.support import EXAMPLE_CONFIG

from .conftest import acknowledged_rules, synthesize

CONFIG = load_config(EXAMPLE_CONFIG)


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    return synthesize(EXAMPLE_CONFIG, tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="module")
def template(synthesized):
    return synthesized[1]


@pytest.fixture(scope="module")
def resources(template):
    return template.to_json()["Resources"]


def of_type(resources: dict, kind: str) -> dict[str, dict]:
    return {logical_id: r for logical_id, r in resources.items() if r["Type"] == kind}


def function_by_handler(resources: dict, handler: str) -> tuple[str, dict]:
    matches = [(logical_id, r["Properties"]) for logical_id, r in of_type(resources, "AWS::Lambda::Function").items()
               if r["Properties"]["Handler"] == handler]
    assert len(matches) == 1, f"{len(matches)} functions with handler {handler}"
    return matches[0]


def statements_of(resources: dict, function_props: dict) -> list[dict]:
    """Every IAM statement attached to the function's role."""
    role_id = function_props["Role"]["Fn::GetAtt"][0]
    role = resources[role_id]["Properties"]
    assert not role.get("ManagedPolicyArns"), "functions get no managed policies"
    statements = []
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def actions_of(statement: dict) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else actions


def resources_of(statement: dict) -> list:
    found = statement["Resource"]
    return found if isinstance(found, list) else [found]


def resolve_arn(value) -> str:
    """A Fn::Join of literals and pseudo parameters, as text (``${AWS::Partition}``...)."""
    if isinstance(value, str):
        return value
    parts = value["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else "${" + p["Ref"] + "}" for p in parts)


def table_ids(resources: dict) -> dict[str, str]:
    """Spec name -> the table's logical ID, through the names the gateway receives (CloudFormation
    names the tables, so a table is known by the variable that carries its name)."""
    _, gateway = function_by_handler(resources, "run.sh")
    env = gateway["Environment"]["Variables"]
    return {spec.name: env[table_env_var(spec)]["Ref"] for spec in TABLES}


# --- tables --------------------------------------------------------------------------------------

def test_one_table_per_spec_on_demand_with_pitr_and_ttl(resources):
    ids = table_ids(resources)
    assert sorted(ids.values()) == sorted(of_type(resources, "AWS::DynamoDB::Table"))
    for name, logical_id in ids.items():
        table = resources[logical_id]["Properties"]
        spec = next(spec for spec in TABLES if spec.name == name)
        assert table["BillingMode"] == "PAY_PER_REQUEST"
        assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        keys = {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]}
        assert keys == {spec.partition_key: "HASH", **({spec.sort_key: "RANGE"} if spec.sort_key else {})}
        assert {a["AttributeType"] for a in table["AttributeDefinitions"]} == {"S"}
        if spec.ttl_attribute:
            assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
        else:
            assert "TimeToLiveSpecification" not in table
    retained = [r for r in of_type(resources, "AWS::DynamoDB::Table").values() if r["DeletionPolicy"] == "Retain"]
    assert len(retained) == len(TABLES)
    tables = [r["Properties"] for r in of_type(resources, "AWS::DynamoDB::Table").values()]
    assert all({"Key": "project", "Value": "tierup"} in t["Tags"] for t in tables)  # cost allocation


# --- gateway -------------------------------------------------------------------------------------

def test_gateway_runs_uvicorn_under_the_web_adapter_on_arm64(resources):
    _, gateway = function_by_handler(resources, "run.sh")
    assert gateway["Architectures"] == ["arm64"]
    assert gateway["Runtime"] == "python3.13"
    assert gateway["Timeout"] == 900
    assert gateway["MemorySize"] == 160  # [gateway] lambda-memory-mb's default: bench/gateway_cost.py
    [layer] = gateway["Layers"]
    assert resolve_arn(layer) == "arn:aws:lambda:${AWS::Region}:753240598075:layer:LambdaAdapterLayerArm64:30"
    env = gateway["Environment"]["Variables"]
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert env["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert env["AWS_LWA_READINESS_CHECK_PATH"] == "/health"
    assert env["PORT"] == "8080"
    assert env["TIERUP_CONFIG"] == "/var/task/tierup.toml"
    for spec in TABLES:
        assert table_env_var(spec) in env
    assert "Ref" in env["TIERUP_ALERT_TOPIC_ARN"]
    assert "ReservedConcurrentExecutions" not in gateway  # the example config reserves none


def test_lambda_hosting_is_the_default_and_builds_no_container_parts(resources):
    """``[gateway] hosting`` unset: no VPC, cluster or load balancer (infra/gateway_container.py)."""
    kinds = {r["Type"] for r in resources.values()}
    assert not {kind for kind in kinds if kind.startswith(("AWS::ECS::", "AWS::ElasticLoadBalancingV2::", "AWS::EC2::"))}


def test_gateway_function_url_streams_and_leaves_auth_to_the_api_keys(template):
    template.resource_count_is("AWS::Lambda::Url", 1)
    template.has_resource_properties("AWS::Lambda::Url", {"AuthType": "NONE", "InvokeMode": "RESPONSE_STREAM"})


def test_gateway_bundle_is_lean_and_control_functions_share_one_with_modal(resources):
    _, gateway = function_by_handler(resources, "run.sh")
    _, policy = function_by_handler(resources, "functions.policy_handler.handler")
    _, kill_switch = function_by_handler(resources, "functions.killswitch_handler.handler")
    assert policy["Code"] == kill_switch["Code"]
    assert gateway["Code"] != policy["Code"]


def test_every_function_logs_to_its_own_group_with_a_retention(resources):
    groups = of_type(resources, "AWS::Logs::LogGroup")
    functions = of_type(resources, "AWS::Lambda::Function")
    assert len(groups) == len(functions) == 5  # gateway, policy, kill switch, batch worker, Bedrock poller
    assert {g["Properties"]["RetentionInDays"] for g in groups.values()} == {30}
    assert {f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for f in functions.values()} == set(groups)


def test_gateway_invokes_only_the_configured_bedrock_models(resources):
    _, gateway = function_by_handler(resources, "run.sh")
    statements = statements_of(resources, gateway)
    bedrock = [s for s in statements if any(a.startswith("bedrock:") for a in actions_of(s))]
    assert len(bedrock) == 1
    assert sorted(actions_of(bedrock[0])) == ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
    arns = {resolve_arn(r) for r in resources_of(bedrock[0])}
    # The example's Llama routes go through the US inference profile: the profile in the Bedrock
    # tier's region, and the model in every region the profile may serve it from.
    profile = "us.meta.llama3-1-8b-instruct-v1:0"
    assert {route.serverless for route in CONFIG.routes.values() if route.kind == "chat"} == {profile}
    assert arns == {
        f"arn:${{AWS::Partition}}:bedrock:us-east-1:${{AWS::AccountId}}:inference-profile/{profile}",
        *(f"arn:${{AWS::Partition}}:bedrock:{region}::foundation-model/meta.llama3-1-8b-instruct-v1:0"
          for region in ("us-east-1", "us-east-2", "us-west-1", "us-west-2")),
        "arn:${AWS::Partition}:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0",  # embed, cache
    }


def test_gateway_reads_keys_and_writes_only_its_own_tables(resources):
    _, gateway = function_by_handler(resources, "run.sh")
    tables = table_ids(resources)
    writes = {r["Fn::GetAtt"][0] for s in statements_of(resources, gateway) if "dynamodb:PutItem" in actions_of(s)
              for r in resources_of(s)}
    reads = {r["Fn::GetAtt"][0] for s in statements_of(resources, gateway) if "dynamodb:GetItem" in actions_of(s)
             for r in resources_of(s)}
    assert writes == {tables["usage"], tables["cache"], tables["state"]}
    assert reads == set(tables.values())


def test_no_function_has_a_wildcard_resource(resources):
    for props in (r["Properties"] for r in of_type(resources, "AWS::Lambda::Function").values()):
        for statement in statements_of(resources, props):
            assert "*" not in resources_of(statement), statement
            assert not any(a.endswith("*") for a in actions_of(statement)), statement


# --- policy --------------------------------------------------------------------------------------

def test_policy_runs_every_minute_without_retries(resources):
    policy_id, policy = function_by_handler(resources, "functions.policy_handler.handler")
    assert policy["Architectures"] == ["arm64"]
    assert "ReservedConcurrentExecutions" not in policy  # one run at a time: the lease in the state table
    [retries] = [r["Properties"] for r in of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
                 if r["Properties"]["FunctionName"] == {"Ref": policy_id}]
    assert retries["MaximumRetryAttempts"] == 0
    [rule] = [r for r in of_type(resources, "AWS::Events::Rule").values()
              if r["Properties"]["ScheduleExpression"].startswith("rate(")
              and r["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [policy_id, "Arn"]}]
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    assert rule["Properties"]["State"] == "ENABLED"
    assert [t["Arn"] for t in rule["Properties"]["Targets"]] == [{"Fn::GetAtt": [policy_id, "Arn"]}]


def test_kill_switch_releases_expired_periods_daily(resources):
    switch_id, _ = function_by_handler(resources, "functions.killswitch_handler.handler")
    [rule] = [r for r in of_type(resources, "AWS::Events::Rule").values()
              if r["Properties"]["ScheduleExpression"].startswith("cron(")]
    assert rule["Properties"]["ScheduleExpression"] == "cron(5 0 * * ? *)"
    assert [t["Arn"] for t in rule["Properties"]["Targets"]] == [{"Fn::GetAtt": [switch_id, "Arn"]}]


def test_policy_reads_the_modal_secret_and_writes_usage_and_state(resources):
    _, policy = function_by_handler(resources, "functions.policy_handler.handler")
    secret_id = policy["Environment"]["Variables"]["TIERUP_MODAL_SECRET_ARN"]["Ref"]
    assert secret_id in of_type(resources, "AWS::SecretsManager::Secret")
    # and the provider keys, for the proxy auth token its GPU health probe sends
    keys_id = policy["Environment"]["Variables"]["TIERUP_PROVIDER_KEYS_SECRET_ARN"]["Ref"]
    statements = statements_of(resources, policy)
    secret_reads = [s for s in statements if "secretsmanager:GetSecretValue" in actions_of(s)]
    assert sorted(r["Ref"] for s in secret_reads for r in resources_of(s)) == sorted([secret_id, keys_id])
    tables = table_ids(resources)
    writes = {r["Fn::GetAtt"][0] for s in statements if "dynamodb:PutItem" in actions_of(s) for r in resources_of(s)}
    assert writes == {tables["usage"], tables["state"]}


def test_gateway_reads_the_tiers_api_keys_from_their_own_secret(resources):
    _, gateway = function_by_handler(resources, "run.sh")
    secret_id = gateway["Environment"]["Variables"]["TIERUP_PROVIDER_KEYS_SECRET_ARN"]["Ref"]
    secret = of_type(resources, "AWS::SecretsManager::Secret")[secret_id]["Properties"]
    assert secret["SecretString"] == "{}"  # a fixed placeholder, never a value
    reads = [s for s in statements_of(resources, gateway) if "secretsmanager:GetSecretValue" in actions_of(s)]
    assert [resources_of(s) for s in reads] == [[{"Ref": secret_id}]]


# --- guardrails ----------------------------------------------------------------------------------

def test_kill_switch_changes_the_concurrency_of_the_gateway_only(resources):
    gateway_id, _ = function_by_handler(resources, "run.sh")
    _, kill_switch = function_by_handler(resources, "functions.killswitch_handler.handler")
    statements = statements_of(resources, kill_switch)
    concurrency = [s for s in statements if "lambda:PutFunctionConcurrency" in actions_of(s)]
    assert len(concurrency) == 1
    assert "lambda:DeleteFunctionConcurrency" in actions_of(concurrency[0])
    assert resources_of(concurrency[0]) == [{"Fn::GetAtt": [gateway_id, "Arn"]}]
    lambda_actions = {a for s in statements for a in actions_of(s) if a.startswith("lambda:")}
    assert lambda_actions == {"lambda:GetFunctionConcurrency", "lambda:PutFunctionConcurrency",
                              "lambda:DeleteFunctionConcurrency"}
    env = kill_switch["Environment"]["Variables"]
    assert env["TIERUP_GATEWAY_FUNCTION_NAME"] == {"Ref": gateway_id}
    assert {"TIERUP_TABLE_STATE", "TIERUP_TABLE_USAGE", "TIERUP_ALERT_TOPIC_ARN", "TIERUP_MODAL_SECRET_ARN"} <= set(env)


def test_kill_switch_writes_state_only(resources):
    _, kill_switch = function_by_handler(resources, "functions.killswitch_handler.handler")
    tables = table_ids(resources)
    statements = statements_of(resources, kill_switch)
    writes = {r["Fn::GetAtt"][0] for s in statements if "dynamodb:PutItem" in actions_of(s) for r in resources_of(s)}
    reads = {r["Fn::GetAtt"][0] for s in statements if "dynamodb:GetItem" in actions_of(s) for r in resources_of(s)}
    assert writes == {tables["state"]}
    assert reads == {tables["state"], tables["usage"]}


def test_alert_topic_is_encrypted_ssl_only_and_reaches_emails_and_the_kill_switch(resources, template):
    [(topic_id, topic)] = of_type(resources, "AWS::SNS::Topic").items()
    assert "KmsMasterKeyId" in topic["Properties"]
    subscriptions = [r["Properties"] for r in of_type(resources, "AWS::SNS::Subscription").values()]
    assert all(s["TopicArn"] == {"Ref": topic_id} for s in subscriptions)
    emails = sorted(s["Endpoint"] for s in subscriptions if s["Protocol"] == "email")
    assert emails == sorted(CONFIG.budgets.alert_emails)
    kill_switch_id, _ = function_by_handler(resources, "functions.killswitch_handler.handler")
    lambdas = [s["Endpoint"] for s in subscriptions if s["Protocol"] == "lambda"]
    assert lambdas == [{"Fn::GetAtt": [kill_switch_id, "Arn"]}]
    [policy] = of_type(resources, "AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for s in statements)
    budgets = [s for s in statements if s.get("Principal") == {"Service": "budgets.amazonaws.com"}]
    assert len(budgets) == 1
    assert budgets[0]["Action"] == "sns:Publish"
    assert budgets[0]["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    [key] = of_type(resources, "AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True
    key_services = [sorted(s["Principal"]["Service"]) for s in key["Properties"]["KeyPolicy"]["Statement"]
                    if "Service" in s["Principal"]]
    assert ["budgets.amazonaws.com", "cloudwatch.amazonaws.com"] in key_services


def test_budget_notifies_emails_and_topic_at_each_threshold_and_forecast(resources):
    [budget] = of_type(resources, "AWS::Budgets::Budget").values()
    [topic_id] = of_type(resources, "AWS::SNS::Topic")
    data = budget["Properties"]["Budget"]
    assert data["BudgetType"] == "COST" and data["TimeUnit"] == "MONTHLY"
    assert data["BudgetLimit"] == {"Amount": CONFIG.budgets.global_.monthly_usd, "Unit": "USD"}
    notifications = budget["Properties"]["NotificationsWithSubscribers"]
    kinds = sorted((n["Notification"]["NotificationType"], n["Notification"]["Threshold"]) for n in notifications)
    assert kinds == sorted([("ACTUAL", t * 100) for t in CONFIG.budgets.thresholds] + [("FORECASTED", 100)])
    for notification in notifications:
        subscribers = {(s["SubscriptionType"], json.dumps(s["Address"])) for s in notification["Subscribers"]}
        assert subscribers == {("EMAIL", json.dumps(e)) for e in CONFIG.budgets.alert_emails} | {
            ("SNS", json.dumps({"Ref": topic_id}))}
    assert topic_id in str(budget.get("DependsOn"))  # the topic policy exists before the budget


def test_every_alarm_notifies_the_topic(resources):
    [topic_id] = of_type(resources, "AWS::SNS::Topic")
    alarms = [r["Properties"] for r in of_type(resources, "AWS::CloudWatch::Alarm").values()]
    # anomaly + hourly spike + global monthly pace + route chat: daily cap and monthly pace
    # + kill-switch errors + policy errors + gateway: errors, throttles, 5xx share, concurrency
    # + kill-switch failed events + batch: dead letters and stuck work
    assert len(alarms) == 14
    assert all(a["AlarmActions"] == [{"Ref": topic_id}] for a in alarms)
    anomaly = [a for a in alarms if "ThresholdMetricId" in a]
    assert len(anomaly) == 1
    assert any("ANOMALY_DETECTION_BAND" in m.get("Expression", "") for m in anomaly[0]["Metrics"])
    assert "tierup-kill-switch" not in anomaly[0]["AlarmDescription"]  # anomalies inform people only


def test_control_function_failures_alarm_for_people(resources):
    kill_switch_id, _ = function_by_handler(resources, "functions.killswitch_handler.handler")
    policy_id, _ = function_by_handler(resources, "functions.policy_handler.handler")
    alarms = [r["Properties"] for r in of_type(resources, "AWS::CloudWatch::Alarm").values()
              if r["Properties"].get("MetricName") == "Errors"]
    watched = {a["Dimensions"][0]["Value"]["Ref"]: a for a in alarms}
    gateway_id, _ = function_by_handler(resources, "run.sh")
    assert set(watched) == {kill_switch_id, policy_id, gateway_id}
    assert watched[kill_switch_id]["EvaluationPeriods"] == 1 and watched[kill_switch_id]["Threshold"] == 1
    assert all("tierup-kill-switch" not in a["AlarmDescription"] for a in alarms)


def test_route_daily_cap_alarm_engages_the_route_kill_switch(resources):
    alarms = [r["Properties"] for r in of_type(resources, "AWS::CloudWatch::Alarm").values()]
    [daily] = [a for a in alarms if a.get("Threshold") == CONFIG.budgets.routes["chat"].daily_usd]
    assert "Metrics" not in daily  # a plain metric alarm: its notification names the metric
    assert daily["MetricName"] == "CostUSD" and daily["Namespace"] == "tierup/tierup"
    assert daily["Dimensions"] == [{"Name": "Route", "Value": "chat"}]
    assert daily["Period"] == 86400 and daily["Statistic"] == "Sum"
    assert daily["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert "[tierup-kill-switch scope=route:chat period=daily]" in daily["AlarmDescription"]


def test_alarm_descriptions_parse_as_kill_switch_triggers(resources):
    """The kill switch reads scopes from the descriptions: each cap alarm must name a real scope."""
    from functions.core.notifications import _MARKER

    alarms = [r["Properties"] for r in of_type(resources, "AWS::CloudWatch::Alarm").values()]
    scopes = sorted(m["scope"] for a in alarms if (m := _MARKER.search(a["AlarmDescription"])))
    assert scopes == ["route:chat"]  # the daily cap; monthly-pace alarms only alert by default


def dashboard_widgets(resources: dict) -> list[dict]:
    [dashboard] = of_type(resources, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    if isinstance(body, dict):  # a Fn::Join around the region and other tokens
        body = "".join(p if isinstance(p, str) else "TOKEN" for p in body["Fn::Join"][1])
    return json.loads(body)["widgets"]


def test_dashboard_shows_every_metric_per_route(resources):
    widgets = dashboard_widgets(resources)
    titles = [w["properties"].get("title") for w in widgets]
    for title in ("Spend per hour", "Requests", "Prompt tokens", "Completion tokens", "Latency p50 / p95 / p99",
                  "Cache hit rate", "Refusals (quota, budget, overload)", "Requests by route and tier", "Alarms",
                  "Spend per hour: model, GPU, gateway", "Gateway's own cost per hour"):
        assert title in titles
    graphs = {w["properties"]["title"]: json.dumps(w["properties"].get("metrics", [])) for w in widgets}
    for route in CONFIG.routes:
        assert f'"{route}"' in graphs["Requests"]
        for stat in ("p50", "p95", "p99"):
            assert f"{route} {stat}" in graphs["Latency p50 / p95 / p99"]
    assert "100 * hits0 / requests0" in graphs["Cache hit rate"]
    assert "SEARCH(" in graphs["Requests by route and tier"] and "Tier" in graphs["Requests by route and tier"]
    assert "GatewayCostUSD" in graphs["Spend per hour: model, GPU, gateway"]
    assert "Gpu" in graphs["Spend per hour: model, GPU, gateway"]


# --- cdk-nag -------------------------------------------------------------------------------------

def test_cdk_nag_passes_with_only_reasoned_acknowledgements(synthesized):
    """The fixture's ``app.synth()`` raises on any finding; here: every acknowledgement has a reason."""
    stack, _ = synthesized
    acknowledged = acknowledged_rules(stack)
    assert {rule.split("[")[0] for rule in acknowledged} == {
        "AwsSolutions::AwsSolutions-SMG4", "AwsSolutions::AwsSolutions-L1", "AwsSolutions::AwsSolutions-SQS3",
        "AwsSolutions::AwsSolutions-S1", "AwsSolutions::AwsSolutions-IAM5"}  # S1, IAM5: the batch bucket
    assert all(len(reason) > 40 for reason in acknowledged.values())


def test_cdk_nag_fails_the_synth_on_a_finding(tmp_path):
    """The checks really run: a topic without SSL enforcement in the same app fails the synth."""
    from aws_cdk import App, Stack
    from aws_cdk import aws_sns as sns

    from infra.app import build_stack

    from .conftest import SKIP_BUNDLING

    app = App(context=SKIP_BUNDLING, outdir=str(tmp_path))
    build_stack(app, EXAMPLE_CONFIG)
    sns.Topic(Stack(app, "Careless"), "PlainTopic")
    with pytest.raises(Exception, match="AwsSolutions-SNS3"):
        app.synth()


def test_alarms_and_dashboard_read_the_metrics_the_gateway_writes():
    """The gateway's EMF lines carry exactly the namespace, names and dimensions infra reads."""
    from functions.adapters.emf_metrics import EmfMetrics, metrics_namespace
    from functions.core.usage_ledger import LedgerEntry
    from infra import metrics

    lines = []
    entry = LedgerEntry(request_id="r1", at=0.0, tenant_id="acme", route="chat", tier="serverless",
                        outcome="ok", status=200, error_code=None, cache_status="miss", prompt_tokens=10,
                        completion_tokens=5, cached_tokens=0, cost_usd=0.001, latency_ms=12.0)
    EmfMetrics(metrics_namespace("acme"), sink=lines.append).emit([entry])
    written = set()
    for line in map(json.loads, lines):
        for directive in line["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == metrics.route_metric("acme", metrics.COST, "chat").namespace
            dimensions = tuple(directive["Dimensions"][0]) if directive["Dimensions"] else ()
            assert all(name in line for name in dimensions)
            written |= {(m["Name"], dimensions) for m in directive["Metrics"]}
    per_route = {metrics.COST, metrics.REQUESTS, metrics.PROMPT_TOKENS, metrics.COMPLETION_TOKENS,
                 metrics.LATENCY, metrics.CACHE_HITS, metrics.REFUSALS, metrics.GATEWAY_COST}
    read = {(name, (metrics.ROUTE,)) for name in per_route}
    read |= {(metrics.COST, ()), (metrics.GATEWAY_COST, ()), (metrics.REQUESTS, (metrics.ROUTE, metrics.TIER))}
    assert read <= written
