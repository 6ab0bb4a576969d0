"""Bedrock batch inference: the job's S3 layout on moto, its API calls checked by botocore's
Stubber against the real service model, and its output mapped back to completions."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from functions.adapters.bedrock_batch import BedrockBatchJobs, RecordError, batch_records, record_id
from functions.core.chat import Message, ProviderCall, Usage
from functions.core.config import PricingConfig
from functions.core.pricing import batch_token_cost_usd

MODEL = "us.meta.llama3-1-8b-instruct-v1:0"
ROLE = "arn:aws:iam::123456789012:role/tierup-bedrock-batch"
JOB_ARN = "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/abc123def456"


def call(text: str) -> ProviderCall:
    return ProviderCall(model=MODEL, messages=[Message(role="system", content="be brief"),
                                               Message(role="user", content=text)], max_tokens=32, temperature=0.5)


@pytest.fixture
def s3(moto_endpoint):
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="batch-bucket")
    return client


@pytest.fixture
def bedrock():
    client = boto3.client("bedrock", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_records_are_converse_bodies_with_line_ids():
    rows = [json.loads(line) for line in batch_records([(0, call("hi")), (41, call("there"))]).splitlines()]
    assert [row["recordId"] for row in rows] == ["00000000000", "00000000041"]
    body = rows[1]["modelInput"]
    assert "modelId" not in body
    assert body["system"] == [{"text": "be brief"}]
    assert body["messages"] == [{"role": "user", "content": [{"text": "there"}]}]
    assert body["inferenceConfig"]["maxTokens"] == 32


def test_job_is_created_with_the_s3_layout_and_read_back(s3, bedrock):
    client, stubber = bedrock
    jobs = BedrockBatchJobs(client, s3, bucket="batch-bucket", role_arn=ROLE, min_records=2)
    calls = [(index, call(f"q{index}")) for index in range(3)]
    stubber.add_response("create_model_invocation_job", {"jobArn": JOB_ARN}, {
        "jobName": "tierup-batch-1", "roleArn": ROLE, "clientRequestToken": "batch_1", "modelId": MODEL,
        "modelInvocationType": "Converse", "timeoutDurationInHours": 24,
        "inputDataConfig": {"s3InputDataConfig": {"s3Uri": "s3://batch-bucket/bedrock/batch_1/input/records.jsonl",
                                                  "s3InputFormat": "JSONL"}},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://batch-bucket/bedrock/batch_1/output/"}}})
    assert jobs.submit("batch_1", MODEL, calls) == JOB_ARN
    stored = s3.get_object(Bucket="batch-bucket", Key="bedrock/batch_1/input/records.jsonl")["Body"].read()
    assert stored == batch_records(calls)

    stubber.add_response("get_model_invocation_job", {
        "jobArn": JOB_ARN, "modelId": MODEL, "roleArn": ROLE, "status": "Completed", "submitTime": "2026-01-01",
        "inputDataConfig": {"s3InputDataConfig": {"s3Uri": "s3://batch-bucket/bedrock/batch_1/input/records.jsonl"}},
        "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://batch-bucket/bedrock/batch_1/output/"}},
        "totalRecordCount": 3, "processedRecordCount": 3, "successRecordCount": 2, "errorRecordCount": 1},
        {"jobIdentifier": JOB_ARN})
    status = jobs.status(JOB_ARN)
    assert status.finished and (status.succeeded, status.failed) == (2, 1)

    # what Bedrock writes: one line per record, in any order, under the job's id
    answer = {"output": {"message": {"role": "assistant", "content": [{"text": "answer two"}]}},
              "stopReason": "end_turn", "usage": {"inputTokens": 9, "outputTokens": 2, "totalTokens": 11}}
    output = [{"recordId": record_id(2), "modelInput": {}, "modelOutput": answer},
              {"recordId": record_id(0), "modelInput": {}, "error": {"errorCode": 400, "errorMessage": "bad input"}}]
    s3.put_object(Bucket="batch-bucket", Key="bedrock/batch_1/output/abc123def456/records.jsonl.out",
                  Body="\n".join(json.dumps(row) for row in output).encode())
    results = jobs.results("batch_1", JOB_ARN, dict(calls))
    assert set(results) == {0, 2}  # record 1 unanswered: its line runs on another path
    assert results[0] == RecordError(400, "bad input")
    assert results[2].text == "answer two" and results[2].finish_reason == "stop"
    assert (results[2].usage.prompt_tokens, results[2].usage.completion_tokens) == (9, 2)


def test_under_the_minimum_no_job_is_made(s3, bedrock):
    client, _ = bedrock  # the Stubber fails the test on any call
    jobs = BedrockBatchJobs(client, s3, bucket="batch-bucket", role_arn=ROLE)
    assert jobs.submit("batch_2", MODEL, [(index, call("x")) for index in range(99)]) is None
    assert "Contents" not in s3.list_objects_v2(Bucket="batch-bucket", Prefix="bedrock/batch_2/")


def test_batch_price_is_the_configured_rate():
    pricing = PricingConfig.model_validate({"models": {
        MODEL: {"input-per-mtok": 0.22, "output-per-mtok": 0.22, "batch-input-per-mtok": 0.11,
                "batch-output-per-mtok": 0.11},
        "no-batch": {"input-per-mtok": 1, "output-per-mtok": 1}}})
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000)
    assert batch_token_cost_usd(pricing, MODEL, usage) == pytest.approx(0.22)
    assert batch_token_cost_usd(pricing, "no-batch", usage) is None
