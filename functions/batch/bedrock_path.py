"""A batch's lines as one Bedrock batch inference job: handed over by the worker, followed by the poller.

Hand-over (``hand_over``, called by the worker before it runs a chunk): when every line of a chat
batch names one route whose serverless model has a batch price, at least ``[batch]
bedrock-min-records`` of its lines are waiting and ``core.batch_bedrock.bedrock_due`` says so,
each waiting line passes the kill switches, quotas and spend caps, as an interactive request
would, and is counted at once at its estimate (prompt tokens plus ``max_tokens``, priced
on-demand): the job's answers arrive hours later, in another process, so nothing can stay
reserved in this one. One line refused for now (a kill switch, an exhausted quota or budget)
refuses the whole job: nothing is submitted, the spend caps get back what the lines before it
counted, and the chunk is held, as the worker holds chunks. Then the records go to S3 and
``CreateModelInvocationJob`` starts the job (the batch id is its idempotency token).

Which lines are the job's: the hand-over first records itself on the batch item (``handing``, a
conditional write: one hand-over per batch), which stops workers from leasing chunks, and reads in
that same write the chunk leases still live. Lines kept by then, and the lines of the leased
chunks, are left out: their workers run them, and no line is answered both by a worker and by the
job (Bedrock bills every record it answers). Before ``CreateModelInvocationJob`` the state becomes
``submitting`` (with the chunks left out), then ``submitted`` with the job's ARN. A hand-over that
dies is taken over once its state is older than ``visibility-timeout-s``: from ``handing`` (no job
can exist) the fence is lifted and the hand-over starts again; from ``submitting`` the same records
are submitted again under the same token. A worker's lease that was not renewed (its worker died)
has run out and keeps no line from the job; a chunk left out runs once the job is read back (the
poller queues every chunk again). Bedrock refusing the job outright leaves the lines to the worker.

When the job's output is read, the spend caps and the quota counters still in their window are
settled from the estimate to the job's actual tokens and cost at the batch price, once per job (a
mark first: a poller that dies there leaves the estimate counted, too much rather than too little).

Following (``poll``, by the poller every minute): ``GetModelInvocationJob``; when it finished,
each record's answer is kept with the same conditional write as the worker's and billed once, at
the model's batch price, into the ledger (a poller that dies or runs twice skips what is kept and
bills what is kept but not billed). Lines the job did not answer (a failed, stopped or expired
job, a record Bedrock dropped) go back to the queue and run on the route's other tiers, or end in
the error file as ``batch_expired`` if the window is over. A job still running at the deadline
margin, or whose batch was cancelled, is stopped (``StopModelInvocationJob``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict

import orjson
from botocore.exceptions import ClientError

from ..core.batch import WINDOW_S, BatchJob, chunk_ranges, line_request_id, parse_batch_file
from ..core.batch_bedrock import bedrock_due
from ..core.chat import ChatRequest, Completion, Usage
from ..core.context import Tenant
from ..core.ports import Target
from ..core.errors import TierupError
from ..core.pricing import batch_token_cost_usd, token_cost_usd
from ..core.usage_ledger import LedgerEntry
from ..gateway.openai_format import completion_json
from ..guardrails.spend_cap_guard import prompt_tokens_of
from .routing import DEADLINE

log = logging.getLogger("tierup.batch")


#: Bedrock's answers to CreateModelInvocationJob that mean "not now" (the job is tried again later)
RETRY_LATER_CODES = frozenset({"ThrottlingException", "ServiceUnavailableException", "InternalServerException",
                               "ServiceQuotaExceededException"})


class HeldForNow(Exception):
    """A guard refused the job for now (kill switch, quota, budget): nothing was submitted."""


class BedrockBatchPath:
    def __init__(self, *, jobs, store, ledger, app, pipeline, router, config, guards=(), spend_caps=None,
                 quotas=None, clock=time.time) -> None:
        """``jobs``: ``BedrockBatchJobs``; ``router``: the gateway's router (``reserved_load``);
        ``guards``: kill switches, quotas and spend caps, in the gateway's order (not admission:
        nothing is in flight here); ``spend_caps``: the gateway's ``SpendCapGuard``, or None."""
        self._guards = list(guards)
        self._spend_caps = spend_caps
        #: the gateway's ``QuotaGuard``, or None: its counters are settled to the job's actual use too
        self._quotas = quotas
        self._jobs = jobs
        self._store = store
        self.store = store
        self._ledger = ledger
        self._app = app
        self._pipeline = pipeline
        self._router = router
        self._config = config
        self._clock = clock

    async def _io(self, function, *args, **kwargs):
        return await asyncio.to_thread(function, *args, **kwargs)

    # -- hand-over -------------------------------------------------------------------------

    async def hand_over(self, job: BatchJob, data: bytes) -> bool:
        """Whether the batch's lines now belong to a Bedrock job (the worker then leaves them);
        ``HeldForNow`` when a guard refused it for now, or another hand-over is under way."""
        state = job.bedrock or {}
        if state.get("state") == "submitted":
            return True
        if state.get("state") in ("handing", "submitting"):
            if self._clock() - float(state["at"]) < self._config.batch.visibility_timeout_s:
                raise HeldForNow("the batch is being handed to a Bedrock job")
            if state["state"] == "submitting":  # its job may exist: submit the same records again
                return await self._resubmit(job, data, state)
            if not await self._io(self._store.unfence, job.tenant_id, job.id, state):
                raise HeldForNow("the batch is being handed to a Bedrock job")
            state = {}  # a hand-over that died before submitting: start again
        if state or job.endpoint != "/v1/chat/completions":
            return False  # a job already failed or was stopped: the worker runs what is left
        lines = parse_batch_file(data, max_lines=job.total)
        if self._eligible(job, lines, len(lines)) is None:  # cheap: no store call while it is not due
            return False
        kept = await self._io(self._store.lines, job.id)
        if self._eligible(job, lines, len(lines) - len(kept)) is None:
            return False
        handing = {"state": "handing", "at": int(self._clock())}
        leases = await self._io(self._store.fence, job.tenant_id, job.id, handing)
        if leases is None:
            raise HeldForNow("the batch is being handed to a Bedrock job")
        # the fence stops new chunk leases: the lines not kept now and not in a chunk leased now
        # are the job's alone (no worker can start them), so none is answered twice
        try:
            left = sorted(chunk for chunk, until in leases.items() if until > self._clock())
            submitting = await self._prepare(job, lines, handing, left)
        except BaseException:
            await self._io(self._store.unfence, job.tenant_id, job.id, handing)
            raise
        if submitting is None:
            await self._io(self._store.unfence, job.tenant_id, job.id, handing)
            return False
        return await self._submit(job, lines, submitting)

    def _records_of(self, job: BatchJob, lines, kept: dict, left: list[int]):
        chunk_lines = self._config.batch.chunk_lines
        return [(index, line) for index, line in enumerate(lines)
                if index not in kept and index // chunk_lines not in left]

    async def _contexts(self, job: BatchJob, waiting) -> list | None:
        """Each waiting line's request context, or ``None`` if one cannot go to a job (the worker
        then answers it with its error)."""
        tenant = Tenant(job.tenant_id, job.plan, self._config.plan_for(job.plan, job.tenant_id), job.key_id)
        contexts = []
        try:
            for index, line in waiting:
                chat = self._app._parse(ChatRequest, orjson.dumps(line.body))
                if chat.stream:
                    return None
                ctx = await self._app._chat_context(chat, tenant, {}, line_request_id(job.id, index + 1))
                ctx.state[DEADLINE] = job.expires_at
                contexts.append((index, ctx))
        except TierupError:
            return None
        return contexts

    async def _prepare(self, job: BatchJob, lines, handing: dict, left: list[int]) -> dict | None:
        """Count the job's lines against the guards and record that it is being submitted: the
        state to submit with, or ``None`` for no job (``HeldForNow`` for a job refused for now)."""
        kept = await self._io(self._store.lines, job.id)  # read again: answers kept before the fence
        waiting = self._records_of(job, lines, kept, left)
        plan = self._eligible(job, lines, len(waiting))
        if plan is None:
            return None
        route_name, model = plan
        contexts = await self._contexts(job, waiting)
        if contexts is None:
            return None
        counted_usd = 0.0
        counted_tokens = 0
        for _, ctx in contexts:
            try:
                counted_usd += await self._count(ctx, model)
                counted_tokens += ctx.usage.prompt_tokens + ctx.usage.completion_tokens
            except TierupError as exc:
                await self._give_back(route_name, job.tenant_id, counted_usd)
                from .worker import refused_for_now

                if refused_for_now(exc):
                    raise HeldForNow(exc.message) from exc
                return None
        submitting = {"state": "submitting", "at": handing["at"], "model": model, "route": route_name,
                      "left_chunks": left, "estimate_usd": counted_usd,
                      "estimate_tokens": counted_tokens}
        if await self._io(self._store.fence, job.tenant_id, job.id, submitting, replacing=handing) is None:
            await self._give_back(route_name, job.tenant_id, counted_usd)
            raise HeldForNow("another worker took the hand-over over")
        return submitting

    async def _resubmit(self, job: BatchJob, data: bytes, state: dict) -> bool:
        """A hand-over that died while submitting: the same records again, under the same
        idempotency token (its lines were counted when it began)."""
        replaced = {**state, "at": int(self._clock())}
        if await self._io(self._store.fence, job.tenant_id, job.id, replaced, replacing=state) is None:
            raise HeldForNow("another worker took the hand-over over")
        return await self._submit(job, parse_batch_file(data, max_lines=job.total), replaced)

    async def _submit(self, job: BatchJob, lines, submitting: dict) -> bool:
        route_name, model = submitting["route"], submitting["model"]
        counted_usd = submitting["estimate_usd"]
        kept = await self._io(self._store.lines, job.id)
        contexts = await self._contexts(job, self._records_of(job, lines, kept, submitting["left_chunks"])) or []
        target = Target("serverless", None, model)
        calls = [(index, self._pipeline._call(ctx, target)) for index, ctx in contexts]
        try:
            arn = await self._io(self._jobs.submit, job.id, model, calls)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in RETRY_LATER_CODES:
                await self._give_back(route_name, job.tenant_id, counted_usd)
                await self._io(self._store.unfence, job.tenant_id, job.id, submitting)
                raise HeldForNow(f"Bedrock refused the batch job for now ({code})") from exc
            log.warning("Bedrock refused the batch job (%s): the worker runs its lines", code,
                        extra={"batch": job.id})
            await self._give_back(route_name, job.tenant_id, counted_usd)
            await self._io(self._store.set_bedrock, job.tenant_id, job.id, {"state": "refused", "error": code},
                           replace=True)
            return False
        if arn is None:  # fewer records than Bedrock takes: no job
            await self._give_back(route_name, job.tenant_id, counted_usd)
            await self._io(self._store.unfence, job.tenant_id, job.id, submitting)
            return False
        await self._io(self._store.set_bedrock, job.tenant_id, job.id,
                       {**submitting, "state": "submitted", "arn": arn}, replace=True)
        log.info("batch handed to a Bedrock job", extra={"batch": job.id, "job": arn})
        return True

    async def _count(self, ctx, model: str) -> float:
        """Pass one line through the guards and count it at its estimate at once (prompt tokens
        plus ``max_tokens``, priced on-demand, as an interactive request reserves): its answer
        comes hours later, in another process. The USD the spend caps counted."""
        admitted = []
        try:
            for guard in self._guards:
                await guard.admit(ctx)
                admitted.append(guard)
        finally:
            if len(admitted) == len(self._guards):
                ctx.tier, ctx.model = "serverless", model
                ctx.usage = Usage(prompt_tokens=prompt_tokens_of(ctx),
                                  completion_tokens=ctx.max_tokens, estimated=True)
            for guard in reversed(admitted):
                await guard.release(ctx)
        return token_cost_usd(self._config.pricing, "serverless", model, ctx.usage)

    async def _give_back(self, route: str, tenant_id: str, counted_usd: float) -> None:
        """No job after all: the spend caps get back what the lines counted so far (quota
        counters keep it: too much, never too little)."""
        if counted_usd and self._spend_caps is not None:
            await self._spend_caps.settle_later(route, tenant_id, self._clock(), counted_usd)

    def _eligible(self, job: BatchJob, lines, waiting: int) -> tuple[str, str] | None:
        names = {line.body.get("model") for line in lines}
        if len(names) != 1:
            return None
        route_name = names.pop()
        route = self._config.routes.get(route_name) if isinstance(route_name, str) else None
        if route is None or route.kind != "chat" or not route.serverless:
            return None
        has_price = batch_token_cost_usd(self._config.pricing, route.serverless, Usage()) is not None
        promoted = getattr(self._router, "reserved_load", lambda _: None)(route_name) is not None
        due = bedrock_due(has_batch_price=has_price, lines=waiting, min_records=self._jobs.min_records,
                          promoted=promoted, now=self._clock(), created_at=job.created_at,
                          window_s=WINDOW_S[job.completion_window],
                          deadline_margin_s=self._config.batch.deadline_margin_s)
        return (route_name, route.serverless) if due else None

    # -- following -------------------------------------------------------------------------

    async def poll(self, job: BatchJob) -> str:
        """Follow one batch's job once: ``running``, ``answered`` or ``fallback``."""
        state = job.bedrock or {}
        if state.get("state") != "submitted":
            return state.get("state", "none")
        arn = state["arn"]
        now = self._clock()
        margin_passed = now >= job.expires_at - self._config.batch.deadline_margin_s
        if job.status in ("cancelling", "cancelled") or margin_passed:
            await self._io(self._jobs.stop, arn)
        status = await self._io(self._jobs.status, arn)
        if not status.finished:
            return "running"  # or stopping: its partial output is read once it has stopped
        actual_usd, actual_tokens = 0.0, 0
        if status.status in ("Completed", "PartiallyCompleted", "Stopped"):
            actual_usd, actual_tokens = await self._keep_answers(job, state)
        await self._settle(job, state, actual_usd, actual_tokens)
        await self._io(self._store.set_bedrock, job.tenant_id, job.id,
                       {**state, "state": "done", "job_status": status.status}, replace=True)
        # every line not answered by the job, and the batch's end, go through the worker's queue
        ranges = chunk_ranges(job.total, self._config.batch.chunk_lines)
        await self._io(self._store.enqueue, [{"tenant": job.tenant_id, "batch": job.id, "chunk": chunk,
                                              "first": first, "last": last}
                                             for chunk, (first, last) in enumerate(ranges)])
        return "answered" if status.status == "Completed" else "fallback"

    async def _keep_answers(self, job: BatchJob, state: dict) -> tuple[float, int]:
        """Keep and bill the job's answers: what it cost, and the tokens it used."""
        data = await self._io(self._store.file_content, job.tenant_id, job.input_file_id)
        lines = parse_batch_file(data, max_lines=job.total)
        tenant = Tenant(job.tenant_id, job.plan, self._config.plan_for(job.plan, job.tenant_id), job.key_id)
        contexts = {}
        kept = await self._io(self._store.lines, job.id)
        for index, line in enumerate(lines):
            if index in kept and kept[index]["billed"]:
                continue
            chat = self._app._parse(ChatRequest, orjson.dumps(line.body))
            contexts[index] = (line, chat, await self._app._chat_context(chat, tenant, {},
                                                                         line_request_id(job.id, index + 1)))
        target = Target("serverless", None, state["model"])
        calls = {index: self._pipeline._call(ctx, target) for index, (_, _, ctx) in contexts.items()}
        try:
            answers = await self._io(self._jobs.results, job.id, state["arn"], calls)
        except self._jobs.missing_output:
            answers = {}  # a job that failed or stopped early wrote nothing: every line runs elsewhere
        keep_until = job.created_at + self._config.batch.keep_days * 86400
        actual_usd, actual_tokens = 0.0, 0
        for index, answer in answers.items():
            line, chat, _ = contexts[index]
            if isinstance(answer, Completion):
                actual_usd += batch_token_cost_usd(self._config.pricing, state["model"], answer.usage) or 0.0
                actual_tokens += answer.usage.prompt_tokens + answer.usage.completion_tokens
            if index in kept:
                if not kept[index]["billed"]:
                    await self._bill(job.id, index, kept[index]["record"])
                continue
            record = self._record(job, index, line.custom_id, chat, state, answer)
            if await self._io(self._store.put_line, job.id, index, record, keep_until):
                await self._bill(job.id, index, record)
        return actual_usd, actual_tokens

    async def _settle(self, job: BatchJob, state: dict, actual_usd: float, actual_tokens: int) -> None:
        """Give the spend caps and quota counters back what the job's estimate held beyond its
        actual use (lines it did not answer run elsewhere, under their own reservations). Once per
        job: the mark is written first, so a poller that dies before settling leaves the estimate
        counted (too much, never too little)."""
        unused_usd = float(state.get("estimate_usd", 0.0)) - actual_usd
        unused_tokens = float(state.get("estimate_tokens", 0)) - actual_tokens
        if self._spend_caps is None and self._quotas is None:
            return
        if not await self._io(self._store.mark_once, f"batchsettled#{job.id}"):
            return
        at = float(state["at"])
        if self._spend_caps is not None and unused_usd:
            await self._spend_caps.settle_later(state["route"], job.tenant_id, at, unused_usd)
        if self._quotas is not None and "estimate_tokens" in state:
            plan = self._config.plan_for(job.plan, job.tenant_id)
            # the quota's monthly budget counted the estimate at on-demand prices, as spend caps do
            await self._quotas.settle_later(plan, job.tenant_id, at, unused_tokens, unused_usd)

    def _record(self, job: BatchJob, index: int, custom_id: str, chat: ChatRequest, state: dict, answer) -> dict:
        request_id = line_request_id(job.id, index + 1)
        if not isinstance(answer, Completion):
            body = {"error": {"message": answer.message, "type": "invalid_request_error"
                              if answer.status_code < 500 else "api_error", "param": None, "code": "bedrock_batch"}}
            return {"custom_id": custom_id, "request_id": request_id, "status_code": answer.status_code,
                    "body": body, "entry": None}
        cost = batch_token_cost_usd(self._config.pricing, state["model"], answer.usage) or 0.0
        entry = LedgerEntry(request_id=request_id, at=float(state["at"]), tenant_id=job.tenant_id, route=state["route"],
                            tier="serverless", outcome="ok", status=200, error_code=None, cache_status="miss",
                            prompt_tokens=answer.usage.prompt_tokens, completion_tokens=answer.usage.completion_tokens,
                            cached_tokens=0, cost_usd=cost, latency_ms=0.0)
        body = orjson.loads(completion_json(request_id, chat.model, answer))
        return {"custom_id": custom_id, "request_id": request_id, "status_code": 200, "body": body,
                "entry": asdict(entry)}

    async def _bill(self, batch_id: str, index: int, record: dict) -> None:
        if record.get("entry"):
            await self._io(self._ledger.put_many, [LedgerEntry(**record["entry"])])
        await self._io(self._store.mark_billed, batch_id, index)
