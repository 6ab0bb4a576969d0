"""The kill-switch function on moto server: sample SNS events as AWS sends them set the flag in
DynamoDB, tell GPU control min_containers=0, set the gateway function's reserved concurrency to
0 on moto's Lambda; a second delivery changes nothing more."""

from __future__ import annotations

import io
import json
import time
import zipfile

import boto3
import pytest

from functions.adapters.dynamodb.guardrails import DynamoGuardrailStore
from functions.core.notifications import kill_switch_alarm_description
from functions.core.tables import STATE
from functions.killswitch_handler import handler
from tests.fakes.gpu_control import FakeGpuControl
from tests.samples.sns_events import BUDGET_SUBJECT, alarm_message, budget_message, sns_event

GATEWAY_FUNCTION = "tierup-gateway-under-test"


def _gateway_function(endpoint: str, name: str, concurrency: int | None) -> None:
    """A stand-in gateway function on moto (create/put/get concurrency need no Docker)."""
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                 "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return {}\n")
    client = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1")
    client.create_function(FunctionName=name, Runtime="python3.12", Role=role["Arn"], Handler="app.handler",
                           Code={"ZipFile": package.getvalue()})
    if concurrency is not None:
        client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=concurrency)


def _concurrency(endpoint: str, name: str):
    client = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1")
    return client.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")


@pytest.fixture
def stack(make_runtime, moto_endpoint):
    name = f"{GATEWAY_FUNCTION}-{time.time_ns()}"
    _gateway_function(moto_endpoint, name, concurrency=100)
    runtime = make_runtime({"budgets": {"global": {"action": "hard-stop"}},
                            "gateway": {"reserved-concurrency": 100}},
                           environ={"TIERUP_GATEWAY_FUNCTION_NAME": name})
    store = DynamoGuardrailStore(runtime.dynamodb, runtime.table(STATE))
    return type("Stack", (), {"runtime": runtime, "store": store, "function": name, "endpoint": moto_endpoint})


def test_budgets_notification_hard_stops_once(stack):
    gpu = FakeGpuControl(time.time)
    event = sns_event(budget_message(), subject=BUDGET_SUBJECT)
    result = handler(event, runtime=stack.runtime, gpu=gpu)

    [flag] = stack.store.flags()
    assert (flag.scope, flag.action, flag.source) == ("global", "hard-stop", "aws-budgets")
    assert flag.applied == {"flag", "gpu:chat", "gpu:summarize", f"gateway:{stack.function}"}
    assert flag.until is not None and flag.until > time.time()
    assert sorted(gpu.calls) == [("chat", 0), ("summarize", 0)]
    assert _concurrency(stack.endpoint, stack.function) == 0
    audit = stack.store.audit_trail()
    assert sorted(e.what for e in audit) == ["drop-reserved", "drop-reserved", "engage-flag", "stop-gateway"]
    assert all("tierup-monthly" in e.why and e.source == "aws-budgets" for e in audit)
    assert len(result["results"][0]["done"]) == 4

    again = handler(event, runtime=stack.runtime, gpu=gpu)
    assert again["results"][0]["steps"] == [] and again["results"][0]["done"] == []
    assert len(gpu.calls) == 2 and _concurrency(stack.endpoint, stack.function) == 0
    assert len(stack.store.audit_trail()) == 4
    assert stack.store.flags() == [flag]


def test_cap_alarm_engages_its_route_and_other_messages_engage_nothing(stack):
    gpu = FakeGpuControl(time.time)
    description = kill_switch_alarm_description("route:chat", "route chat reached its monthly cap")
    events = [sns_event(alarm_message(description), subject="ALARM: tierup-spend-cap-route-chat"),
              sns_event(alarm_message("hourly spend anomaly")),
              sns_event(budget_message(alert_type="FORECASTED", amount="$1,300.00"), subject=BUDGET_SUBJECT)]
    results = [handler(event, runtime=stack.runtime, gpu=gpu)["results"][0] for event in events]
    [flag] = stack.store.flags()
    assert (flag.scope, flag.action, flag.source) == ("route:chat", "refuse", "cloudwatch-alarm")
    assert gpu.calls == [] and _concurrency(stack.endpoint, stack.function) == 100
    assert "ignored" in results[1] and "ignored" in results[2]


def test_release_restores_the_configured_concurrency(stack):
    from functions.guardrails.wiring import kill_switch_for

    handler(sns_event(budget_message()), runtime=stack.runtime, gpu=FakeGpuControl(time.time))
    assert _concurrency(stack.endpoint, stack.function) == 0
    outcome = kill_switch_for(stack.runtime, control_lambda=True).release("global", "cap raised", "test")
    assert outcome.failed == [] and [s.kind for s in outcome.plan.steps] == ["release-flag", "restore-gateway"]
    assert _concurrency(stack.endpoint, stack.function) == 100 and stack.store.flags() == []


def test_schedule_releases_flags_of_ended_periods_and_restarts_the_gateway(stack):
    from functions.core.killswitch import KillSwitchFlag

    ended = KillSwitchFlag(scope="global", action="hard-stop", reason="cap", budget="global monthly cap of $1,000.00",
                           source="gateway", engaged_at=time.time() - 86400, until=time.time() - 60,
                           applied=frozenset({"flag", f"gateway:{stack.function}"}))
    held = KillSwitchFlag(scope="tenant:acme", action="refuse", reason="abuse", budget="manual", source="cli",
                          engaged_at=time.time())
    stack.store.put_flag(ended)
    stack.store.put_flag(held)
    boto3.client("lambda", endpoint_url=stack.endpoint, region_name="us-east-1").put_function_concurrency(
        FunctionName=stack.function, ReservedConcurrentExecutions=0)
    scheduled = {"version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
                 "source": "aws.events", "account": "123456789012", "time": "2026-12-01T00:05:00Z",
                 "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/daily"],
                 "detail": {}}
    handler(scheduled, runtime=stack.runtime, gpu=FakeGpuControl(time.time))
    assert [flag.scope for flag in stack.store.flags()] == ["tenant:acme"]
    assert _concurrency(stack.endpoint, stack.function) == 100
    assert handler(scheduled, runtime=stack.runtime, gpu=FakeGpuControl(time.time))["results"] == []


def test_alert_markers_are_won_once_and_can_be_given_back(stack):
    marker, expires = "alert#route:chat#2026-11#0.8", int(time.time()) + 3600
    assert stack.store.mark_once(marker, expires) is True
    assert stack.store.mark_once(marker, expires) is False
    stack.store.unmark(marker)
    assert stack.store.mark_once(marker, expires) is True
