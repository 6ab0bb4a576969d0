"""Feeds the batch worker from SQS inside a long-lived process (``tierup dev``, a container).

On AWS the queue invokes the worker function instead (``functions/batch_handler.py``). A message
is deleted only once its chunk is done; a worker that fails or dies leaves its message to reappear
after the queue's visibility timeout, and after ``max-receives`` deliveries SQS moves it to the
dead-letter queue. A chunk refused for now (``offer_again_later``) is sent again as a new message,
delayed by ``retry-after-s``: a kill switch held for hours must not use up its deliveries.

Polls are short (no ``WaitTimeSeconds``): the local stand-in serves one AWS call at a time, and a
long poll would hold every other call for its length.

``python -m functions.batch.queue_poller CONFIG.json`` runs one in a process of its own (the
environment names the AWS endpoint, tables, bucket and queue), as the fault tests kill it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys

from .background_loop import BackgroundLoop

log = logging.getLogger("tierup.batch")

#: pause after a poll that found nothing
IDLE_SLEEP_S = 0.2
#: SQS delays a message at most 15 minutes
MAX_DELAY_S = 900


def offer_again_later(sqs, queue_url: str, body: str, delay_s: int) -> None:
    """Queue a copy of ``body`` that appears after ``delay_s``, with its delivery count at zero.
    The caller then lets the original go; dying in between leaves two copies, which is harmless
    (a line answered once is never run again)."""
    sqs.send_message(QueueUrl=queue_url, MessageBody=body, DelaySeconds=min(MAX_DELAY_S, delay_s))


class QueuePoller(BackgroundLoop):
    def __init__(self, sqs, queue_url: str, worker, *, retry_after_s: int) -> None:
        """``sqs()`` returns the SQS client."""
        # an empty or failed poll pauses; a poll that found a message goes straight to the next
        super().__init__(self.poll_once, name="batch-poller", failure="batch poll failed",
                         pause_s=lambda found: 0 if found else IDLE_SLEEP_S)
        self._sqs = sqs
        self._queue_url = queue_url
        self._worker = worker
        self._retry_after_s = retry_after_s

    async def poll_once(self) -> bool:
        """Take one message and run it: whether there was one."""
        sqs = self._sqs()
        answer = await asyncio.to_thread(sqs.receive_message, QueueUrl=self._queue_url, MaxNumberOfMessages=1)
        messages = answer.get("Messages") or []
        for message in messages:
            try:
                done = await self._worker.run_chunk(json.loads(message["Body"]))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("batch chunk failed; the queue offers it again")
                continue
            if not done:
                await asyncio.to_thread(offer_again_later, sqs, self._queue_url, message["Body"],
                                        self._retry_after_s)
            await asyncio.to_thread(sqs.delete_message, QueueUrl=self._queue_url,
                                    ReceiptHandle=message["ReceiptHandle"])
        return bool(messages)


async def _serve(config_path: str) -> None:
    from ..core.config import parse_config
    from ..gateway.composition import Runtime, build_gateway
    from .wiring import WORKER_ENV

    with open(config_path, encoding="utf-8") as file:
        config = parse_config(json.load(file))
    runtime = Runtime(config=config, environ={**os.environ, WORKER_ENV: "in-process"})
    app = build_gateway(runtime)
    for hook in app._on_startup:
        await hook()
    await asyncio.Event().wait()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_serve(sys.argv[1]))
