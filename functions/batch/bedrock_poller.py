"""Follows the batches handed to Bedrock batch jobs: every ``interval_s`` in ``tierup dev`` (an
in-process loop), every minute on AWS (a scheduled Lambda, ``functions/bedrock_poller_handler.py``).

Each run reads the list of batches whose job is not read back yet and polls each once
(``BedrockBatchPath.poll``); a run that fails or dies part-way is simply run again: answers are
kept with conditional writes and billed once.
"""

from __future__ import annotations

import asyncio
import logging

from .background_loop import BackgroundLoop

log = logging.getLogger("tierup.batch")

INTERVAL_S = 60.0


async def poll_all(store, path) -> dict[str, str]:
    """Poll every followed batch once: batch id -> what its job did (``running``, ``answered``...)."""
    outcomes = {}
    for tenant_id, batch_id in await asyncio.to_thread(store.bedrock_batches):
        job = await asyncio.to_thread(store.job, tenant_id, batch_id)
        if job is None:
            continue
        try:
            outcomes[batch_id] = await path.poll(job)
        except Exception:
            log.exception("Bedrock batch job poll failed; the next run polls it again", extra={"batch": batch_id})
            outcomes[batch_id] = "error"
    return outcomes


class BedrockJobPoller(BackgroundLoop):
    def __init__(self, store, path, *, interval_s: float = INTERVAL_S) -> None:
        super().__init__(lambda: poll_all(store, path), name="bedrock-batch-poller",
                         failure="Bedrock batch poll failed", pause_s=lambda _: interval_s)
