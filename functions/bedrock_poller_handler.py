"""The Bedrock batch poller Lambda function, run every minute by an EventBridge schedule: follows
the batches handed to Bedrock batch jobs (``functions/batch/bedrock_poller.py``).

Environment: as the batch worker's, plus TIERUP_BEDROCK_BATCH_ROLE_ARN.
"""

from __future__ import annotations

from .batch.bedrock_poller import poll_all
from .batch_handler import _start


def handler(event=None, context=None) -> dict:
    loop, worker = _start()
    if worker.bedrock is None:
        return {"polled": {}}
    outcomes = loop.run_until_complete(poll_all(worker.bedrock.store, worker.bedrock))
    for hook in worker.after_chunk_hooks:  # what the lines owe is written before Lambda freezes
        loop.run_until_complete(hook())
    return {"polled": outcomes}
