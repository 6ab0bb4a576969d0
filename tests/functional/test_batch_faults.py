"""Batch work survives its worker: a worker killed mid-batch (SIGKILL) loses no line, and the
next worker bills none twice (the ledger holds exactly the lines served)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

from functions.adapters.dynamodb.ledger_records import DynamoLedgerRecords
from functions.batch.wiring import batch_store
from functions.core.batch import BatchJob, file_object, line_request_id
from functions.core.tables import USAGE
from tierup.local_stack import LOCAL_CREDENTIALS, create_key

from ..support import ROOT, openai_client
from .test_batch_api import chat_line, jsonl, outputs, wait_for

LINES = 12


def start_worker(runtime, config_file) -> subprocess.Popen:
    env = {**os.environ, **LOCAL_CREDENTIALS, **runtime.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "functions.batch.queue_poller", str(config_file)], env=env,
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ledger_ids(runtime, batch_id: str) -> list[str]:
    ledger = DynamoLedgerRecords(runtime.dynamodb, runtime.table(USAGE))
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    return sorted(entry.request_id for entry in ledger.day("acme", day) if entry.request_id.startswith(batch_id))


def test_worker_killed_mid_batch_resumes_without_duplicates(make_runtime, serve, tmp_path):
    from functions.gateway.composition import build_gateway

    # each line takes about 0.3 s; a message the killed worker held reappears after 2 s
    runtime = make_runtime({"simulated": {"ttft-ms": 300},
                            "batch": {"chunk-lines": 6, "line-concurrency": 2, "visibility-timeout-s": 2}})
    url = serve(build_gateway(runtime))  # no worker in the gateway: the workers are processes
    client = openai_client(url, create_key(runtime, "acme", "pro"))
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(runtime.config.model_dump(by_alias=True, mode="json")))
    uploaded = client.files.create(file=("in.jsonl", jsonl([chat_line(f"r{n}", "x") for n in range(LINES)])),
                                   purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    store = batch_store(runtime)
    first = start_worker(runtime, config_file)
    second = None
    try:
        deadline = time.monotonic() + 60
        while len(store.lines(batch.id)) < 3:
            assert first.poll() is None and time.monotonic() < deadline, "the first worker answered nothing"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        served_before = len(store.lines(batch.id))
        assert served_before < LINES
        second = start_worker(runtime, config_file)
        done = wait_for(client, batch.id, timeout_s=90)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    assert done.status == "completed"
    assert (done.request_counts.completed, done.request_counts.failed) == (LINES, 0)
    assert set(outputs(client, done.output_file_id)) == {f"r{n}" for n in range(LINES)}
    # each line billed once: the ledger holds exactly the lines served
    assert ledger_ids(runtime, batch.id) == [line_request_id(batch.id, n) for n in range(1, LINES + 1)]


def test_a_line_answered_but_not_billed_is_billed_once_on_redelivery(make_runtime):
    """The worker died between keeping a line's answer and writing its ledger record: the next
    delivery bills it from the kept answer, and a delivery after that bills nothing again."""
    from functions.gateway.composition import build_gateway

    runtime = make_runtime()
    app = build_gateway(runtime)
    store = batch_store(runtime)
    data = jsonl([chat_line("a", "x"), chat_line("b", "y")])
    store.put_file("acme", file_object("file-in", size=len(data), created_at=0, filename="in.jsonl",
                                             purpose="batch"), data, 10**10)
    job = BatchJob(id="batch_000000000001aaaa", tenant_id="acme", input_file_id="file-in",
                   endpoint="/v1/chat/completions", completion_window="24h", created_at=int(time.time()), total=2,
                   chunks=1, plan="pro")
    store.put_job(job)
    entry = {"request_id": line_request_id(job.id, 1), "at": time.time(), "tenant_id": "acme", "route": "chat",
             "tier": "serverless", "outcome": "ok", "status": 200, "error_code": None, "cache_status": "miss",
             "prompt_tokens": 3, "completion_tokens": 4, "cached_tokens": 0, "cost_usd": 0.001,
             "latency_ms": 5.0, "estimated": False}
    store.put_line(job.id, 0, {"custom_id": "a", "request_id": entry["request_id"], "status_code": 200,
                                     "body": {"object": "chat.completion"}, "entry": entry}, 10**10)
    worker = app.batch_worker
    message = {"tenant": "acme", "batch": job.id, "chunk": 0, "first": 0, "last": 1}
    assert asyncio.run(worker.run_chunk(message))
    assert asyncio.run(worker.run_chunk(message))  # delivered again: nothing runs or bills twice
    assert ledger_ids(runtime, job.id) == [line_request_id(job.id, 1), line_request_id(job.id, 2)]
    assert store.job("acme", job.id).status == "completed"


def test_lambda_handler_runs_queued_chunks(make_runtime, serve, tmp_path, monkeypatch):
    """The worker function as SQS invokes it: the chunks' records in, no failures reported out."""
    from functions import batch_handler
    from functions.batch.wiring import BUCKET_ENV, QUEUE_ENV
    from functions.gateway.composition import build_gateway

    from ..support import EXAMPLE_CONFIG

    runtime = make_runtime({"batch": {"chunk-lines": 2}})
    client = openai_client(serve(build_gateway(runtime)), create_key(runtime, "acme", "pro"))
    uploaded = client.files.create(file=("in.jsonl", jsonl([chat_line(f"r{n}", "x") for n in range(3)])),
                                   purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    sqs = runtime.aws.client("sqs")
    messages = sqs.receive_message(QueueUrl=runtime.environ[QUEUE_ENV], MaxNumberOfMessages=10)["Messages"]
    assert len(messages) == 2  # three lines in chunks of two
    config_file = tmp_path / "tierup.toml"
    config_file.write_text(EXAMPLE_CONFIG.read_text().replace('project = "tierup"',
                                                              f'project = "{runtime.config.project}"', 1))
    for name in ("TIERUP_AWS_ENDPOINT", "TIERUP_PROVIDER", BUCKET_ENV, QUEUE_ENV):
        monkeypatch.setenv(name, runtime.environ[name])
    monkeypatch.setenv("TIERUP_CONFIG", str(config_file))
    for name in ("_worker", "_loop", "_runtime"):  # a fresh container; the module's state is restored after
        monkeypatch.setattr(batch_handler, name, None)
    event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"]}
                         for m in messages]}
    assert batch_handler.handler(event) == {"batchItemFailures": []}
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed" and done.request_counts.completed == 3


