"""The worker hands a large enough chat batch to one Bedrock batch job, and the poller brings its
answers back: the official openai SDK against the gateway on moto (S3, DynamoDB, SQS), Bedrock's
control plane stubbed with botocore's Stubber (Create/Get/Stop are checked against the real
service model). Each line is billed once, at the batch price, however often the poller runs."""

from __future__ import annotations

import asyncio
import json

import boto3
from botocore.stub import ANY, Stubber

from functions.adapters.bedrock_batch import record_id
from functions.batch.bedrock_poller import poll_all
from functions.batch.wiring import BEDROCK_ROLE_ENV, batch_store
from functions.core.batch import chunk_ranges
from tierup.local_stack import create_key

from ..support import openai_client
from .test_batch_api import chat_line, jsonl, outputs
from .test_batch_faults import ledger_ids

ROLE = "arn:aws:iam::123456789012:role/tierup-bedrock-batch"
JOB_ARN = "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/job42"
LINES = 4


def job_answer(status: str, model: str) -> dict:
    return {"jobArn": JOB_ARN, "modelId": model, "roleArn": ROLE, "status": status, "submitTime": "2026-01-01",
            "inputDataConfig": {"s3InputDataConfig": {"s3Uri": "s3://b/bedrock/x/input/records.jsonl"}},
            "outputDataConfig": {"s3OutputDataConfig": {"s3Uri": "s3://b/bedrock/x/output/"}}}


class CountingLedger:
    """The ledger, counting the records written (a record written twice is billed twice)."""

    def __init__(self, inner) -> None:
        self.inner, self.written = inner, []

    def put_many(self, entries) -> None:
        self.written += [entry.request_id for entry in entries]
        self.inner.put_many(entries)


