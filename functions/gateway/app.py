"""The ASGI app: the OpenAI-compatible endpoints, from bytes in to bytes out.

Order of checks: body size (413), API key (401, before anything about the body is revealed),
JSON and schema (400), route (404), limits (400), then the pipeline (quota, cache, provider).
Every response carries ``x-request-id``; every error is OpenAI's error JSON; nothing the client
sends can produce a 500 or a stack trace. Hooks in ``before_response_completes`` run just before
a response's last message is sent (``SettleBeforeComplete``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial

import orjson
from pydantic import ValidationError

from ..core.chat import ChatRequest, EmbeddingRequest, StreamDelta
from ..core.chat_params import check_chat_request
from ..core.images import check_images
from ..core.config import RouteConfig, TierupConfig
from ..core.context import RequestContext, Tenant
from ..core.errors import MethodNotAllowedError, NotFoundError, RequestError, TierupError
from ..core.gateway_meter import GatewayMeter
from ..core.ports import ResponseStore
from ..core.quota.plan_fit import check_embedding_inputs
from ..core.tokens import count_tokens
from .auth import Authenticator
from .compression import CompressingSend
from .health import HealthCheck
from .http import header_map, new_request_id, read_body, send_chunk, send_json, start_stream
from .openai_format import ChunkWriter, completion_json, embeddings_json, models_json
from .pipeline import Pipeline
from .start_up_gc import collections_paused
from .validation import validation_message

log = logging.getLogger("tierup.gateway")

#: ``GET`` / ``DELETE /v1/responses/{id}``
RESPONSE_PATH_PREFIX = "/v1/responses/"
#: the Files and Batch APIs (``batch_endpoint``), served when batches are wired
BATCH_PATH_PREFIXES = ("/v1/files", "/v1/batches")
#: embeddings answers up to this many numbers are encoded on the event loop (well under 1 ms)
INLINE_EMBEDDING_VALUES = 16_384

Hook = Callable[[], Awaitable[None]]


class SettleBeforeComplete:
    """An ASGI ``send`` that runs the hooks just before a response's last message goes out.

    The last message is what completes the answer for the client (the end of a JSON body, a
    stream's ``[DONE]``) and the response for the host: once a client holds its answer, the host
    may freeze the process (Lambda does when the response ends), so what the request owes is
    written first. A stream's text has gone out before; only its end waits. ``completed`` tells
    a handler that returned early (the client went away) that the hooks have yet to run.
    """

    __slots__ = ("_send", "_hooks", "completed")

    def __init__(self, send, hooks: list[Hook]) -> None:
        self._send = send
        self._hooks = hooks
        self.completed = False

    async def run_hooks(self) -> None:
        for hook in self._hooks:
            await hook()

    async def __call__(self, message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            await self.run_hooks()
            self.completed = True
        await self._send(message)


async def _counting_egress(send, meter: GatewayMeter, message) -> None:
    """``send``, counting the response's bytes (status line and headers roughly, body exactly)
    toward the request's data transfer out."""
    if message["type"] == "http.response.body":
        meter.count_egress(len(message.get("body", b"")))
    elif message["type"] == "http.response.start":
        meter.count_egress(17 + sum(len(k) + len(v) + 4 for k, v in message.get("headers", ())))
    await send(message)


class GatewayApp:
    def __init__(self, *, config: TierupConfig, auth: Authenticator, pipeline: Pipeline,
                 on_startup: list[Hook] | None = None, on_shutdown: list[Hook] | None = None,
                 before_response_completes: list[Hook] | None = None,
                 health: HealthCheck | None = None, response_store: ResponseStore | None = None,
                 meter: GatewayMeter | None = None, batch=None) -> None:
        """``batch``: the Files and Batch APIs' endpoint (``batch_endpoint.BatchEndpoint``), if served."""
        self._config = config
        self._meter = meter
        self._health_check = health or HealthCheck()
        self._auth = auth
        self._pipeline = pipeline
        self._on_startup = on_startup or []
        self._on_shutdown = on_shutdown or []
        self._before_complete = before_response_completes or []
        self._max_body = config.gateway.max_body_bytes
        self._compress = config.gateway.compresses_responses()
        self._created = int(time.time())
        self._routes = {
            ("POST", "/v1/chat/completions"): self._chat,
            ("POST", "/v1/embeddings"): self._embeddings,
            ("POST", "/v1/responses"): self._responses_create,
            ("GET", "/v1/models"): self._models,
            ("GET", "/health"): self._health,
        }
        self._paths = {path for _, path in self._routes}
        self._response_store = response_store
        self._responses = None  # the Responses API's endpoint, built on its first request
        self._batch = batch
        self.batch_worker = None  # runs queued batch lines (``functions.batch.wiring``), when batches are served

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    with collections_paused():
                        for hook in self._on_startup:
                            await hook()
                        # What start-up built (config, clients, schemas) lives as long as the process: moved
                        # out of the collector's sight, it no longer makes full collections long (p99 spikes).
                        # Collected first, so that no garbage is frozen for good (a process that starts apps
                        # again and again, as the tests do, would keep it all); while collections still wait,
                        # so that the next allocation does not set off a pass over all start-up made.
                        gc.collect()
                        gc.freeze()
                except Exception as exc:
                    log.exception("gateway start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for hook in self._on_shutdown:
                    try:
                        await hook()
                    except Exception:
                        log.exception("gateway shutdown hook failed")
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope, receive, send) -> None:
        if self._meter is None:
            await self._settled_http(scope, receive, self._compressing(scope, send))
            return
        meter, token = self._meter.start()  # the request's AWS units count from here (gateway_meter)
        try:  # the bytes counted are those that go out: compressed, when they are
            await self._settled_http(scope, receive, self._compressing(scope, partial(_counting_egress, send,
                                                                                      self._meter)))
        finally:
            self._meter.finish(meter, token)

    def _compressing(self, scope, send):
        return CompressingSend(send, scope) if self._compress else send

    async def _settled_http(self, scope, receive, send) -> None:
        if not self._before_complete:
            await self._respond(scope, receive, send)
            return
        settling = SettleBeforeComplete(send, self._before_complete)
        try:
            await self._respond(scope, receive, settling)
        finally:
            if not settling.completed:  # no complete response went out (the client went away)
                await settling.run_hooks()

    async def _respond(self, scope, receive, send) -> None:
        request_id = new_request_id()
        path = scope["path"].rstrip("/") or "/"
        handler = self._routes.get((scope["method"], path))
        if handler is None and path.startswith(RESPONSE_PATH_PREFIX):
            handler = self._response_by_id
        if handler is None and self._batch is not None and path.startswith(BATCH_PATH_PREFIXES):
            handler = self._batch.handle
        try:
            if handler is None:
                if path in self._paths:
                    raise MethodNotAllowedError(f"{scope['method']} is not allowed on {path}")
                raise NotFoundError(f"unknown path {path}")
            await handler(scope, receive, send, request_id)
        except TierupError as exc:  # the tier that failed, if one was chosen (exc.headers say so)
            await send_json(send, exc.status, orjson.dumps(exc.to_openai()),
                            {"x-tierup-tier": "none", **exc.headers, "x-request-id": request_id})
        except ConnectionResetError:
            return
        except Exception:
            log.exception("unexpected error", extra={"request_id": request_id})
            body = TierupError("internal error; quote the request id when reporting it").to_openai()
            await send_json(send, 500, orjson.dumps(body), {"x-request-id": request_id, "x-tierup-tier": "none"})

    # -- helpers ------------------------------------------------------------------------

    async def _authenticated_body(self, scope, receive) -> tuple[dict[str, str], Tenant, bytes]:
        headers = header_map(scope)
        body = await read_body(receive, self._max_body, headers.get("content-length"))
        tenant = await self._auth.authenticate(headers.get("authorization"))
        return headers, tenant, body

    def _route(self, name: str, kind: str) -> RouteConfig:
        route = self._config.routes.get(name)
        if route is None:
            raise NotFoundError(f"the model {name!r} does not exist; GET /v1/models lists the routes",
                                code="model_not_found", param="model")
        if route.kind != kind:
            raise RequestError(f"route {name!r} serves {route.kind} requests, not {kind}", param="model")
        return route

    @staticmethod
    def _parse(model, body: bytes):
        try:
            return model.model_validate_json(body)
        except ValidationError as exc:
            message, param = validation_message(exc)
            raise RequestError(message, param=param) from None

    # -- endpoints ----------------------------------------------------------------------

    async def _health(self, scope, receive, send, request_id: str) -> None:
        status, body = await self._health_check.report()
        await send_json(send, status, body, {"x-request-id": request_id})

    async def _models(self, scope, receive, send, request_id: str) -> None:
        await self._auth.authenticate(header_map(scope).get("authorization"))
        await send_json(send, 200, models_json(list(self._config.routes), self._created),
                        {"x-request-id": request_id})

    async def _embeddings(self, scope, receive, send, request_id: str) -> None:
        headers, tenant, body = await self._authenticated_body(scope, receive)
        request: EmbeddingRequest = self._parse(EmbeddingRequest, body)
        ctx = self._embedding_context(request, tenant, headers, request_id)
        try:
            result = await self._pipeline.embed(ctx)
        except TierupError as exc:
            exc.headers = {**ctx.response_headers, **exc.headers}
            raise
        encode = partial(embeddings_json, request.model, result, request.encoding_format)
        values = sum(map(len, result.vectors))
        # a large answer is encoded on a worker thread: the event loop serves others meanwhile
        body = await asyncio.to_thread(encode) if values > INLINE_EMBEDDING_VALUES else encode()
        await send_json(send, 200, body, ctx.response_headers)

    def _embedding_context(self, request: EmbeddingRequest, tenant: Tenant, headers: dict[str, str],
                           request_id: str) -> RequestContext:
        """The checks an embeddings request passes before the pipeline (whichever API it came by)."""
        route = self._route(request.model, "embedding")
        input_tokens = [count_tokens(text) for text in request.inputs]
        check_embedding_inputs(request.model, route.max_tokens, input_tokens)
        ctx = RequestContext(request_id=request_id, route_name=request.model, route=route, tenant=tenant,
                             kind="embedding", embedding=request, headers=headers)
        ctx.state["prompt_tokens"] = sum(input_tokens)  # counted once, for the quota and budget stages
        ctx.response_headers["x-request-id"] = request_id
        return ctx

    async def _chat(self, scope, receive, send, request_id: str) -> None:
        headers, tenant, body = await self._authenticated_body(scope, receive)
        request: ChatRequest = self._parse(ChatRequest, body)
        ctx = await self._chat_context(request, tenant, headers, request_id)
        try:
            if request.stream:
                await self._chat_stream(ctx, receive, send)
                return
            completion = await self._pipeline.chat(ctx)
        except TierupError as exc:
            exc.headers = {**ctx.response_headers, **exc.headers}
            raise
        self._mark(ctx, completion.simulated)
        await send_json(send, 200, completion_json(request_id, request.model, completion), ctx.response_headers)

    async def _chat_context(self, request: ChatRequest, tenant: Tenant, headers: dict[str, str],
                            request_id: str) -> RequestContext:
        """The checks a chat request passes before the pipeline (whichever API it came by)."""
        check_chat_request(request)
        route = self._route(request.model, "chat")
        asked = request.requested_max_tokens
        if asked is not None and asked > route.max_tokens:
            raise RequestError(f"max_tokens {asked} is over route {request.model!r}'s limit of "
                               f"{route.max_tokens}", param="max_tokens", code="max_tokens_too_large")
        to_fetch = check_images(request, request.model, route.images)
        if to_fetch:  # https image URLs, on a route that allows them: fetched here, passed on as bytes
            from ..adapters.image_fetch import inline_images

            await inline_images(to_fetch, route.images)
        ctx = RequestContext(request_id=request_id, route_name=request.model, route=route, tenant=tenant,
                             kind="chat", chat=request, headers=headers,
                             max_tokens=asked or route.default_max_tokens)
        ctx.response_headers["x-request-id"] = request_id
        return ctx

    # -- the Responses API: its own module, imported on its first request ----------------

    def _responses_endpoint(self):
        if self._responses is None:
            from .responses_endpoint import ResponsesEndpoint

            self._responses = ResponsesEndpoint(self, self._pipeline, self._response_store,
                                                ttl_s=self._config.gateway.responses_ttl_days * 86400)
        return self._responses

    async def _responses_create(self, scope, receive, send, request_id: str) -> None:
        await self._responses_endpoint().create(scope, receive, send, request_id)

    async def _response_by_id(self, scope, receive, send, request_id: str) -> None:
        await self._responses_endpoint().by_id(scope, receive, send, request_id)

    @staticmethod
    def _mark(ctx: RequestContext, simulated: bool) -> None:
        ctx.response_headers["x-tierup-cache"] = ctx.cache_status
        if ctx.cache_status.startswith("hit"):  # no tier ran: the answer came from the cache
            ctx.response_headers["x-tierup-tier"] = "cache"
        if simulated:
            ctx.response_headers["x-tierup-simulated"] = "true"

    async def _chat_stream(self, ctx: RequestContext, receive, send) -> None:
        """Relay a stream. The first piece is awaited before the 200 goes out, so a refusal or a
        provider that fails at once still gets a proper error status; later failures end the
        stream with an error event. A client that goes away stops the provider call."""
        deltas = await self._pipeline.chat_stream(ctx)
        try:
            first = await anext(deltas)
        except StopAsyncIteration:
            first = StreamDelta(finish_reason="stop")
        simulated = bool(ctx.state.get("simulated"))
        self._mark(ctx, simulated)
        writer = ChunkWriter(ctx.request_id, ctx.route_name, simulated, ctx.chat.include_usage)
        await start_stream(send, ctx.response_headers)
        disconnected = asyncio.ensure_future(receive())
        try:
            await send_chunk(send, writer.render(first))
            async for delta in deltas:
                if disconnected.done():
                    return
                await send_chunk(send, writer.render(delta))
            await send_chunk(send, writer.done(), more=False)
        except TierupError as exc:
            await send_chunk(send, writer.error(exc.to_openai()) + writer.done(), more=False)
        finally:
            disconnected.cancel()
            await deltas.aclose()
