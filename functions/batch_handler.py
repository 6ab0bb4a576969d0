"""The batch worker Lambda function, invoked by the batch queue (SQS event source mapping with
``ReportBatchItemFailures``).

Each message is one chunk of a batch's lines (``functions/batch/worker.py``). A chunk refused for
now (kill switch, quota, budget) is reported as failed and hidden for ``[batch] retry-after-s``;
a chunk whose run raised is reported as failed and reappears after the queue's visibility
timeout; after ``max-receives`` deliveries SQS moves it to the dead-letter queue (an alarm
watches its depth).

The gateway's parts are built once per container, on one event loop kept between invocations,
so its leases and caches live as long as the container does. What the lines owe is written
before the invocation returns (the worker's ``after_chunk`` hooks): Lambda freezes the process
after it.

Environment: as the gateway's, plus TIERUP_BATCH_BUCKET and TIERUP_BATCH_QUEUE_URL.
"""

from __future__ import annotations

import asyncio
import json
import logging

log = logging.getLogger("tierup.batch")
log.setLevel(logging.INFO)

_loop: asyncio.AbstractEventLoop | None = None
_worker = None
_runtime = None


def _start():
    global _loop, _worker, _runtime
    if _worker is None:
        from .core.config import load_config
        from .gateway.composition import Runtime, build_gateway

        _runtime = Runtime(config=load_config())
        app = build_gateway(_runtime)
        _loop = asyncio.new_event_loop()
        for hook in app._on_startup:
            _loop.run_until_complete(hook())
        _worker = app.batch_worker
    return _loop, _worker


def handler(event, context=None) -> dict:
    loop, worker = _start()
    failures = []
    for record in event.get("Records", []):
        try:
            done = loop.run_until_complete(worker.run_chunk(json.loads(record["body"])))
        except Exception:
            log.exception("batch chunk failed; the queue offers it again", extra={"message": record["messageId"]})
            done = None
        if done:
            continue
        failures.append({"itemIdentifier": record["messageId"]})
        if done is False:  # refused for now: hidden until the refusal may have lifted
            _runtime.aws.client("sqs").change_message_visibility(
                QueueUrl=_runtime.environ["TIERUP_BATCH_QUEUE_URL"], ReceiptHandle=record["receiptHandle"],
                VisibilityTimeout=_runtime.config.batch.retry_after_s)
    return {"batchItemFailures": failures}
