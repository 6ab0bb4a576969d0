"""The OpenAI Batch API with the official openai SDK, against the gateway on moto (S3, SQS,
DynamoDB) with the batch worker draining the queue in process, as ``tierup dev`` runs it."""

from __future__ import annotations

import json
import time

import openai
import pytest

from functions.core.batch import line_request_id
from tierup.local_stack import create_key

from ..support import openai_client

WORKER = {"TIERUP_BATCH_WORKER": "in-process"}


def chat_line(custom_id: str, text: str, model: str = "chat") -> dict:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 16}}


def jsonl(lines: list) -> bytes:
    return b"".join((json.dumps(line).encode() if isinstance(line, dict) else line) + b"\n" for line in lines)


def wait_for(client, batch_id: str, statuses=("completed", "failed", "cancelled", "expired"), timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in statuses:
            return batch
        assert time.monotonic() < deadline, f"batch still {batch.status}"
        time.sleep(0.1)


@pytest.fixture
def batch_gateway(make_runtime, serve):
    from functions.gateway.composition import build_gateway

    def start(overrides: dict | None = None, environ: dict | None = None):
        runtime = make_runtime(overrides, environ={**WORKER, **(environ or {})})
        url = serve(build_gateway(runtime))
        key = create_key(runtime, "acme", "pro")
        return type("Gateway", (), {"url": url, "key": key, "runtime": runtime,
                                    "client": openai_client(url, key)})

    return start


def outputs(client, file_id: str | None) -> dict[str, dict]:
    if file_id is None:
        return {}
    text = client.files.content(file_id).text
    return {row["custom_id"]: row for row in map(json.loads, text.splitlines())}


def test_batch_runs_every_line_and_outputs_match_by_custom_id(batch_gateway):
    gw = batch_gateway({"batch": {"chunk-lines": 3}})
    client = gw.client
    lines = [chat_line(f"req-{n}", f"question {n}") for n in range(7)]
    uploaded = client.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.bytes == len(jsonl(lines))
    assert client.files.retrieve(uploaded.id).filename == "in.jsonl"
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h", metadata={"job": "nightly"})
    assert batch.status == "validating" and batch.metadata == {"job": "nightly"}
    done = wait_for(client, batch.id)
    assert done.status == "completed"
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (7, 7, 0)
    assert done.error_file_id is None
    rows = outputs(client, done.output_file_id)
    assert set(rows) == {line["custom_id"] for line in lines}
    for row in rows.values():
        assert row["response"]["status_code"] == 200 and row["error"] is None
        assert row["response"]["body"]["object"] == "chat.completion"
        assert row["response"]["body"]["choices"][0]["message"]["content"]
    listed = client.batches.list(limit=10)
    assert [item.id for item in listed.data] == [batch.id]


def test_malformed_line_goes_to_the_error_file_and_the_rest_complete(batch_gateway):
    gw = batch_gateway()
    client = gw.client
    lines = [chat_line("good-1", "hi"), chat_line("bad-model", "hi", model="no-such-route"),
             {"custom_id": "bad-body", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "chat"}},
             chat_line("good-2", "there")]
    uploaded = client.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    done = wait_for(client, batch.id)
    assert done.status == "completed"
    assert (done.request_counts.completed, done.request_counts.failed) == (2, 2)
    assert set(outputs(client, done.output_file_id)) == {"good-1", "good-2"}
    errors = outputs(client, done.error_file_id)
    assert set(errors) == {"bad-model", "bad-body"}
    assert errors["bad-model"]["response"]["status_code"] == 404
    assert errors["bad-model"]["response"]["body"]["error"]["param"] == "model"
    assert errors["bad-body"]["response"]["status_code"] == 400


def test_embeddings_batch(batch_gateway):
    gw = batch_gateway()
    client = gw.client
    lines = [{"custom_id": f"e{n}", "method": "POST", "url": "/v1/embeddings",
              "body": {"model": "embed", "input": f"text {n}"}} for n in range(3)]
    uploaded = client.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    done = wait_for(client, client.batches.create(input_file_id=uploaded.id, endpoint="/v1/embeddings",
                                                  completion_window="24h").id)
    rows = outputs(client, done.output_file_id)
    assert set(rows) == {"e0", "e1", "e2"}
    assert rows["e0"]["response"]["body"]["data"][0]["embedding"]


def test_upload_refuses_a_bad_line_naming_it(batch_gateway):
    client = batch_gateway({"batch": {"max-lines": 3}}).client
    bad = jsonl([chat_line("a", "x"), b"{not json"])
    with pytest.raises(openai.BadRequestError) as refused:
        client.files.create(file=("in.jsonl", bad), purpose="batch")
    assert "line 2" in refused.value.message and refused.value.body["param"] == "file"
    duplicate = jsonl([chat_line("a", "x"), chat_line("a", "y")])
    with pytest.raises(openai.BadRequestError) as refused:
        client.files.create(file=("in.jsonl", duplicate), purpose="batch")
    assert "line 2" in refused.value.message and "custom_id" in refused.value.message
    too_many = jsonl([chat_line(str(n), "x") for n in range(4)])
    with pytest.raises(openai.BadRequestError) as refused:
        client.files.create(file=("in.jsonl", too_many), purpose="batch")
    assert "line 4" in refused.value.message
    with pytest.raises(openai.BadRequestError) as refused:
        client.files.create(file=("in.jsonl", jsonl([chat_line("a", "x")])), purpose="fine-tune")
    assert refused.value.body["param"] == "purpose"


