"""The batch worker Lambda function, invoked by the batch queue (SQS event source mapping with
``ReportBatchItemFailures``).

Each message is one chunk of a batch's lines (``functions/batch/worker.py``). A chunk refused for
now (kill switch, quota, budget) is queued again as a new message delayed by ``[batch]
retry-after-s`` (``offer_again_later``: its deliveries are not used up); a chunk whose run
raised is reported as failed and reappears after the queue's visibility timeout; after
``max-receives`` deliveries SQS moves it to the dead-letter queue (an alarm watches its depth).

The gateway's parts are built once per container, on one event loop kept between invocations,
so its leases and caches live as long as the container does. What the lines owe is written
before the invocation returns (the worker's ``after_chunk`` hooks): Lambda freezes the process
after it.

Environment: as the gateway's, plus TIERUP_BATCH_BUCKET and TIERUP_BATCH_QUEUE_URL, and
TIERUP_BEDROCK_BATCH_ROLE_ARN (the role Bedrock batch jobs run as: without it, no Bedrock batch).
"""

from __future__ import annotations

import asyncio
import json
import logging

from .batch.queue_poller import offer_again_later

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
        if done is False:  # refused for now: a fresh copy, later; the original is done with
            try:
                offer_again_later(_runtime.aws.client("sqs"), _runtime.environ["TIERUP_BATCH_QUEUE_URL"],
                                  record["body"], _runtime.config.batch.retry_after_s)
                continue
            except Exception:
                log.exception("could not queue a held chunk again; the queue offers it again")
        if not done:
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