def setup(make_runtime, serve, overrides=None):
    from functions.gateway.composition import build_gateway

    runtime = make_runtime({"batch": {"chunk-lines": 2, "bedrock-min-records": 3}, **(overrides or {})},
                           environ={BEDROCK_ROLE_ENV: ROLE})
    app = build_gateway(runtime)
    url = serve(app)
    client = openai_client(url, create_key(runtime, "acme", "pro"))
    path = app.batch_worker.bedrock
    assert path is not None
    bedrock = boto3.client("bedrock", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    path._jobs._bedrock = bedrock
    path._ledger = CountingLedger(path._ledger)
    return runtime, app, client, path, Stubber(bedrock)


def run(coroutine):
    return asyncio.run(coroutine)


def create_batch(client, lines: int = LINES):
    """Upload ``lines`` chat requests and create a batch of them, as an OpenAI client does."""
    uploaded = client.files.create(file=("in.jsonl", jsonl([chat_line(f"r{n}", f"q{n}") for n in range(lines)])),
                                   purpose="batch")
    return client.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")


def model_output(text: str, *, input_tokens: int, output_tokens: int) -> dict:
    """One record's ``modelOutput`` as a Converse batch job writes it."""
    return {"output": {"message": {"role": "assistant", "content": [{"text": text}]}}, "stopReason": "end_turn",
            "usage": {"inputTokens": input_tokens, "outputTokens": output_tokens,
                      "totalTokens": input_tokens + output_tokens}}


def answered_records(answer: dict) -> list[dict]:
    """Every line of the batch answered with ``answer``."""
    return [{"recordId": record_id(n), "modelInput": {}, "modelOutput": answer} for n in range(LINES)]


def put_job_output(store, batch_id: str, records: list[dict]) -> None:
    """Write the job's output file where Bedrock would (the stubbed job writes nothing itself)."""
    store._client("s3").put_object(Bucket=store.bucket, Key=f"bedrock/{batch_id}/output/job42/records.jsonl.out",
                                   Body="\n".join(map(json.dumps, records)).encode())


def chunks_of(batch_id: str):
    return [{"tenant": "acme", "batch": batch_id, "chunk": chunk, "first": first, "last": last}
            for chunk, (first, last) in enumerate(chunk_ranges(LINES, 2))]


def drain(runtime, app):
    """Run every queued chunk once (the worker, as the queue poller would)."""
    sqs = runtime.aws.client("sqs")
    queue_url = batch_store(runtime).queue_url
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages") or []
        if not messages:
            return
        for message in messages:
            assert run(app.batch_worker.run_chunk(json.loads(message["Body"])))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def hand_batch_to_bedrock(runtime, app, client, stubber):
    """Create a batch of ``LINES`` lines and run its queue with Bedrock taking the job: the batch is
    then one submitted job, not yet polled."""
    batch = create_batch(client)
    with stubber:
        stubber.add_response("create_model_invocation_job", {"jobArn": JOB_ARN})
        drain(runtime, app)
    return batch


def test_a_batch_runs_as_one_bedrock_job_billed_once_at_the_batch_price(make_runtime, serve):
    runtime, app, client, path, stubber = setup(make_runtime, serve)
    model = runtime.config.routes["chat"].serverless
    batch = create_batch(client)
    store = batch_store(runtime)
    with stubber:
        stubber.add_response("create_model_invocation_job", {"jobArn": JOB_ARN}, {
            "jobName": ANY, "roleArn": ROLE, "clientRequestToken": batch.id, "modelId": model,
            "modelInvocationType": "Converse", "timeoutDurationInHours": 24, "inputDataConfig": ANY,
            "outputDataConfig": ANY})
        drain(runtime, app)  # the first chunk hands the whole batch over; the others find it handed
        assert store.job("acme", batch.id).bedrock["state"] == "submitted"
        assert store.lines(batch.id) == {}
        records = store._client("s3").get_object(Bucket=store.bucket, Key=f"bedrock/{batch.id}/input/records.jsonl")
        assert len(records["Body"].read().splitlines()) == LINES

        stubber.add_response("get_model_invocation_job", job_answer("InProgress", model), {"jobIdentifier": JOB_ARN})
        assert run(poll_all(store, path)) == {batch.id: "running"}

        # Bedrock's output: three answers and one record error, in its own order
        answer = model_output("fine", input_tokens=1000, output_tokens=100)
        rows = [{"recordId": record_id(n), "modelInput": {}, "modelOutput": answer} for n in (2, 0, 1)]
        rows.append({"recordId": record_id(3), "modelInput": {},
                     "error": {"errorCode": 400, "errorMessage": "Malformed input request"}})
        put_job_output(store, batch.id, rows)
        stubber.add_response("get_model_invocation_job", job_answer("PartiallyCompleted", model),
                             {"jobIdentifier": JOB_ARN})
        assert run(poll_all(store, path)) == {batch.id: "fallback"}
        assert run(poll_all(store, path)) == {}  # read back: no longer followed
        stubber.assert_no_pending_responses()
    drain(runtime, app)  # the queue finishes the batch (no line left to run) and writes its files
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed"
    assert (done.request_counts.completed, done.request_counts.failed) == (3, 1)
    answered = outputs(client, done.output_file_id)
    assert set(answered) == {"r0", "r1", "r2"}
    assert answered["r0"]["response"]["body"]["choices"][0]["message"]["content"] == "fine"
    assert outputs(client, done.error_file_id)["r3"]["response"]["status_code"] == 400
    # billed once each, at the batch price: 1000 in + 100 out at the model's batch rates
    price = runtime.config.pricing.models[model]
    per_line = (1000 * price.batch_input_per_mtok + 100 * price.batch_output_per_mtok) / 1e6
    assert done.model_extra["usage_cost_usd"] == round(3 * per_line, 8)
    assert ledger_ids(runtime, batch.id) == [f"{batch.id}-{n:06d}" for n in (1, 2, 3)]


def test_a_poller_run_again_bills_nothing_twice(make_runtime, serve):
    """The poller died after keeping the answers (or ran twice): a new run finds the job read back,
    and a forced re-read keeps and bills nothing again."""
    runtime, app, client, path, stubber = setup(make_runtime, serve)
    model = runtime.config.routes["chat"].serverless
    batch = hand_batch_to_bedrock(runtime, app, client, stubber)
    store = batch_store(runtime)
    answer = model_output("ok", input_tokens=10, output_tokens=2)
    with stubber:
        put_job_output(store, batch.id, answered_records(answer))
        state = store.job("acme", batch.id).bedrock
        stubber.add_response("get_model_invocation_job", job_answer("Completed", model))
        assert run(poll_all(store, path)) == {batch.id: "answered"}
        # a second poller that read the job before the first marked it done polls it again
        store.set_bedrock("acme", batch.id, state, replace=True)
        stubber.add_response("get_model_invocation_job", job_answer("Completed", model))
        assert run(poll_all(store, path)) == {batch.id: "answered"}
    drain(runtime, app)
    done = client.batches.retrieve(batch.id)
    assert (done.status, done.request_counts.completed) == ("completed", LINES)
    assert ledger_ids(runtime, batch.id) == [f"{batch.id}-{n:06d}" for n in range(1, LINES + 1)]
    assert sorted(path._ledger.written) == [f"{batch.id}-{n:06d}" for n in range(1, LINES + 1)]  # once each


def test_a_kill_switch_holds_the_job_unsubmitted(make_runtime, serve):
    import time

    from functions.adapters.dynamodb.guardrails import DynamoGuardrailStore
    from functions.core.killswitch import KillSwitchFlag
    from functions.core.tables import STATE

    runtime, app, client, path, stubber = setup(make_runtime, serve, {"budgets": {"flag-refresh-s": 0.1}})
    flags = DynamoGuardrailStore(runtime.dynamodb, runtime.table(STATE))
    flags.put_flag(KillSwitchFlag(scope="tenant:acme", action="refuse", reason="runaway", budget="manual",
                                  source="cli", engaged_at=time.time()))
    time.sleep(0.3)  # past the gateway's flag refresh
    batch = create_batch(client)
    store = batch_store(runtime)
    with stubber:  # no response queued: a CreateModelInvocationJob call would fail the test
        for message in chunks_of(batch.id):
            assert run(app.batch_worker.run_chunk(message)) is False  # held, offered again later
    assert store.job("acme", batch.id).bedrock is None
    assert store.lines(batch.id) == {} and path._ledger.written == []
    flags.delete_flag("tenant:acme")
    time.sleep(0.3)
    with stubber:
        stubber.add_response("create_model_invocation_job", {"jobArn": JOB_ARN})
        assert run(app.batch_worker.run_chunk(chunks_of(batch.id)[0])) is True
        stubber.assert_no_pending_responses()
    assert store.job("acme", batch.id).bedrock["state"] == "submitted"


def test_a_cancelled_batch_stops_its_job(make_runtime, serve):
    runtime, app, client, path, stubber = setup(make_runtime, serve)
    model = runtime.config.routes["chat"].serverless
    batch = hand_batch_to_bedrock(runtime, app, client, stubber)
    store = batch_store(runtime)
    with stubber:
        client.batches.cancel(batch.id)
        stubber.add_response("stop_model_invocation_job", {}, {"jobIdentifier": JOB_ARN})
        stubber.add_response("get_model_invocation_job", job_answer("Stopped", model))
        assert run(poll_all(store, path)) == {batch.id: "fallback"}  # stopped before any output
        stubber.assert_no_pending_responses()
    drain(runtime, app)
    done = client.batches.retrieve(batch.id)
    assert done.status == "cancelled"
    assert ledger_ids(runtime, batch.id) == []


def test_spend_caps_count_the_job_at_its_estimate_then_at_its_actual_cost(make_runtime, serve):
    """Reserved for the whole job at submission (prompt + max_tokens, on-demand), settled to the
    job's actual batch-price cost when its output is read; a second poll settles nothing again."""
    from functions.adapters.dynamodb.counters import DynamoCounterStore
    from functions.core.tables import USAGE

    budgets = {"budgets": {"routes": {"chat": {"daily-usd": 100.0}}}}
    runtime, app, client, path, stubber = setup(make_runtime, serve, budgets)
    model = runtime.config.routes["chat"].serverless
    guard = path._spend_caps
    counters = DynamoCounterStore(runtime.dynamodb, runtime.table(USAGE))

    def counted() -> float:
        import time

        keys = [cap.counter_key for cap in guard.caps("chat", "acme", time.time()) if cap.scope == "route:chat"]
        values = set(counters.read(keys).values())  # the route's daily and monthly caps count alike
        assert len(values) == 1
        return values.pop()

    batch = hand_batch_to_bedrock(runtime, app, client, stubber)
    store = batch_store(runtime)
    answer = model_output("ok", input_tokens=10, output_tokens=2)
    with stubber:
        estimate = store.job("acme", batch.id).bedrock["estimate_usd"]
        assert estimate > 0
        run(guard.settle_later("chat", "acme", store.job("acme", batch.id).bedrock["at"], 0.0))  # leases flushed
        assert counted() >= estimate * 0.999
        put_job_output(store, batch.id, answered_records(answer))
        state = store.job("acme", batch.id).bedrock
        stubber.add_response("get_model_invocation_job", job_answer("Completed", model))
        assert run(poll_all(store, path)) == {batch.id: "answered"}
        price = runtime.config.pricing.models[model]
        actual = LINES * (10 * price.batch_input_per_mtok + 2 * price.batch_output_per_mtok) / 1e6
        assert abs(counted() - actual) < 1e-9
        store.set_bedrock("acme", batch.id, state, replace=True)  # a poller that runs it again
        stubber.add_response("get_model_invocation_job", job_answer("Completed", model))
        run(poll_all(store, path))
        assert abs(counted() - actual) < 1e-9


def test_a_failed_job_falls_back_to_the_interactive_path(make_runtime, serve):
    runtime, app, client, path, stubber = setup(make_runtime, serve)
    model = runtime.config.routes["chat"].serverless
    batch = hand_batch_to_bedrock(runtime, app, client, stubber)
    store = batch_store(runtime)
    with stubber:
        stubber.add_response("get_model_invocation_job", job_answer("Failed", model))
        assert run(poll_all(store, path)) == {batch.id: "fallback"}
    drain(runtime, app)  # the worker runs every line on the route's interactive tiers
    done = client.batches.retrieve(batch.id)
    assert (done.status, done.request_counts.completed, done.request_counts.failed) == ("completed", LINES, 0)
    assert set(outputs(client, done.output_file_id)) == {f"r{n}" for n in range(LINES)}
    assert ledger_ids(runtime, batch.id) == [f"{batch.id}-{n:06d}" for n in range(1, LINES + 1)]
    assert store.job("acme", batch.id).bedrock["state"] == "done"


def test_a_job_still_running_at_the_deadline_margin_is_stopped(make_runtime, serve):
    runtime, app, client, path, stubber = setup(make_runtime, serve)
    model = runtime.config.routes["chat"].serverless
    batch = hand_batch_to_bedrock(runtime, app, client, stubber)
    store = batch_store(runtime)
    with stubber:
        job = store.job("acme", batch.id)
        path._clock = lambda: job.expires_at - runtime.config.batch.deadline_margin_s + 1
        stubber.add_response("stop_model_invocation_job", {}, {"jobIdentifier": JOB_ARN})
        stubber.add_response("get_model_invocation_job", job_answer("Stopping", model))
        assert run(poll_all(store, path)) == {batch.id: "running"}
        stubber.assert_no_pending_responses()


def test_end_to_end_in_process_worker_and_poller(make_runtime, serve):
    """As ``tierup dev`` runs it: the queue poller and the Bedrock job poller inside the gateway;
    the client only uploads, creates and waits, exactly as against OpenAI."""
    from functions.gateway.composition import build_gateway

    from .test_batch_api import wait_for

    runtime = make_runtime({"batch": {"chunk-lines": 2, "bedrock-min-records": 3, "bedrock-poll-s": 0.1}},
                           environ={BEDROCK_ROLE_ENV: ROLE, "TIERUP_BATCH_WORKER": "in-process"})
    model = runtime.config.routes["chat"].serverless
    stubber = Stubber(runtime.aws.client("bedrock"))  # the client the wiring takes (one per service)
    stubber.activate()
    client = openai_client(serve(build_gateway(runtime)), create_key(runtime, "acme", "pro"))
    store = batch_store(runtime)
    stubber.add_response("create_model_invocation_job", {"jobArn": JOB_ARN})
    stubber.add_response("get_model_invocation_job", job_answer("Completed", model))
    batch = create_batch(client)
    answer = model_output("from the job", input_tokens=10, output_tokens=3)
    put_job_output(store, batch.id, answered_records(answer))
    done = wait_for(client, batch.id, timeout_s=30)
    stubber.deactivate()
    assert (done.status, done.request_counts.completed) == ("completed", LINES)
    answered = outputs(client, done.output_file_id)
    assert {row["response"]["body"]["choices"][0]["message"]["content"] for row in answered.values()} == {
        "from the job"}
    assert ledger_ids(runtime, batch.id) == [f"{batch.id}-{n:06d}" for n in range(1, LINES + 1)]


def test_a_batch_under_bedrocks_minimum_runs_on_the_interactive_path(make_runtime, serve):
    runtime, app, client, path, stubber = setup(make_runtime, serve)
    batch = create_batch(client, lines=2)
    with stubber:  # nothing queued: a Bedrock call would fail the test
        drain(runtime, app)
    done = client.batches.retrieve(batch.id)
    assert (done.status, done.request_counts.completed) == ("completed", 2)
    assert batch_store(runtime).job("acme", batch.id).bedrock is None


def test_a_worker_running_a_chunk_stops_when_another_hands_the_batch_to_bedrock(make_runtime, serve):
    """A worker that took a chunk before the batch went to a Bedrock job leaves its lines to the
    job (Bedrock bills every record it answers: answering one here too would be paid twice)."""
    runtime, app, client, path, stubber = setup(make_runtime, serve)
    batch = create_batch(client)
    store = batch_store(runtime)
    # the other worker submitted the job after this one read the batch (simulated: no hand-over here)
    store.set_bedrock("acme", batch.id, {"state": "submitted", "arn": JOB_ARN, "model": "m", "route": "chat",
                                         "at": 0})
    app.batch_worker.bedrock = None
    assert run(app.batch_worker.run_chunk(chunks_of(batch.id)[0])) is True
    assert store.lines(batch.id) == {}
    assert store.job("acme", batch.id).chunk_counts == {}  # not finished: the poller queues it again


def test_the_scheduled_poller_function_polls_and_writes_what_it_owes(make_runtime, serve, monkeypatch):
    """``functions.bedrock_poller_handler`` on the worker the Lambda container built once."""
    from functions import batch_handler, bedrock_poller_handler

    runtime, app, client, path, stubber = setup(make_runtime, serve)
    model = runtime.config.routes["chat"].serverless
    batch = create_batch(client)
    loop = asyncio.new_event_loop()
    monkeypatch.setattr(batch_handler, "_loop", loop)
    monkeypatch.setattr(batch_handler, "_worker", app.batch_worker)
    monkeypatch.setattr(batch_handler, "_runtime", runtime)
    try:
        with stubber:
            stubber.add_response("create_model_invocation_job", {"jobArn": JOB_ARN})
            assert loop.run_until_complete(app.batch_worker.run_chunk(chunks_of(batch.id)[0])) is True
            stubber.add_response("get_model_invocation_job", job_answer("InProgress", model))
            assert bedrock_poller_handler.handler({}, None) == {"polled": {batch.id: "running"}}
            stubber.assert_no_pending_responses()
    finally:
        loop.close()


def test_a_line_in_flight_when_the_batch_is_handed_over_is_answered_once(make_runtime, serve):
    """Worker A's line 0 is inside the provider when worker B hands the batch to a Bedrock job: the
    job's records leave out A's chunk (leased), so every line ends answered once, either by the
    interactive path or by the job, never both (Bedrock bills every record it answers)."""
    runtime, app, client, path, stubber = setup(make_runtime, serve)
    model = runtime.config.routes["chat"].serverless
    worker = app.batch_worker
    batch = create_batch(client)
    store = batch_store(runtime)
    first_line = f"{batch.id}-000001"
    started, release = asyncio.Event(), asyncio.Event()
    chat = worker._pipeline.chat

    async def blocked_in_provider(ctx):
        if ctx.request_id == first_line:
            started.set()
            await release.wait()
        return await chat(ctx)

    worker._pipeline.chat = blocked_in_provider
    path._jobs.min_records = 100  # not due yet: worker A runs its chunk on the interactive path

    async def race():
        running = asyncio.create_task(worker.run_chunk(chunks_of(batch.id)[0]))
        await asyncio.wait_for(started.wait(), 10)
        path._jobs.min_records = 2  # now due: worker B hands the batch over while line 0 is in flight
        with stubber:
            stubber.add_response("create_model_invocation_job", {"jobArn": JOB_ARN})
            assert await worker.run_chunk(chunks_of(batch.id)[1]) is True
            stubber.assert_no_pending_responses()
        release.set()
        return await asyncio.wait_for(running, 10)

    assert run(race()) is True
    records = store._client("s3").get_object(Bucket=store.bucket, Key=f"bedrock/{batch.id}/input/records.jsonl")
    in_job = {json.loads(row)["recordId"] for row in records["Body"].read().splitlines()}
    by_bedrock = {n for n in range(LINES) if record_id(n) in in_job}
    answer = model_output("from the job", input_tokens=10, output_tokens=3)
    put_job_output(store, batch.id, [{"recordId": record_id(n), "modelInput": {}, "modelOutput": answer}
                                     for n in sorted(by_bedrock)])
    with stubber:
        stubber.add_response("get_model_invocation_job", job_answer("Completed", model))
        assert run(poll_all(store, path)) == {batch.id: "answered"}
    drain(runtime, app)
    done = client.batches.retrieve(batch.id)
    assert (done.status, done.request_counts.completed, done.request_counts.failed) == ("completed", LINES, 0)
    answered = outputs(client, done.output_file_id)
    interactive = {n for n in range(LINES)
                   if answered[f"r{n}"]["response"]["body"]["choices"][0]["message"]["content"] != "from the job"}
    assert 0 in interactive and not interactive & by_bedrock  # line 0 ran here only; Bedrock never had it
    assert interactive | by_bedrock == set(range(LINES))
    assert ledger_ids(runtime, batch.id) == [f"{batch.id}-{n:06d}" for n in range(1, LINES + 1)]  # once each


def job_record_lines(store, batch_id: str) -> set[int]:
    """The lines the Bedrock job was given (its input records)."""
    records = store._client("s3").get_object(Bucket=store.bucket, Key=f"bedrock/{batch_id}/input/records.jsonl")
    in_job = {json.loads(row)["recordId"] for row in records["Body"].read().splitlines()}
    return {n for n in range(LINES) if record_id(n) in in_job}


def test_a_dead_workers_lease_runs_out_and_a_dead_hand_over_is_taken_over(make_runtime, serve):
    """A worker that died mid-line left its lease, and a hand-over died after fencing the batch:
    neither strands a line. A fresh fence holds the chunk for now; once older than a message's
    visibility timeout it is taken over, and the run-out lease no longer keeps lines from the job."""
    import time

    runtime, app, client, path, stubber = setup(make_runtime, serve)
    batch = create_batch(client)
    store = batch_store(runtime)
    assert store.take_lease("acme", batch.id, 0, time.time() - 1)  # ran out: its worker is gone
    fresh = {"state": "handing", "at": int(time.time())}
    assert store.fence("acme", batch.id, fresh) is not None
    with stubber:  # nothing queued: a hand-over under way is not run twice
        assert run(app.batch_worker.run_chunk(chunks_of(batch.id)[1])) is False
    stale = {"state": "handing", "at": int(time.time()) - runtime.config.batch.visibility_timeout_s - 1}
    assert store.fence("acme", batch.id, stale, replacing=fresh) is not None
    with stubber:
        stubber.add_response("create_model_invocation_job", {"jobArn": JOB_ARN})
        assert run(app.batch_worker.run_chunk(chunks_of(batch.id)[1])) is True
        stubber.assert_no_pending_responses()
    assert job_record_lines(store, batch.id) == set(range(LINES))
    assert store.job("acme", batch.id).bedrock["state"] == "submitted"


def test_a_live_lease_of_a_dead_worker_leaves_its_chunk_to_after_the_job(make_runtime, serve):
    """The hand-over cannot tell a dead worker's lease from a slow one: it leaves the chunk out,
    and the chunk runs on the interactive path once the job is read back."""
    import time

    runtime, app, client, path, stubber = setup(make_runtime, serve, {"batch": {"chunk-lines": 2,
                                                                                "bedrock-min-records": 2}})
    model = runtime.config.routes["chat"].serverless
    batch = create_batch(client)
    store = batch_store(runtime)
    assert store.take_lease("acme", batch.id, 0, time.time() + 600)  # its worker died just now
    with stubber:
        stubber.add_response("create_model_invocation_job", {"jobArn": JOB_ARN})
        assert run(app.batch_worker.run_chunk(chunks_of(batch.id)[1])) is True
        assert run(app.batch_worker.run_chunk(chunks_of(batch.id)[0])) is True  # redelivered: the job's turn
    assert job_record_lines(store, batch.id) == {2, 3}
    answer = model_output("from the job", input_tokens=10, output_tokens=3)
    put_job_output(store, batch.id, [{"recordId": record_id(n), "modelInput": {}, "modelOutput": answer}
                                     for n in (2, 3)])
    with stubber:
        stubber.add_response("get_model_invocation_job", job_answer("Completed", model))
        assert run(poll_all(store, path)) == {batch.id: "answered"}
    drain(runtime, app)  # the poller queued every chunk again: chunk 0 runs here now
    done = client.batches.retrieve(batch.id)
    assert (done.status, done.request_counts.completed) == ("completed", LINES)
    answered = outputs(client, done.output_file_id)
    assert [n for n in range(LINES) if answered[f"r{n}"]["response"]["body"]["choices"][0]["message"]["content"]
            == "from the job"] == [2, 3]
    assert ledger_ids(runtime, batch.id) == [f"{batch.id}-{n:06d}" for n in range(1, LINES + 1)]


def test_quota_counters_count_the_job_at_its_estimate_then_at_its_actual_use(make_runtime, serve):
    """The tenant's daily tokens and monthly budget hold the job's estimate from submission, and
    its actual tokens and batch-price cost once its output is read; once per job."""
    import time

    from functions.core.quota.counters import MONTHLY_BUDGET_USD, TOKENS_PER_DAY, counters_for

    plans = {"plans": {"pro": {"tokens-per-day": 10_000_000, "monthly-budget-usd": 1000.0}}}
    runtime, app, client, path, stubber = setup(make_runtime, serve, plans)
    model = runtime.config.routes["chat"].serverless
    quotas = path._quotas
    assert quotas is not None
    plan = runtime.config.plan_for("pro", "acme")

    def used() -> dict[str, float]:
        run(quotas._leases.flush(final=True))  # this process's leased blocks handed back: settled only
        counters = {c.name: c for c in counters_for(plan, "acme", time.time())}
        keys = {name: counters[name].key for name in (TOKENS_PER_DAY, MONTHLY_BUDGET_USD)}
        read = quotas._leases._store.read_counters(list(keys.values()))
        return {name: read[key].used for name, key in keys.items()}

    batch = hand_batch_to_bedrock(runtime, app, client, stubber)
    store = batch_store(runtime)
    state = store.job("acme", batch.id).bedrock
    counted = used()
    assert counted[TOKENS_PER_DAY] == state["estimate_tokens"] > LINES * 12
    assert abs(counted[MONTHLY_BUDGET_USD] - state["estimate_usd"]) < 1e-9
    put_job_output(store, batch.id, answered_records(model_output("ok", input_tokens=10, output_tokens=2)))
    with stubber:
        stubber.add_response("get_model_invocation_job", job_answer("Completed", model))
        assert run(poll_all(store, path)) == {batch.id: "answered"}
        price = runtime.config.pricing.models[model]
        actual_usd = LINES * (10 * price.batch_input_per_mtok + 2 * price.batch_output_per_mtok) / 1e6
        settled = used()
        assert settled[TOKENS_PER_DAY] == LINES * 12
        assert abs(settled[MONTHLY_BUDGET_USD] - actual_usd) < 1e-9
        store.set_bedrock("acme", batch.id, state, replace=True)  # a poller that reads the job again
        stubber.add_response("get_model_invocation_job", job_answer("Completed", model))
        run(poll_all(store, path))
        assert used() == settled
