"""The Responses API: ``POST /v1/responses``, ``GET`` and ``DELETE /v1/responses/{id}``.

A request is translated into the internal ``ChatRequest`` (``core.responses_chat``) and served
by the same checks and pipeline as ``/v1/chat/completions`` (auth, kill switches, admission,
quotas, spend caps, cache, routing, ledger); only the rendering is the Responses API's own
(``responses_format``). Errors name the Responses field the client sent.

A response is stored unless the request says ``store: false``: before its answer completes (the
host may freeze the process right after), so that ``GET`` and ``previous_response_id`` find it
at once. Stored responses are looked up with the caller's tenant: one tenant can neither read
nor continue another's response (404, as for an id that does not exist).

Imported on the first Responses request only: chat and embeddings never load it.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time

import orjson

from ..adapters.store_calls import call_store
from ..core.chat import Completion, StreamDelta
from ..core.context import RequestContext, Tenant
from ..core.errors import MethodNotAllowedError, NotFoundError, RequestError, TierupError
from ..core.ports import ResponseStore
from ..core.responses_chat import ChatTranslation, answer_message, rename_param, to_chat
from ..core.responses_request import ResponsesRequest, check_responses_request, schema_param
from ..core.stored_responses import (StoredResponse, check_storable, decode_conversation, stored_response,
                                     unpack)
from .http import header_map, send_chunk, send_json, start_stream
from .responses_format import ResponseEventWriter, ResponseShape

STORE = "responses"
#: the ids this gateway gives responses: anything else cannot exist, and is not looked up
RESPONSE_ID = re.compile(r"resp_[0-9a-f]{48}")


class ResponsesEndpoint:
    def __init__(self, app, pipeline, store: ResponseStore | None, *, ttl_s: float) -> None:
        """``app`` is the ``GatewayApp``: its authentication, parsing and chat checks are reused."""
        self._app = app
        self._pipeline = pipeline
        self._store = store
        self._ttl_s = ttl_s

    # -- POST /v1/responses ------------------------------------------------------------

    async def create(self, scope, receive, send, request_id: str) -> None:
        app = self._app
        headers, tenant, body = await app._authenticated_body(scope, receive)
        try:
            request: ResponsesRequest = app._parse(ResponsesRequest, body)
        except RequestError as exc:
            if exc.param:
                cleaned = schema_param(exc.param)
                exc.message, exc.param = exc.message.replace(exc.param, cleaned), cleaned
            raise
        check_responses_request(request)
        if request.stored and self._store is None:
            raise RequestError("this gateway keeps no responses: send store=false", param="store",
                               code="unsupported_parameter")
        history = []
        if request.previous_response_id is not None:
            previous = await self._find(tenant, request.previous_response_id, "previous_response_id")
            history = decode_conversation(previous.conversation)
        translation = to_chat(request, history)
        try:
            if request.stored:
                check_storable(translation.conversation)
            ctx = await app._chat_context(translation.chat, tenant, headers, request_id)
        except RequestError as exc:
            rename_param(exc, translation.origins)
            raise
        shape = ResponseShape("resp_" + secrets.token_hex(24), request, request.model)
        try:
            if request.stream:
                await self._stream(ctx, request, translation, shape, receive, send)
                return
            completion = await self._pipeline.chat(ctx)
        except TierupError as exc:
            rename_param(exc, translation.origins)
            exc.headers = {**ctx.response_headers, **exc.headers}
            raise
        app._mark(ctx, completion.simulated)
        answer = orjson.dumps(shape.completed(completion))
        if request.stored:
            try:
                await self._keep(tenant, shape.response_id, answer, translation, completion)
            except TierupError as exc:
                exc.headers = {**ctx.response_headers, **exc.headers}
                raise
        await send_json(send, 200, answer, ctx.response_headers)

    async def _stream(self, ctx: RequestContext, request: ResponsesRequest, translation: ChatTranslation,
                      shape: ResponseShape, receive, send) -> None:
        """As ``GatewayApp._chat_stream``: the first piece is awaited before the 200 goes out, so a
        refusal gets its status; a later failure ends the stream with ``error`` and
        ``response.failed``; a client that goes away stops the provider call."""
        deltas = await self._pipeline.chat_stream(ctx)
        try:
            first = await anext(deltas)
        except StopAsyncIteration:
            first = StreamDelta(finish_reason="stop")
        self._app._mark(ctx, bool(ctx.state.get("simulated")))
        writer = ResponseEventWriter(shape)
        await start_stream(send, ctx.response_headers)
        disconnected = asyncio.ensure_future(receive())
        try:
            await send_chunk(send, writer.start() + writer.render(first))
            async for delta in deltas:
                if disconnected.done():
                    return
                await send_chunk(send, writer.render(delta))
            final = writer.final_body()
            if request.stored:
                await self._keep(ctx.tenant, shape.response_id, orjson.dumps(final), translation, writer.answer())
            await send_chunk(send, writer.completed(final), more=False)
        except TierupError as exc:
            rename_param(exc, translation.origins)
            await send_chunk(send, writer.failed(exc.to_openai()["error"]), more=False)
        finally:
            disconnected.cancel()
            await deltas.aclose()

    # -- storing and finding -----------------------------------------------------------

    async def _keep(self, tenant: Tenant, response_id: str, body: bytes, translation: ChatTranslation,
                    completion: Completion) -> None:
        messages = [*translation.conversation, answer_message(completion)]
        stored = stored_response(response_id, tenant.tenant_id, body, messages, int(time.time() + self._ttl_s))
        await call_store(self._store.put, stored, store=STORE)

    async def _find(self, tenant: Tenant, response_id: str, param: str | None) -> StoredResponse:
        found = None
        if self._store is not None and RESPONSE_ID.fullmatch(response_id):
            found = await call_store(self._store.get, tenant.tenant_id, response_id, store=STORE)
        if found is None:
            code = "previous_response_not_found" if param else "response_not_found"
            raise NotFoundError(f"no response with id {response_id!r}: it does not exist, has expired, was made "
                                "with store=false, or belongs to another tenant", param=param, code=code)
        return found

    # -- GET / DELETE /v1/responses/{id} -----------------------------------------------

    async def by_id(self, scope, receive, send, request_id: str) -> None:
        response_id = scope["path"].rstrip("/").removeprefix("/v1/responses/")
        if not response_id or "/" in response_id:
            raise NotFoundError(f"unknown path {scope['path']}")
        method = scope["method"]
        if method not in ("GET", "DELETE"):
            raise MethodNotAllowedError(f"{method} is not allowed on /v1/responses/{{id}}")
        tenant = await self._app._auth.authenticate(header_map(scope).get("authorization"))
        headers = {"x-request-id": request_id}
        if method == "GET":
            stored = await self._find(tenant, response_id, None)
            await send_json(send, 200, unpack(stored.body), headers)
            return
        deleted = False
        if self._store is not None and RESPONSE_ID.fullmatch(response_id):
            deleted = await call_store(self._store.delete, tenant.tenant_id, response_id, store=STORE)
        if not deleted:
            await self._find(tenant, response_id, None)  # raises the same 404 as GET
        await send_json(send, 200, orjson.dumps({"id": response_id, "object": "response", "deleted": True}), headers)