def test_upload_over_the_size_limit_is_refused(batch_gateway):
    client = batch_gateway({"batch": {"max-file-bytes": 1000}}).client
    big = jsonl([chat_line(str(n), "x" * 100) for n in range(20)])
    with pytest.raises(openai.APIStatusError) as refused:
        client.files.create(file=("in.jsonl", big), purpose="batch")
    assert refused.value.status_code == 413 and refused.value.body["param"] == "file"


def test_another_tenant_sees_neither_files_nor_batches(batch_gateway):
    gw = batch_gateway()
    client = gw.client
    uploaded = client.files.create(file=("in.jsonl", jsonl([chat_line("a", "x")])), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    done = wait_for(client, batch.id)
    other = openai_client(gw.url, create_key(gw.runtime, "globex", "pro"))
    for call in (lambda: other.files.retrieve(uploaded.id), lambda: other.files.content(uploaded.id),
                 lambda: other.files.content(done.output_file_id), lambda: other.batches.retrieve(batch.id),
                 lambda: other.batches.cancel(batch.id),
                 lambda: other.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                              completion_window="24h")):
        with pytest.raises(openai.NotFoundError):
            call()
    assert other.batches.list().data == [] and other.files.list().data == []
    assert {item.id for item in client.files.list()} == {uploaded.id, done.output_file_id}


def test_cancel_stops_the_lines_not_yet_run(batch_gateway):
    # a slow model: each line takes about half a second, so the batch is cancelled midway
    gw = batch_gateway({"simulated": {"ttft-ms": 500}, "batch": {"line-concurrency": 1, "chunk-lines": 2}})
    client = gw.client
    lines = [chat_line(f"r{n}", "x") for n in range(20)]
    uploaded = client.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    wait_for(client, batch.id, statuses=("in_progress",))
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled")
    done = wait_for(client, batch.id)
    assert done.status == "cancelled" and done.cancelled_at is not None
    assert done.request_counts.completed < 20
    assert len(outputs(client, done.output_file_id)) == done.request_counts.completed


def test_list_pages_newest_first(batch_gateway):
    client = batch_gateway().client
    uploaded = client.files.create(file=("in.jsonl", jsonl([chat_line("a", "x")])), purpose="batch")
    ids = [client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                 completion_window="24h").id for _ in range(3)]
    first = client.batches.list(limit=2)
    assert [b.id for b in first.data] == ids[::-1][:2] and first.has_more
    second = client.batches.list(limit=2, after=first.data[-1].id)
    assert [b.id for b in second.data] == [ids[0]] and not second.has_more
    assert [b.id for b in client.batches.list(limit=2)] == ids[::-1]  # the SDK's auto-paging


def test_every_line_is_in_the_ledger_once(batch_gateway):
    from datetime import datetime, timezone

    from functions.adapters.dynamodb.ledger_records import DynamoLedgerRecords
    from functions.core.tables import USAGE

    gw = batch_gateway()
    client = gw.client
    uploaded = client.files.create(file=("in.jsonl", jsonl([chat_line(f"r{n}", "x") for n in range(5)])),
                                   purpose="batch")
    done = wait_for(client, client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                                  completion_window="24h").id)
    ledger = DynamoLedgerRecords(gw.runtime.dynamodb, gw.runtime.table(USAGE))
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    ids = sorted(entry.request_id for entry in ledger.day("acme", day) if entry.request_id.startswith(done.id))
    assert ids == [line_request_id(done.id, n) for n in range(1, 6)]
    assert done.model_extra["usage_cost_usd"] > 0


def test_a_kill_switch_holds_batch_lines_instead_of_failing_them(batch_gateway):
    from functions.adapters.dynamodb.guardrails import DynamoGuardrailStore
    from functions.core.killswitch import KillSwitchFlag
    from functions.core.tables import STATE

    # one delivery before the dead-letter queue: a chunk held back must not spend its deliveries
    gw = batch_gateway({"budgets": {"flag-refresh-s": 0.1}, "batch": {"retry-after-s": 1, "max-receives": 1}})
    client = gw.client
    flags = DynamoGuardrailStore(gw.runtime.dynamodb, gw.runtime.table(STATE))
    flags.put_flag(KillSwitchFlag(scope="tenant:acme", action="refuse", reason="runaway", budget="manual",
                                  source="cli", engaged_at=time.time()))
    time.sleep(0.3)  # past the gateway's flag refresh
    uploaded = client.files.create(file=("in.jsonl", jsonl([chat_line(f"r{n}", "x") for n in range(3)])),
                                   purpose="batch")
    batch = client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    held = wait_for(client, batch.id, statuses=("in_progress",))
    time.sleep(1.0)  # the worker has met the kill switch at least once
    held = client.batches.retrieve(batch.id)
    assert held.status == "in_progress"
    assert (held.request_counts.completed, held.request_counts.failed) == (0, 0)
    flags.delete_flag("tenant:acme")
    done = wait_for(client, batch.id)
    assert done.status == "completed" and done.request_counts.completed == 3
