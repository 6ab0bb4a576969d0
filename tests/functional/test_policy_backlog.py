"""The policy Lambda sees the batch queue: a batch uploaded and created with the openai SDK on the
gateway (moto: S3, SQS, DynamoDB; no worker drains it), then the policy handler deciding from the
batch store's backlog items.

The GPU is priced at 0.00002 USD/s and the route has no interactive traffic: alone, a replica held
since long ago is released. The batch's 400 lines of about 776 tokens are worth 0.034 USD at the
Bedrock batch price, 0.000057 USD/s over the 10-minute hold, and fill 18 of the 300 replica-seconds
one replica leaves idle then: holding it is cheaper than sending them to Bedrock.
"""

from __future__ import annotations

import time
from dataclasses import asdict

from functions.adapters.dynamodb.route_table import DynamoPolicyJournal
from functions.batch.wiring import backlog_store
from functions.core.policy import RoutePolicyState
from functions.core.tables import STATE
from functions.policy_handler import handler
from tests.fakes.gpu_control import FakeGpuControl
from tests.fakes.promotion_store import InMemoryUsageAggregates
from tierup.local_stack import create_key

from ..support import POLICY_TEST_ECONOMICS, deep_merge, openai_client
from .test_batch_api import chat_line, jsonl

CHEAP_GPU = deep_merge(POLICY_TEST_ECONOMICS, {"pricing": {"gpus": {"L40S": {"usd-per-second": 0.00002}}}})


def _decide_once(runtime) -> dict:
    """One policy run for a route promoted to 1 replica two hours ago, quiet for the last hour."""
    now = time.time()
    journal = DynamoPolicyJournal(runtime.dynamodb, runtime.table(STATE))
    journal.save_state("chat", asdict(RoutePolicyState(replicas=1, promoted_at_s=now - 7200,
                                                       low_since_s=now - 3600, low_target=0)))
    gpu = FakeGpuControl(lambda: now, warmup_s=runtime.config.pricing.gpus["L40S"].warmup_s)
    handler({}, None, runtime=runtime, gpu=gpu, usage=InMemoryUsageAggregates(), now_s=now)
    return journal.recent_decisions("chat", limit=1)[0]


def test_a_queued_batch_keeps_the_replica_a_quiet_route_would_release(make_runtime, serve):
    from functions.gateway.composition import build_gateway

    alone = _decide_once(make_runtime(CHEAP_GPU))
    assert alone["decision"]["replicas"] == 0 and "batch_backlog" not in alone

    runtime = make_runtime(CHEAP_GPU)
    client = openai_client(serve(build_gateway(runtime)), create_key(runtime, "acme", "pro"))
    lines = [chat_line(f"r{n}", "x" * 3000) for n in range(400)]
    uploaded = client.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    [queued] = backlog_store(runtime).backlog("chat")
    assert queued["lines"] == 400 and queued["done"] == 0 and queued["deadline_s"] == batch.expires_at

    kept = _decide_once(runtime)
    assert kept["decision"]["replicas"] == 1, kept["reason"]
    assert kept["batch_backlog"]["lines"] == 400 and kept["batch_backlog"]["other_lines_per_s"] is None

    client.batches.cancel(batch.id)  # cancelled work is no longer the policy's to wait for
    assert backlog_store(runtime).backlog("chat") == []
    assert _decide_once(runtime)["decision"]["replicas"] == 0


def test_a_batch_leaves_the_backlog_once_its_lines_are_done(make_runtime, serve):
    from functions.gateway.composition import build_gateway

    from .test_batch_api import WORKER, wait_for

    runtime = make_runtime(environ=WORKER)  # the worker drains the queue in the gateway
    client = openai_client(serve(build_gateway(runtime)), create_key(runtime, "acme", "pro"))
    uploaded = client.files.create(file=("in.jsonl", jsonl([chat_line(f"r{n}", "x") for n in range(5)])),
                                   purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    assert wait_for(client, batch.id).status == "completed"
    assert backlog_store(runtime).backlog("chat") == []


def test_finished_chunks_raise_the_lines_done_once_each(make_runtime):
    from functions.core.batch import BatchJob, new_batch_id

    store = backlog_store(make_runtime())
    job = BatchJob(id=new_batch_id(), tenant_id="acme", input_file_id="file-x", endpoint="/v1/chat/completions",
                   completion_window="24h", created_at=int(time.time()), total=250, chunks=3)
    store.put_job(job, {"chat": (250, 100_000, 50_000)})
    store.finish_chunk("acme", job.id, 1, 90, 10, 0.0)
    store.finish_chunk("acme", job.id, 0, 100, 0, 0.0)
    store.finish_chunk("acme", job.id, 0, 100, 0, 0.0)  # a chunk run twice counts once
    assert store.backlog("chat") == [{"lines": 250, "done": 200, "prompt_tokens": 100_000,
                                      "completion_tokens": 50_000, "deadline_s": job.expires_at}]
