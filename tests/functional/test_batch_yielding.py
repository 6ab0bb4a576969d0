"""The batch worker inside the gateway (``tierup dev``) gives way to the gateway's own requests:
one line at a time while an interactive request is in flight, ``line-concurrency`` when idle."""

from __future__ import annotations

import asyncio
import time

from functions.batch.wiring import WORKER_ENV, batch_store
from functions.core.batch import BatchJob, file_object

from .test_batch_api import chat_line, jsonl

LINES = 6


def most_lines_at_once(runtime, job_id: str, *, interactive_in_flight: bool) -> int:
    """Run a chunk of ``LINES`` lines; the most that were with the provider at once."""
    from functions.gateway.composition import build_gateway

    app = build_gateway(runtime)
    worker = app.batch_worker
    admission = next(guard for guard in app._pipeline._guards if guard.name == "admission")
    running, most = 0, 0
    run_line = worker._run_line

    async def counted(*args):
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            return await run_line(*args)
        finally:
            running -= 1

    worker._run_line = counted

    async def chunk() -> bool:
        if interactive_in_flight:
            await admission.admit(None)  # a user's request, in flight the whole time
        try:
            return await worker.run_chunk({"tenant": "acme", "batch": job_id, "chunk": 0, "first": 0,
                                           "last": LINES - 1})
        finally:
            if interactive_in_flight:
                await admission.release(None)

    assert asyncio.run(chunk())
    return most


def put_batch(runtime, job_id: str) -> None:
    store = batch_store(runtime)
    data = jsonl([chat_line(f"r{n}", f"question {n}") for n in range(LINES)])
    store.put_file("acme", file_object(f"file-{job_id[-4:]}", size=len(data), created_at=0, filename="in.jsonl",
                                       purpose="batch"), data, 10**10)
    store.put_job(BatchJob(id=job_id, tenant_id="acme", input_file_id=f"file-{job_id[-4:]}",
                           endpoint="/v1/chat/completions", completion_window="24h", created_at=int(time.time()),
                           total=LINES, chunks=1, plan="pro", status="in_progress"))


def test_in_process_worker_runs_one_line_at_a_time_while_users_are_served(make_runtime):
    runtime = make_runtime({"simulated": {"ttft-ms": 100}, "batch": {"chunk-lines": LINES, "line-concurrency": 3}},
                           environ={WORKER_ENV: "in-process"})
    put_batch(runtime, "batch_000000000004dddd")
    put_batch(runtime, "batch_000000000005eeee")
    assert most_lines_at_once(runtime, "batch_000000000004dddd", interactive_in_flight=True) == 1
    assert most_lines_at_once(runtime, "batch_000000000005eeee", interactive_in_flight=False) == 3
    done = batch_store(runtime).job("acme", "batch_000000000004dddd")
    assert done.status == "completed" and done.completed == LINES
