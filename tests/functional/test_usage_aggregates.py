"""Usage aggregates on moto: the numbers tierup writes are ones DynamoDB (and its stand-in) can
add, and a flush batch written again (a retry after a timeout or an error) adds once."""

from __future__ import annotations

import time

import pytest

from functions.adapters.dynamodb.usage_aggregates import DynamoUsageAggregates
from functions.core.ports import MinuteUsage, WriteBatch
from functions.core.tables import USAGE
from functions.gateway.composition import build_gateway
from tierup.local_stack import GatewayServer, create_key

from ..support import openai_client


def _total(aggregates: DynamoUsageAggregates, scope: str, since_minute: int) -> MinuteUsage:
    rows = aggregates.minutes(scope, since_minute, since_minute + 10)
    return MinuteUsage(minute=since_minute, scope=scope, requests=sum(r.requests for r in rows),
                       prompt_tokens=sum(r.prompt_tokens for r in rows),
                       completion_tokens=sum(r.completion_tokens for r in rows),
                       cost_usd=sum(r.cost_usd for r in rows))


def test_an_embedding_request_then_chat_requests_all_reach_the_aggregates(make_runtime):
    runtime = make_runtime()
    key = create_key(runtime, "acme", "pro")
    started_minute = int(time.time() // 60)
    server = GatewayServer(build_gateway(runtime)).start()
    try:
        client = openai_client(server.url, key)
        embedded = client.embeddings.create(model="embed", input="a short text")
        assert embedded.usage.prompt_tokens > 0  # costs about 2e-08 USD: exponent notation in repr()
        served = [client.chat.completions.create(model="chat", messages=[{"role": "user", "content": f"hi {n}"}])
                  for n in range(5)]
        time.sleep(1.5)  # a flush of the embedding and the first chats, then more chats in the next
        served += [client.chat.completions.create(model="chat", messages=[{"role": "user", "content": f"yo {n}"}])
                   for n in range(5)]
    finally:
        server.stop()  # the final flush
    aggregates = DynamoUsageAggregates(runtime.dynamodb, runtime.table(USAGE))
    chat = _total(aggregates, "route:chat", started_minute)
    assert chat.requests == 10
    assert chat.completion_tokens == sum(c.usage.completion_tokens for c in served)
    embed = _total(aggregates, "route:embed", started_minute)
    assert embed.requests == 1 and embed.prompt_tokens == embedded.usage.prompt_tokens
    assert 0 < embed.cost_usd < 1e-6
    tenant = _total(aggregates, "tenant:acme", started_minute)
    assert tenant.requests == 11


def test_a_retried_batch_adds_each_row_once(make_runtime):
    runtime = make_runtime()
    aggregates = DynamoUsageAggregates(runtime.dynamodb, runtime.table(USAGE))
    first = MinuteUsage(minute=100, scope="route:chat", requests=2, completion_tokens=30, cost_usd=2e-08,
                        by_tier={"serverless": 2})
    second = MinuteUsage(minute=101, scope="route:chat", requests=1, completion_tokens=5, cost_usd=0.25)
    batch = WriteBatch("inst1", 7)
    aggregates.add([first], batch)  # an attempt that failed after its first row
    aggregates.add([first, second], batch)  # the retry: the first row is skipped
    aggregates.add([first, second], batch)  # and again (a timeout whose write was applied)
    aggregates.add([MinuteUsage(minute=100, scope="route:chat", requests=1)], WriteBatch("inst1", 8))
    aggregates.add([MinuteUsage(minute=100, scope="route:chat", requests=1)], WriteBatch("inst2", 1))
    rows = {row.minute: row for row in aggregates.minutes("route:chat", 100, 101)}
    assert rows[100].requests == 4 and rows[100].completion_tokens == 30
    assert rows[100].cost_usd == pytest.approx(2e-08) and rows[100].by_tier == {"serverless": 2}
    assert rows[101].requests == 1 and rows[101].cost_usd == pytest.approx(0.25)


def test_an_older_batch_arriving_late_is_not_applied(make_runtime):
    """A write that timed out may reach the store after its retry and after later batches."""
    runtime = make_runtime()
    aggregates = DynamoUsageAggregates(runtime.dynamodb, runtime.table(USAGE))
    row = MinuteUsage(minute=100, scope="route:chat", requests=1)
    aggregates.add([row], WriteBatch("inst1", 1))
    aggregates.add([row], WriteBatch("inst1", 2))
    aggregates.add([row], WriteBatch("inst1", 1))
    assert aggregates.minutes("route:chat", 100, 100)[0].requests == 2


def test_10_second_buckets_add_up_across_instances_and_feed_the_live_signals(make_runtime):
    from functions.core.policy.signals import live_from_minutes

    runtime = make_runtime()
    aggregates = DynamoUsageAggregates(runtime.dynamodb, runtime.table(USAGE))
    aggregates.add([MinuteUsage(minute=100, scope="route:chat", requests=3, by_10s={4: [3, 300, 60]})],
                   WriteBatch("inst1", 1))
    aggregates.add([MinuteUsage(minute=100, scope="route:chat", requests=9, by_10s={4: [2, 200, 40], 5: [7, 700, 1]})],
                   WriteBatch("inst2", 1))
    rows = aggregates.minutes("route:chat", 100, 101)
    assert rows[0].by_10s == {4: [5, 500, 100], 5: [7, 700, 1]}
    # at 6063 s the latest bucket flushed 2 s ago is the one of seconds 50-60 of minute 100 (6000-6060 s)
    live = live_from_minutes(rows, 6063.0, flush_lag_s=2.0)
    assert (live.recent_requests, live.recent_prompt_tokens, live.recent_window_s) == (7, 700, 10)
    assert live_from_minutes(rows, 6061.0, flush_lag_s=2.0).recent_requests == 5
    assert live_from_minutes([MinuteUsage(minute=100, scope="route:chat", requests=1)], 6003.0, 2.0) is None
