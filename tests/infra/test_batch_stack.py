"""The batch resources of the stack synthesised from the example tierup.toml: bucket, queues,
worker, Bedrock's service role and the alarms (cdk-nag passes, or synthesis would raise)."""

from __future__ import annotations

import pytest

from tests.support import EXAMPLE_CONFIG

from .conftest import synthesize
from .test_stack import actions_of, function_by_handler, of_type, resources_of, statements_of


@pytest.fixture(scope="module")
def resources(tmp_path_factory):
    return synthesize(EXAMPLE_CONFIG, tmp_path_factory.mktemp("cdk.out"))[1].to_json()["Resources"]


def test_bucket_is_encrypted_private_tls_only_and_expires_objects(resources):
    (bucket,) = of_type(resources, "AWS::S3::Bucket").values()
    props = bucket["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"}
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 30
    (policy,) = of_type(resources, "AWS::S3::BucketPolicy").values()
    denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_queue_moves_failing_work_to_a_dead_letter_queue(resources):
    queues = of_type(resources, "AWS::SQS::Queue")
    work = [q["Properties"] for q in queues.values() if "RedrivePolicy" in q["Properties"]]
    batch_work = [q for q in work if q["RedrivePolicy"]["maxReceiveCount"] == 5]
    assert len(batch_work) == 1 and batch_work[0]["VisibilityTimeout"] == 900
    assert batch_work[0]["SqsManagedSseEnabled"]


def test_worker_takes_one_chunk_at_a_time_with_bounded_concurrency(resources):
    _, worker = function_by_handler(resources, "functions.batch_handler.handler")
    assert worker["Timeout"] == 900
    (mapping,) = [m["Properties"] for m in of_type(resources, "AWS::Lambda::EventSourceMapping").values()]
    assert mapping["BatchSize"] == 1 and mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 2}
    actions = {a for s in statements_of(resources, worker) for a in actions_of(s)}
    assert {"s3:GetObject", "s3:PutObject", "sqs:ReceiveMessage", "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility", "bedrock:InvokeModel"} <= actions
    assert not any(a.startswith("sqs:Send") for a in actions)


def test_gateway_sends_work_and_reads_files(resources):
    _, gateway = function_by_handler(resources, "run.sh")
    actions = {a for s in statements_of(resources, gateway) for a in actions_of(s)}
    assert {"s3:GetObject", "s3:PutObject", "sqs:SendMessage"} <= actions
    env = gateway["Environment"]["Variables"]
    assert "TIERUP_BATCH_BUCKET" in env and "TIERUP_BATCH_QUEUE_URL" in env


def test_bedrock_role_is_for_bedrock_in_this_account_only(resources):
    roles = [r["Properties"] for r in of_type(resources, "AWS::IAM::Role").values()
             if r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"].get("Service")
             == "bedrock.amazonaws.com"]
    assert len(roles) == 1
    condition = roles[0]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]
    assert "aws:SourceAccount" in condition["StringEquals"]


def test_dead_letters_and_stuck_work_alarm_the_topic(resources):
    named = [a["Properties"] for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
             if isinstance(a["Properties"].get("AlarmName"), str)]
    alarms = {a["AlarmName"]: a for a in named if "batch" in a["AlarmName"]}
    assert set(alarms) == {"tierup-batch-dead-letters", "tierup-batch-stuck"}
    assert alarms["tierup-batch-stuck"]["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert all(alarm["AlarmActions"] for alarm in alarms.values())


def _bedrock_role_id(resources) -> str:
    (role_id,) = [logical_id for logical_id, r in of_type(resources, "AWS::IAM::Role").items()
                  if r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"].get("Service")
                  == "bedrock.amazonaws.com"]
    return role_id


def test_worker_starts_bedrock_jobs_passing_bedrocks_role_only(resources):
    _, worker = function_by_handler(resources, "functions.batch_handler.handler")
    statements = statements_of(resources, worker)
    actions = {a for s in statements for a in actions_of(s)}
    assert "bedrock:CreateModelInvocationJob" in actions
    assert not {"bedrock:GetModelInvocationJob", "bedrock:StopModelInvocationJob"} & actions
    (pass_role,) = [s for s in statements if "iam:PassRole" in actions_of(s)]
    assert resources_of(pass_role) == [{"Fn::GetAtt": [_bedrock_role_id(resources), "Arn"]}]
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}}
    assert worker["Environment"]["Variables"]["TIERUP_BEDROCK_BATCH_ROLE_ARN"] == {
        "Fn::GetAtt": [_bedrock_role_id(resources), "Arn"]}


def test_poller_runs_every_minute_and_only_follows_and_stops_jobs(resources):
    poller_id, poller = function_by_handler(resources, "functions.bedrock_poller_handler.handler")
    actions = {a for s in statements_of(resources, poller) for a in actions_of(s)}
    assert {"bedrock:GetModelInvocationJob", "bedrock:StopModelInvocationJob", "sqs:SendMessage"} <= actions
    assert not {"bedrock:CreateModelInvocationJob", "iam:PassRole", "bedrock:InvokeModel"} & actions
    assert not any(a.startswith("sqs:Receive") for a in actions)
    rules = [r["Properties"] for r in of_type(resources, "AWS::Events::Rule").values()
             if any(t["Arn"] == {"Fn::GetAtt": [poller_id, "Arn"]} for t in r["Properties"]["Targets"])]
    assert len(rules) == 1 and rules[0]["ScheduleExpression"] == "rate(1 minute)"
