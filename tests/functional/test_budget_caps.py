"""Budget guardrails end to end on moto server: two gateway instances under uvicorn, many
concurrent openai-SDK clients driving a route past its cap; refusals name the budget; spend past
the cap stays within what was in flight; exactly one readable alert per threshold reaches SNS
(read through an SQS queue subscribed to the topic); the kill switch is honoured within seconds."""

from __future__ import annotations

import asyncio
import json
import time

import boto3
import openai
import pytest

from functions.adapters.dynamodb.guardrails import DynamoGuardrailStore
from functions.core.killswitch import KillSwitchTrigger
from functions.core.spend_caps import estimate_cost_usd
from functions.core.tables import STATE
from functions.core.tokens import count_chat_tokens
from functions.gateway.composition import build_gateway
from functions.guardrails.wiring import kill_switch_for
from functions.killswitch_handler import handler
from tests.fakes.gpu_control import FakeGpuControl
from tierup.local_stack import create_alert_topic, create_key
from tierup.spend_drill import MESSAGES, analyse, drive

from ..support import openai_client

MODEL = "us.meta.llama3-1-8b-instruct-v1:0"  # the example's chat route (a US inference profile)
#: $1 per 1000 tokens, so that a few hundred requests cross a $2 daily cap on the chat route
BUDGET = {
    "pricing": {"models": {MODEL: {"input-per-mtok": 1000.0, "output-per-mtok": 1000.0},
                           "gpt-4o-mini": {"input-per-mtok": 1000.0, "output-per-mtok": 1000.0}}},
    "budgets": {"flag-refresh-s": 1, "thresholds": [0.5, 0.8, 1.0],
                "global": {"monthly-usd": 1000.0},
                "routes": {"chat": {"monthly-usd": None, "daily-usd": 2.0, "action": "drop-reserved"}}},
}


def _alert_queue(runtime, endpoint: str) -> str:
    """An SQS queue subscribed to the alert topic: how the test reads what SNS published."""
    topic = create_alert_topic(runtime)
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName=f"{runtime.config.project}-alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    runtime.aws.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return queue_url


def _published(endpoint: str, queue_url: str, expected: int, wait_s: float = 10.0) -> list[dict]:
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    messages: list[dict] = []
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        messages.extend(json.loads(m["Body"]) for m in batch)
        if len(messages) >= expected and not batch:
            break
    return messages


@pytest.fixture
def budget_stack(make_runtime, serve, moto_endpoint):
    runtime = make_runtime(BUDGET)
    queue_url = _alert_queue(runtime, moto_endpoint)
    urls = [serve(build_gateway(runtime)), serve(build_gateway(runtime))]  # two instances, shared tables
    key = create_key(runtime, "acme", "pro")
    return type("Stack", (), {"runtime": runtime, "urls": urls, "key": key, "queue_url": queue_url,
                              "endpoint": moto_endpoint})


def test_concurrent_clients_are_stopped_at_the_cap_with_one_alert_per_threshold(budget_stack):
    stack, config = budget_stack, budget_stack.runtime.config
    clients = 32
    shots = asyncio.run(drive(stack.urls, stack.key, "chat", clients, config, max_tokens=8, linger_s=2.5))
    estimate = estimate_cost_usd(config, "chat", count_chat_tokens(m["content"] for m in MESSAGES), 8)
    result = analyse(shots, clients, 2.0, estimate)

    assert result.refused > 0 and result.answered > 0
    # Spend past the cap is no more than the reservations that were in flight. (It is next to
    # nothing: only where a provider reports more tokens than estimated, as the simulated one does.)
    assert result.overspend_usd <= result.bound_usd
    assert result.spent_usd >= 0.9 * 2.0  # and leases leave little of the cap unused
    # Every instance refuses within seconds of the crossing, and keeps refusing.
    assert result.stop_s is not None and result.stop_s < 10.0
    refusals = [s for s in shots if s.status == 503]
    error = refusals[0].error
    assert error["code"] == "budget_exceeded" and error["type"] == "budget_exceeded"
    assert "route:chat daily cap of $2.00" in error["message"] and "T00:00:00Z" in error["message"]

    published = _published(stack.endpoint, stack.queue_url, expected=3)
    by_threshold = {}
    for envelope in published:
        attributes = {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()}
        if attributes.get("scope") == "route:chat":
            by_threshold.setdefault(attributes["threshold"], []).append(envelope)
    assert sorted(by_threshold) == ["0.5", "0.8", "1"]
    assert all(len(envelopes) == 1 for envelopes in by_threshold.values())
    reached = by_threshold["1"][0]
    assert "REACHED" in reached["Subject"]
    body = reached["Message"]
    for phrase in ("route:chat daily cap of $2.00", "Spend so far:", "Projected:", "What was stopped:",
                   "tierup killswitch release --scope route:chat"):
        assert phrase in body
    assert "Threshold:       80%" in by_threshold["0.8"][0]["Message"]

    store = DynamoGuardrailStore(stack.runtime.dynamodb, stack.runtime.table(STATE))
    [flag] = store.flags()
    assert (flag.scope, flag.action, flag.source) == ("route:chat", "drop-reserved", "gateway")
    assert flag.until is not None and flag.until > time.time()
    assert flag.applied == {"flag"}  # the gateway has no GPU control: the kill-switch function has
    # The cap-reached message, delivered to the kill-switch function, drops the route's reserved GPUs, once.
    gpu = FakeGpuControl(time.time)
    delivery = {"Records": [{"EventSource": "aws:sns", "Sns": reached}]}
    handler(delivery, runtime=stack.runtime, gpu=gpu)
    handler(delivery, runtime=stack.runtime, gpu=gpu)
    assert gpu.calls == [("chat", 0)]
    assert store.flags()[0].applied == {"flag", "gpu:chat"}
    # Other routes are still served.
    client = openai_client(stack.urls[0], stack.key)
    assert client.chat.completions.create(model="summarize", messages=MESSAGES, max_tokens=4).choices


def test_engaged_kill_switch_is_honoured_by_every_instance_within_seconds(budget_stack):
    stack = budget_stack
    clients = [openai_client(url, stack.key) for url in stack.urls]
    for client in clients:
        client.chat.completions.create(model="summarize", messages=MESSAGES, max_tokens=4)
    switch = kill_switch_for(stack.runtime)
    engaged_at = time.monotonic()
    switch.engage(KillSwitchTrigger(scope="route:summarize", action="refuse", reason="drill", source="test"))
    for client in clients:
        while True:
            try:
                client.chat.completions.create(model="summarize", messages=MESSAGES, max_tokens=4)
            except openai.APIStatusError as exc:
                assert exc.status_code == 503 and "until an operator releases it" in exc.body["message"]
                break
            assert time.monotonic() - engaged_at < 10.0
            time.sleep(0.05)
    refused_within = time.monotonic() - engaged_at
    assert refused_within < 1 + 1.0  # flag-refresh-s plus a query
    switch.release("route:summarize", "drill over", "test")
    time.sleep(1.2)
    for client in clients:
        assert client.chat.completions.create(model="summarize", messages=MESSAGES, max_tokens=4).choices
