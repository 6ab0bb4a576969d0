"""The request path after parsing and authentication: guards, cache, routing, provider, settle.

    admit guards in order  ->  cache lookup  ->  targets in order (fallback on provider error)
    ->  settle: guards released in reverse order, usage recorded once

Every admitted request releases every guard exactly once, whatever happens (provider error,
client gone mid-stream, cancellation). Every request, admitted or refused, is recorded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from ..core.chat import Completion, Embeddings, ProviderCall, StreamAssembler, StreamDelta, ToolCallDelta, Usage
from ..core.chat_params import honouring_targets, passthrough_params
from ..core.context import RequestContext
from ..core.errors import NotFoundError, ProviderError, TierupError
from ..core.ports import Guard, ResponseCache, Router, Target, UsageRecorder
from ..core.structured_output import check_completion, needs_check

CostFn = Callable[[str | None, Usage], float]
T = TypeVar("T")


class Pipeline:
    def __init__(self, *, guards: list[Guard], router: Router, recorders: list[UsageRecorder],
                 cost: CostFn, cache: ResponseCache | None = None) -> None:
        self._guards = guards
        self._router = router
        self._recorders = recorders
        self._cost = cost
        self._cache = cache

    # -- shared steps ---------------------------------------------------------------------

    async def _admit(self, ctx: RequestContext) -> list[Guard]:
        admitted: list[Guard] = []
        try:
            for guard in self._guards:
                await guard.admit(ctx)
                admitted.append(guard)
        except BaseException:
            await self._release(ctx, admitted)
            raise
        return admitted

    async def _release(self, ctx: RequestContext, admitted: list[Guard]) -> None:
        for guard in reversed(admitted):
            try:
                await guard.release(ctx)
            except Exception:  # a failing release must not hide the answer or skip the others
                ctx.state.setdefault("release_errors", []).append(guard.name)

    def _finish(self, ctx: RequestContext, error: BaseException | None) -> None:
        if error is not None:
            if isinstance(error, TierupError):
                ctx.status = error.status
                ctx.error_code = error.code
                ctx.outcome = "refused" if ctx.tier is None and ctx.cache_status == "miss" else "error"
            else:
                ctx.status = 499
                ctx.outcome = "client_closed"
        if ctx.usage is not None:
            ctx.cost_usd = 0.0 if ctx.cache_status.startswith("hit") else self._cost(ctx.model, ctx.usage)
        for recorder in self._recorders:
            recorder.record(ctx)

    def _targets(self, ctx: RequestContext) -> list[Target]:
        targets = self._router.targets(ctx)
        if not targets:
            raise NotFoundError(f"route {ctx.route_name!r} has no tier that can serve it now",
                                code="route_unavailable")
        if ctx.chat is not None:  # tools, response_format, seed, ...: only tiers that honour them
            targets = honouring_targets(ctx.chat, ctx.route_name, targets)
        return targets

    def _call(self, ctx: RequestContext, target: Target) -> ProviderCall:
        chat = ctx.chat
        assert chat is not None
        return ProviderCall(model=target.model, messages=chat.messages, max_tokens=ctx.max_tokens,
                            temperature=chat.temperature, top_p=chat.top_p, stop=chat.stop_sequences,
                            tools=chat.tools, tool_choice=chat.tool_choice,
                            parallel_tool_calls=chat.parallel_tool_calls, response_format=chat.response_format,
                            passthrough=passthrough_params(chat))

    @staticmethod
    def _check_answer(ctx: RequestContext, completion: Completion) -> None:
        """A structured-output answer that is not what was asked for is an error, never a 200."""
        chat = ctx.chat
        if chat is not None and needs_check(chat.response_format, chat.tools):
            check_completion(chat.response_format, chat.tools, completion)

    def _serve_from(self, ctx: RequestContext, target: Target) -> None:
        ctx.tier = target.tier
        ctx.model = target.model
        ctx.state["simulated"] = getattr(target.provider, "simulated", False)
        ctx.response_headers["x-tierup-tier"] = target.tier

    # -- chat -----------------------------------------------------------------------------

    async def chat(self, ctx: RequestContext) -> Completion:
        error: BaseException | None = None
        admitted: list[Guard] = []
        try:
            admitted = await self._admit(ctx)
            completion = await self._cached(ctx)
            if completion is None:
                completion = await self._complete(ctx)
                if self._cache is not None:
                    await self._cache.store(ctx, completion)
            ctx.usage = completion.usage
            return completion
        except BaseException as exc:
            error = exc
            raise
        finally:
            await self._release(ctx, admitted)
            self._finish(ctx, error)

    async def _cached(self, ctx: RequestContext) -> Completion | None:
        if self._cache is None:
            return None
        return await self._cache.lookup(ctx)

    async def _first_success(self, ctx: RequestContext, attempt: Callable[[Target], Awaitable[T]]) -> T:
        """``attempt`` on each target in turn until one answers; a provider error that another
        tier could fix moves on to the next target, any other is raised at once."""
        last: ProviderError | None = None
        for target in self._targets(ctx):
            self._serve_from(ctx, target)
            try:
                result = await attempt(target)
            except ProviderError as exc:
                self._router.report(target, ok=not exc.retryable)  # a rejected request is no outage
                if not exc.retryable:
                    raise
                last = exc
                continue
            self._router.report(target, ok=True)
            return result
        assert last is not None
        raise last

    async def _complete(self, ctx: RequestContext) -> Completion:
        completion = await self._first_success(ctx, lambda target: target.provider.complete(self._call(ctx, target)))
        ctx.usage = completion.usage  # billed even when the answer is refused below
        self._check_answer(ctx, completion)
        return completion

    async def chat_stream(self, ctx: RequestContext) -> AsyncIterator[StreamDelta]:
        """Admit first (errors surface before any byte is sent), then yield the answer's pieces."""
        admitted = await self._admit_or_finish(ctx)
        return self._stream_admitted(ctx, admitted)

    async def _admit_or_finish(self, ctx: RequestContext) -> list[Guard]:
        try:
            return await self._admit(ctx)
        except BaseException as exc:
            self._finish(ctx, exc)
            raise

    async def _stream_admitted(self, ctx: RequestContext, admitted: list[Guard]) -> AsyncIterator[StreamDelta]:
        error: BaseException | None = None
        pieces: list[str] = []
        try:
            cached = await self._cached(ctx)
            if cached is not None:
                ctx.usage = cached.usage
                yield StreamDelta(text=cached.text, tool_calls=[
                    ToolCallDelta(index, call.id, call.name, call.arguments)
                    for index, call in enumerate(cached.tool_calls)] or None)
                yield StreamDelta(finish_reason=cached.finish_reason, usage=cached.usage)
                return
            assembled = StreamAssembler()
            async for delta in self._stream_with_fallback(ctx):
                assembled.add(delta)
                if delta.text:
                    pieces.append(delta.text)
                if delta.usage is not None:
                    ctx.usage = delta.usage
                    if delta.finish_reason is not None:
                        answer = assembled.completion(delta.finish_reason, delta.usage, ctx.model or "",
                                                      simulated=bool(ctx.state.get("simulated")))
                        self._check_answer(ctx, answer)  # before the stream is labelled finished
                        if self._cache is not None:
                            await self._cache.store(ctx, answer)
                yield delta
        except BaseException as exc:
            error = exc
            if ctx.usage is None and ctx.tier is not None:
                # The answer was cut short: count what was produced so nothing goes unbilled.
                from ..core.tokens import count_chat_tokens, count_tokens
                assert ctx.chat is not None
                ctx.usage = Usage(prompt_tokens=count_chat_tokens(m.text for m in ctx.chat.messages),
                                  completion_tokens=count_tokens("".join(pieces)))
            raise
        finally:
            await self._release(ctx, admitted)
            self._finish(ctx, error)

    async def _stream_with_fallback(self, ctx: RequestContext) -> AsyncIterator[StreamDelta]:
        last: ProviderError | None = None
        for target in self._targets(ctx):
            self._serve_from(ctx, target)
            started = False
            try:
                async for delta in target.provider.stream(self._call(ctx, target)):
                    started = True
                    yield delta
            except ProviderError as exc:
                self._router.report(target, ok=not exc.retryable)  # a rejected request is no outage
                if started or not exc.retryable:
                    raise
                last = exc
                continue
            self._router.report(target, ok=True)
            return
        assert last is not None
        raise last

    # -- embeddings -----------------------------------------------------------------------

    async def embed(self, ctx: RequestContext) -> Embeddings:
        error: BaseException | None = None
        admitted: list[Guard] = []
        try:
            admitted = await self._admit(ctx)
            request = ctx.embedding
            assert request is not None
            result = await self._first_success(ctx, lambda target: target.provider.embed(
                target.model, request.inputs, request.dimensions))
            ctx.usage = result.usage
            return result
        except BaseException as exc:
            error = exc
            raise
        finally:
            await self._release(ctx, admitted)
            self._finish(ctx, error)
