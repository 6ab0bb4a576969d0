"""The request path after parsing and authentication: guards, cache, routing, provider, settle.

    admit guards in order  ->  cache lookup  ->  targets in order (fallback on provider error)
    ->  settle: guards released in reverse order, usage recorded once

Every admitted request releases every guard exactly once, whatever happens (provider error,
client gone mid-stream, cancellation). Every request, admitted or refused, is recorded.

``provider_timeout_s`` bounds the whole provider phase of a request, fallbacks included, from
the first call to the last byte of the answer, for every provider: past it the call is stopped
and the request fails with ``ProviderTimeoutError`` (504, or an error event mid-stream).

A call that failed after the model may have started generating is never repeated on another
tier, and is billed for what can be proved: the prompt and the text relayed, counted with the
tokenizer and marked as estimated. Only an answer that ended normally is cached.

What serving the request cost the gateway itself (``gateway_cost``: Lambda time, DynamoDB units,
log bytes so far) is settled once, before the guards release, so the spend caps can count it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import TypeVar

from ..core.chat import Completion, Embeddings, ProviderCall, StreamAssembler, StreamDelta, ToolCallDelta, Usage
from ..core.chat_params import honouring_targets, passthrough_params
from ..core.context import RequestContext
from ..core.errors import NotFoundError, ProviderError, ProviderTimeoutError, TierupError
from ..core.gateway_cost import GatewayUnits
from ..core.gateway_meter import provider_called, provider_finished
from ..core.ports import Guard, ResponseCache, Router, Target, UsageRecorder
from .deadline import ProviderDeadline
from ..core.structured_output import check_completion, needs_check

#: USD for (tier, configured model id, usage); raises ``UnpricedModelError`` for an unpriced model
CostFn = Callable[[str | None, str | None, Usage], float]
#: the current request's gateway units so far and their USD (``GatewayMeter.settle``), once
GatewayCostFn = Callable[[], tuple[GatewayUnits, float]]
T = TypeVar("T")


class Pipeline:
    def __init__(self, *, guards: list[Guard], router: Router, recorders: list[UsageRecorder],
                 cost: CostFn, cache: ResponseCache | None = None,
                 provider_timeout_s: float | None = None, gateway_cost: GatewayCostFn | None = None) -> None:
        self._guards = guards
        self._gateway_cost = gateway_cost
        self._router = router
        self._recorders = recorders
        self._cost = cost
        self._cache = cache
        self._provider_timeout_s = provider_timeout_s

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

    def _settle_gateway_cost(self, ctx: RequestContext) -> None:
        """What serving the request cost the gateway so far, before the spend caps settle."""
        if self._gateway_cost is not None and ctx.gateway_units is None:
            ctx.gateway_units, ctx.gateway_cost_usd = self._gateway_cost()

    async def _release(self, ctx: RequestContext, admitted: list[Guard]) -> None:
        self._settle_gateway_cost(ctx)
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
        self._settle_gateway_cost(ctx)
        if ctx.usage is not None:
            ctx.cost_usd = 0.0 if ctx.cache_status.startswith("hit") else self._cost(ctx.tier, ctx.model, ctx.usage)
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
                            passthrough=passthrough_params(chat), prompt_cache=ctx.route.prompt_caching)

    @staticmethod
    def _check_answer(ctx: RequestContext, completion: Completion) -> None:
        """A structured-output answer that is not what was asked for is an error, never a 200."""
        chat = ctx.chat
        if chat is not None and needs_check(chat.response_format, chat.tools):
            check_completion(chat.response_format, chat.tools, completion)

    def _bill_failed_call(self, ctx: RequestContext, error: BaseException, relayed: str = "") -> None:
        """After a failure, bill what the provider may have used: the prompt and ``relayed``."""
        if ctx.usage is not None or ctx.tier is None or not _may_have_generated(error):
            return
        from ..core.tokens import count_tokens, estimated_usage

        if ctx.embedding is not None:
            ctx.usage = Usage(prompt_tokens=sum(count_tokens(text) for text in ctx.embedding.inputs), estimated=True)
        elif ctx.chat is not None:
            ctx.usage = estimated_usage(ctx.chat.messages, relayed, ctx.chat.tools, ctx.chat.response_format)

    def _timeout_error(self) -> ProviderTimeoutError:
        return ProviderTimeoutError(f"the provider did not finish within provider-timeout-s "
                                    f"({self._provider_timeout_s:g} s)", may_have_generated=True)

    async def _within_deadline(self, call: Awaitable[T]) -> T:
        """``call``, stopped with ``ProviderTimeoutError`` when it outlives provider-timeout-s."""
        if self._provider_timeout_s is None:
            return await call
        deadline = ProviderDeadline(self._provider_timeout_s, self._timeout_error)
        try:
            return await deadline.wait(call)
        finally:
            deadline.close()

    async def _deltas_within_deadline(self, deltas: AsyncIterator[StreamDelta]) -> AsyncIterator[StreamDelta]:
        """``deltas`` until the deadline, which bounds the whole stream, not the gap between reads.
        Only the wait for the provider's next piece is under it: a piece being relayed to the
        client is never interrupted (a provider that finished in time is not failed late)."""
        async with aclosing(deltas):
            if self._provider_timeout_s is None:
                async for delta in deltas:
                    yield delta
                return
            deadline = ProviderDeadline(self._provider_timeout_s, self._timeout_error)
            try:
                while True:
                    try:
                        delta = await deadline.wait(anext(deltas))
                    except StopAsyncIteration:
                        return
                    yield delta
            finally:
                deadline.close()

    def _serve_from(self, ctx: RequestContext, target: Target) -> None:
        self._cost(target.tier, target.model, Usage())  # an unpriced model is refused before it is called
        ctx.tier = target.tier
        ctx.model = target.model
        ctx.state["simulated"] = getattr(target.provider, "simulated", False)
        ctx.response_headers["x-tierup-tier"] = target.tier
        provider_called()

    # -- chat -----------------------------------------------------------------------------

    async def chat(self, ctx: RequestContext) -> Completion:
        error: BaseException | None = None
        admitted: list[Guard] = []
        try:
            admitted = await self._admit(ctx)
            completion = await self._cached(ctx)
            if completion is None:
                completion = await self._within_deadline(self._complete(ctx))
                if self._cache is not None:
                    await self._cache.store(ctx, completion)
            ctx.usage = completion.usage
            return completion
        except BaseException as exc:
            error = exc
            self._bill_failed_call(ctx, exc)
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
                provider_finished()
            except ProviderError as exc:
                self._router.report(target, ok=not exc.retryable)  # a rejected request is no outage
                if not exc.retryable or exc.may_have_generated:  # another tier would bill again
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
        assembled = StreamAssembler()
        try:
            cached = await self._cached(ctx)
            if cached is not None:
                ctx.usage = cached.usage
                yield StreamDelta(text=cached.text, tool_calls=[
                    ToolCallDelta(index, call.id, call.name, call.arguments)
                    for index, call in enumerate(cached.tool_calls)] or None)
                yield StreamDelta(finish_reason=cached.finish_reason, usage=cached.usage)
                return
            final: Completion | None = None
            # closed on the way out, so that a client that leaves stops the provider call at once
            async with aclosing(self._deltas_within_deadline(self._stream_with_fallback(ctx))) as deltas:
                async for delta in deltas:
                    assembled.add(delta)
                    if delta.finish_reason is not None:
                        if delta.usage is None:  # the provider reported none: count it, never bill 0
                            from ..core.tokens import estimated_usage

                            assert ctx.chat is not None
                            delta.usage = estimated_usage(ctx.chat.messages, assembled.text, ctx.chat.tools,
                                                          ctx.chat.response_format)
                        ctx.usage = delta.usage
                        final = assembled.completion(delta.finish_reason, delta.usage, ctx.model or "",
                                                     simulated=bool(ctx.state.get("simulated")))
                        self._check_answer(ctx, final)  # before the stream is labelled finished
                    yield delta
            # Cached only once the provider's stream has ended normally: a stream that failed or
            # was cut short raised above, and its partial answer must never be served again.
            if final is not None and self._cache is not None:
                await self._cache.store(ctx, final)
        except BaseException as exc:
            error = exc
            # The answer was cut short: bill the prompt and what was relayed, so nothing goes unbilled.
            self._bill_failed_call(ctx, exc, assembled.text)
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
                async with aclosing(target.provider.stream(self._call(ctx, target))) as deltas:
                    async for delta in deltas:
                        started = True
                        if delta.finish_reason is not None:  # the last token: what follows is settling
                            provider_finished()
                        yield delta
            except ProviderError as exc:
                self._router.report(target, ok=not exc.retryable)  # a rejected request is no outage
                if started or not exc.retryable or exc.may_have_generated:  # another tier would bill again
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
            result = await self._within_deadline(self._first_success(ctx, lambda target: target.provider.embed(
                target.model, request.inputs, request.dimensions)))
            ctx.usage = result.usage
            return result
        except BaseException as exc:
            error = exc
            self._bill_failed_call(ctx, exc)
            raise
        finally:
            await self._release(ctx, admitted)
            self._finish(ctx, error)


def _may_have_generated(error: BaseException) -> bool:
    """Whether a failed call may still cost: a provider error says so itself; anything else that
    is no tierup error (the client went away, cancellation) struck while the call was running."""
    if isinstance(error, ProviderError):
        return error.may_have_generated
    return not isinstance(error, TierupError)