def test_lines_not_run_when_the_window_ends_are_reported_expired(make_runtime):
    from functions.gateway.composition import build_gateway

    runtime = make_runtime()
    worker = build_gateway(runtime).batch_worker
    store = batch_store(runtime)
    data = jsonl([chat_line("a", "x"), chat_line("b", "y")])
    store.put_file("acme", file_object("file-in", size=len(data), created_at=0, filename="in.jsonl",
                                       purpose="batch"), data, 10**10)
    created = int(time.time()) - 86_400 - 60  # a 24-hour window that ended a minute ago
    job = BatchJob(id="batch_000000000002bbbb", tenant_id="acme", input_file_id="file-in",
                   endpoint="/v1/chat/completions", completion_window="24h", created_at=created, total=2,
                   chunks=1, plan="pro", status="in_progress")
    store.put_job(job)
    assert asyncio.run(worker.run_chunk({"tenant": "acme", "batch": job.id, "chunk": 0, "first": 0, "last": 1}))
    done = store.job("acme", job.id)
    assert done.status == "expired" and (done.completed, done.failed) == (0, 2)
    assert done.output_file_id is None
    rows = [json.loads(row) for row in store.file_content("acme", done.error_file_id).splitlines()]
    assert [(row["custom_id"], row["response"], row["error"]["code"]) for row in rows] == [
        ("a", None, "batch_expired"), ("b", None, "batch_expired")]
    assert ledger_ids(runtime, job.id) == []  # nothing ran, nothing billed


def test_a_chunk_writes_about_one_item_a_line_to_the_shared_store(make_runtime):
    """Batch lines share the store with interactive requests: a line's answer is one write, and its
    ledger record and billed mark are written for a group of lines at once (not three writes a line)."""
    from functions.gateway.composition import build_gateway

    lines = 30
    runtime = make_runtime({"batch": {"chunk-lines": lines}})
    worker = build_gateway(runtime).batch_worker
    store = batch_store(runtime)
    data = jsonl([chat_line(f"r{n}", f"question {n}") for n in range(lines)])
    store.put_file("acme", file_object("file-in", size=len(data), created_at=0, filename="in.jsonl",
                                       purpose="batch"), data, 10**10)
    job = BatchJob(id="batch_000000000003cccc", tenant_id="acme", input_file_id="file-in",
                   endpoint="/v1/chat/completions", completion_window="24h", created_at=int(time.time()),
                   total=lines, chunks=1, plan="pro", status="in_progress")
    store.put_job(job)
    writes: list[str] = []

    def count(params, model, **_):
        if model.name in ("PutItem", "UpdateItem", "BatchWriteItem") and (
                "batchline#" in str(params) or "ledger#" in str(params)):
            writes.append(model.name)

    runtime.aws.client("dynamodb").meta.events.register("before-parameter-build.dynamodb", count)
    assert asyncio.run(worker.run_chunk({"tenant": "acme", "batch": job.id, "chunk": 0, "first": 0,
                                         "last": lines - 1}))
    assert store.job("acme", job.id).status == "completed"
    assert len(writes) <= lines + 4, writes  # a write a line, and two for each group of 25 (not 3 a line)
    assert ledger_ids(runtime, job.id) == sorted(line_request_id(job.id, n) for n in range(1, lines + 1))
    assert all(line["billed"] for line in store.lines(job.id).values())


def test_a_ledger_record_written_again_overwrites_itself(make_runtime):
    """Group billing may write a line's record again (its worker died before marking it billed):
    the record lands on the same item however it was first written, so the ledger holds it once."""
    from functions.core.usage_ledger import LedgerEntry

    runtime = make_runtime()
    ledger = DynamoLedgerRecords(runtime.dynamodb, runtime.table(USAGE))
    entry = LedgerEntry(request_id="batch_000000000006ffff-1", at=time.time(), tenant_id="acme", route="chat",
                        tier="serverless", outcome="ok", status=200, error_code=None, cache_status="miss",
                        prompt_tokens=3, completion_tokens=4, cached_tokens=0, cost_usd=0.001, latency_ms=5.0)
    other = dataclasses.replace(entry, request_id="batch_000000000006ffff-2")
    ledger.put_many([entry])
    ledger.put_each([entry])
    ledger.put_each([entry, other])
    assert ledger_ids(runtime, "batch_000000000006ffff") == ["batch_000000000006ffff-1", "batch_000000000006ffff-2"]
