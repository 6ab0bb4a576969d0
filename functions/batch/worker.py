"""The batch worker: runs a queue message's lines through the interactive pipeline, once each.

A line runs with the same checks and stages as an interactive request (route, limits, kill
switches, admission, quotas, spend caps, cache, routing with fallback) and is billed at the price
of the tier that served it. What makes it once-only across crashes and redeliveries:

1. A line's answer is kept with a conditional write (``BatchStore.put_line``): a line already
   answered is skipped, never run again.
2. Its ledger record is written after the answer is kept, keyed by the line's fixed request id and
   start time, so writing it again overwrites the same item; the line is then marked billed.
   Records and marks are written a group of lines at a time (``_GroupBilling``: two
   ``BatchWriteItem`` calls per 25 lines, where one write each would queue the store's other
   callers, interactive requests among them, behind three writes a line). A line found answered but
   not billed (the worker died before its group was billed) is billed on the next delivery from
   the kept record. So the ledger holds each answered line exactly once.

The window left: a worker that dies after the model answered but before the answer was kept runs
the line again. Its ledger record is still written once, but quota and spend counters, settled
when the first run ended, count that line twice: they err towards refusing, never towards
unbilled spend.

While a batch may still be handed to a Bedrock batch job, the worker leases the chunk it runs
(``_ChunkLease``: one write to take it, one to end it, one to renew it every third of
``visibility-timeout-s``). The hand-over stops new leases and reads the live ones in the same
write, and leaves the leased chunks out of the job: no line is answered both here and by Bedrock.

A refusal that is about now, not the line (a kill switch, a quota or budget that is full, a store
that does not answer, a provider that refused without generating), stops the chunk: its message
is offered again later, and the lines not yet answered run then. Kill switches so stop batch work
before anything else: a line never fails because of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import asdict

import orjson

from ..core.batch import (EXPIRED_ERROR, TERMINAL, BatchJob, answered_ok, file_object, line_request_id,
                          output_file_id, output_line, parse_batch_file)
from ..core.chat import ChatRequest, EmbeddingRequest
from ..core.config import TierupConfig
from ..core.context import RequestContext, Tenant
from ..core.errors import (BudgetExceededError, ProviderError, RateLimitError, RequestError, StorageUnavailableError,
                           TierupError)
from ..core.usage_ledger import LedgerEntry, entry_from
from ..gateway.openai_format import completion_json, embeddings_json
from .bedrock_path import HeldForNow
from .routing import DEADLINE

log = logging.getLogger("tierup.batch")

#: a cancelled batch is noticed within this long by a worker running its lines
STATUS_RECHECK_S = 0.5


class RetryLater(Exception):
    """The line was refused for now (not for what it asks): its chunk is offered again later."""


def refused_for_now(exc: TierupError) -> bool:
    if isinstance(exc, ProviderError):
        return exc.retryable and not exc.may_have_generated
    return isinstance(exc, (RateLimitError, BudgetExceededError, StorageUnavailableError))


class BatchWorker:
    def __init__(self, *, app, pipeline, store, ledger, config: TierupConfig, after_chunk=(), bedrock=None,
                 pacer=None) -> None:
        """``app``: the ``GatewayApp`` whose request checks lines pass; ``pipeline``: its stages
        without the interactive ledger (a line's record is written here, once); ``after_chunk``:
        hooks that make what the lines owe durable (the gateway's ``before_response_completes``);
        ``pacer``: an ``InteractiveFirst`` when the worker shares the gateway's event loop."""
        self._pacer = pacer
        self._app = app
        self._pipeline = pipeline
        self._store = store
        self._ledger = ledger
        self._config = config
        self._after_chunk = list(after_chunk)
        #: ``BedrockBatchPath``: hands a whole batch to one Bedrock batch job when that is due
        self.bedrock = bedrock

    @property
    def after_chunk_hooks(self) -> list:
        return self._after_chunk

    async def _io(self, function, *args, **kwargs):
        return await asyncio.to_thread(function, *args, **kwargs)

    async def run_chunk(self, message: dict) -> bool:
        """Run one message's lines: ``True`` when the message is done with, ``False`` to offer it again later."""
        tenant_id, batch_id, chunk = message["tenant"], message["batch"], int(message["chunk"])
        first, last = int(message["first"]), int(message["last"])
        job = await self._io(self._store.job, tenant_id, batch_id)
        if job is None or job.status in TERMINAL:
            return True
        if job.status == "validating":
            await self._io(self._store.move, tenant_id, batch_id, "in_progress", when=("validating",),
                           at=int(time.time()))
        data = await self._io(self._store.file_content, tenant_id, job.input_file_id)
        if self.bedrock is not None and job.status in ("validating", "in_progress"):
            try:
                if await self.bedrock.hand_over(job, data):
                    return True  # the job's lines are the Bedrock job's; the poller brings them back
            except HeldForNow:
                return False
        lease = None
        if self.bedrock is not None and job.endpoint == "/v1/chat/completions" and not job.bedrock:
            # a hand-over may still come: it leaves the lines of a leased chunk to their worker
            lease = _ChunkLease(self._store, tenant_id, batch_id, chunk, self._config.batch.visibility_timeout_s)
            if not await lease.take():
                return False  # a hand-over began meanwhile: the next delivery sees its job
        try:
            return await self._run_lines(job, data, chunk, first, last)
        finally:
            if lease is not None:
                await lease.end()

    async def _run_lines(self, job: BatchJob, data: bytes, chunk: int, first: int, last: int) -> bool:
        tenant_id, batch_id = job.tenant_id, job.id
        lines = parse_batch_file(data, max_lines=job.total)[first:last + 1]
        keep_until = job.created_at + self._config.batch.keep_days * 86400
        billing = _GroupBilling(self, batch_id, keep_until)
        kept = await self._io(self._store.lines, batch_id, first, last)
        for index, line in kept.items():
            if not line["billed"]:  # answered by a worker that died before billing it
                await billing.add(index, line["record"])
        watch = _CancelWatch(self._store, tenant_id, batch_id, chunk)
        gate = asyncio.Semaphore(self._config.batch.line_concurrency)
        expired = time.time() >= job.expires_at  # the window is over: what has not run never will

        async def run(index: int) -> None:
            async with gate, self._turn():
                if await watch.cancelled():
                    return
                if expired:
                    record = {"custom_id": lines[index - first].custom_id, "status_code": None, "body": None,
                              "request_id": line_request_id(job.id, index + 1), "error": EXPIRED_ERROR,
                              "entry": None}
                else:
                    record = await self._run_line(job, index, lines[index - first])
                if await self._io(self._store.put_line, batch_id, index, record, keep_until):
                    await billing.add(index, record)

        results = await asyncio.gather(*(run(index) for index in range(first, last + 1) if index not in kept),
                                       return_exceptions=True)
        await billing.flush()  # what the chunk kept is billed before its message is let go or offered again
        for hook in self._after_chunk:
            await hook()
        failures = [result for result in results if isinstance(result, BaseException)]
        if any(isinstance(failure, RetryLater) for failure in failures):
            return False
        if failures:
            raise failures[0]
        if watch.handed:  # the rest is the Bedrock job's now: the poller queues the chunk again after it
            return True
        return await self._finish_chunk(job, chunk, first, last)

    def _turn(self):
        """A line's turn: at once, or when the gateway sharing this event loop lets it (``yielding.py``)."""
        return self._pacer.turn(self._config.batch.line_concurrency) if self._pacer else contextlib.nullcontext()

    async def _finish_chunk(self, job: BatchJob, chunk: int, first: int, last: int) -> bool:
        kept = await self._io(self._store.lines, job.id, first, last)
        records = [line["record"] for line in kept.values()]
        answered = sum(1 for record in records if answered_ok(record))
        cost = sum(record["entry"]["cost_usd"] for record in records if record.get("entry"))
        job = await self._io(self._store.finish_chunk, job.tenant_id, job.id, chunk, answered,
                             len(records) - answered, cost)
        if len(job.chunk_counts) >= job.chunks:
            await self._finalize(job)
        return True

    async def _finalize(self, job: BatchJob) -> None:
        """Write the output and error files and close the batch. Idempotent: the files' ids are
        fixed per batch, so two workers finishing one batch write the same files."""
        now = int(time.time())
        if job.status == "in_progress":
            await self._io(self._store.move, job.tenant_id, job.id, "finalizing", when=("in_progress",), at=now)
        kept = await self._io(self._store.lines, job.id)
        files: dict[str, list[bytes]] = {"output": [], "error": []}
        for index in sorted(kept):
            record = kept[index]["record"]
            kind = "output" if answered_ok(record) else "error"
            files[kind].append(orjson.dumps(output_line(record["request_id"], record["custom_id"],
                                                        record["status_code"], record["body"], record.get("error"))))
        ids: dict[str, str] = {}
        expires_at = now + self._config.batch.keep_days * 86400
        for kind, rows in files.items():
            if not rows:
                continue
            data = b"\n".join(rows) + b"\n"
            ids[f"{kind}_file_id"] = output_file_id(job.id, kind)
            created = file_object(ids[f"{kind}_file_id"], size=len(data), created_at=now,
                                  filename=f"{job.id}_{kind}.jsonl", purpose="batch_output")
            await self._io(self._store.put_file, job.tenant_id, created, data, expires_at)
        ran_out = any(line["record"].get("error") == EXPIRED_ERROR for line in kept.values())
        final = "expired" if ran_out else "completed"
        moved = await self._io(self._store.move, job.tenant_id, job.id, final,
                               when=("in_progress", "finalizing"), at=now, extra=ids)
        if not moved:
            await self._io(self._store.move, job.tenant_id, job.id, "cancelled", when=("cancelling",), at=now,
                           extra=ids)
        log.info("batch finished", extra={"batch": job.id, "tenant": job.tenant_id})

    async def _bill(self, batch_id: str, kept: dict[int, dict], keep_until: int) -> None:
        """Write the ledger records of ``kept`` lines (index -> record), then mark them billed: a
        worker that dies in between leaves them to be billed again, which overwrites the same records."""
        entries = [LedgerEntry(**record["entry"]) for record in kept.values() if record.get("entry")]
        if entries:
            await self._io(self._ledger.put_each, entries)
        await self._io(self._store.mark_many_billed, batch_id, kept, keep_until)

    async def _run_line(self, job: BatchJob, index: int, line) -> dict:
        """The line's answer, as kept: status, body and the ledger entry it is billed with."""
        request_id = line_request_id(job.id, index + 1)
        tenant = Tenant(job.tenant_id, job.plan, self._config.plan_for(job.plan, job.tenant_id), job.key_id)
        app, ctx = self._app, None
        try:
            body = orjson.dumps(line.body)
            if line.url == "/v1/chat/completions":
                chat: ChatRequest = app._parse(ChatRequest, body)
                if chat.stream:
                    raise RequestError("a batch line cannot stream: leave stream unset", param="stream")
                ctx = await app._chat_context(chat, tenant, {}, request_id)
                ctx.state[DEADLINE] = job.expires_at
                completion = await self._pipeline.chat(ctx)
                answer = orjson.loads(completion_json(request_id, chat.model, completion))
            else:
                embedding: EmbeddingRequest = app._parse(EmbeddingRequest, body)
                ctx = app._embedding_context(embedding, tenant, {}, request_id)
                ctx.state[DEADLINE] = job.expires_at
                result = await self._pipeline.embed(ctx)
                answer = orjson.loads(embeddings_json(embedding.model, result, embedding.encoding_format))
            status = 200
        except TierupError as exc:
            if refused_for_now(exc):
                raise RetryLater(exc.message) from exc
            status, answer = exc.status, exc.to_openai()
        entry = asdict(entry_from(ctx)) if isinstance(ctx, RequestContext) and ctx.tier is not None else None
        return {"custom_id": line.custom_id, "request_id": request_id, "status_code": status, "body": answer,
                "entry": entry}


class _GroupBilling:
    """The lines a chunk kept, billed ``GROUP`` at a time (and the rest when the chunk ends): two
    ``BatchWriteItem`` calls a group instead of two writes a line. A line kept but not yet billed
    when its worker dies is billed on the next delivery, as one whose single write was lost."""

    GROUP = 25

    def __init__(self, worker: BatchWorker, batch_id: str, keep_until: int) -> None:
        self._worker, self._batch_id, self._keep_until = worker, batch_id, keep_until
        self._pending: dict[int, dict] = {}
        self._lock = asyncio.Lock()

    async def add(self, index: int, record: dict) -> None:
        self._pending[index] = record
        if len(self._pending) >= self.GROUP:
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            group, self._pending = self._pending, {}
            if group:
                await self._worker._bill(self._batch_id, group, self._keep_until)


class _ChunkLease:
    """A worker's lease on the chunk it runs, renewed while it runs (a hand-over to Bedrock leaves a
    leased chunk's lines to its worker); a worker that dies leaves it to run out, so its lines go to
    the next hand-over or the next delivery, never nowhere."""

    def __init__(self, store, tenant_id: str, batch_id: str, chunk: int, lease_s: float) -> None:
        self._store, self._key, self._lease_s = store, (tenant_id, batch_id, chunk), lease_s
        self._renewing: asyncio.Task | None = None

    async def take(self) -> bool:
        if not await asyncio.to_thread(self._store.take_lease, *self._key, time.time() + self._lease_s):
            return False
        self._renewing = asyncio.create_task(self._renew())
        return True

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._lease_s / 3)
            try:
                now = time.time()
                await asyncio.to_thread(self._store.renew_lease, *self._key, now, now + self._lease_s)
            except TierupError:
                log.warning("chunk lease not renewed; trying again", extra={"batch": self._key[1]})

    async def end(self) -> None:
        if self._renewing is not None:
            self._renewing.cancel()
        try:
            await asyncio.to_thread(self._store.end_lease, *self._key)
        except TierupError:
            pass  # it runs out by itself


class _CancelWatch:
    """Whether the batch was cancelled, or handed to a Bedrock job by another worker meanwhile (its
    lines must then not run here too), read again at most every ``STATUS_RECHECK_S``. Lines ask at
    once: the one that reads holds the others (they would otherwise see "not cancelled" while the
    read is in flight, and run)."""

    def __init__(self, store, tenant_id: str, batch_id: str, chunk: int) -> None:
        self._store, self._tenant_id, self._batch_id, self._chunk = store, tenant_id, batch_id, chunk
        self._checked = None
        self._cancelled = False
        self.handed = False
        self._lock = asyncio.Lock()

    async def cancelled(self) -> bool:
        async with self._lock:
            if not self._cancelled and (self._checked is None
                                        or time.monotonic() - self._checked > STATUS_RECHECK_S):
                job = await asyncio.to_thread(self._store.job, self._tenant_id, self._batch_id)
                self._checked = time.monotonic()
                state = (job.bedrock or {}) if job is not None else {}
                # a chunk leased when the hand-over began is not in the job: its lines run here
                self.handed = (state.get("state") == "submitted"
                               and self._chunk not in state.get("left_chunks", ()))
                self._cancelled = job is None or job.status in ("cancelling", "cancelled") or self.handed
        return self._cancelled
