"""The OpenAI Files and Batch APIs, as far as batches need them:

    POST /v1/files                       multipart upload (purpose "batch"), JSONL checked line by line
    GET  /v1/files                       the caller's files (``after``, ``limit``)
    GET  /v1/files/{id}                  the file object
    GET  /v1/files/{id}/content          the bytes (inputs, and a batch's output and error files)
    POST /v1/batches                     create: the lines go to the queue in chunks
    GET  /v1/batches                     newest first; ``after`` and ``limit`` page
    GET  /v1/batches/{id}
    POST /v1/batches/{id}/cancel

Everything is looked up with the caller's tenant: another tenant's file or batch is a 404, the
same answer as an id that does not exist. Imported on the first such request only.
"""

from __future__ import annotations

import asyncio
import time
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qs

import orjson

from ..adapters.batch_store import BatchStore
from ..core.batch import (BATCH_ENDPOINTS, BatchJob, check_create, chunk_ranges, file_object, new_batch_id,
                          new_file_id, parse_batch_file, queued_work)
from ..core.config import BatchConfig
from ..core.errors import BodyTooLargeError, MethodNotAllowedError, NotFoundError, RequestError
from .http import header_map, read_body, send_json

FILES = "/v1/files"
BATCHES = "/v1/batches"
#: room for the multipart framing around an upload's bytes
MULTIPART_OVERHEAD = 64 * 1024
FILE_PURPOSES = ("batch",)


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """The parts of a ``multipart/form-data`` body: name -> (filename, bytes)."""
    if not content_type.startswith("multipart/form-data"):
        raise RequestError("upload the file as multipart/form-data (fields: purpose, file)", param="file")
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1")
                                                  + b"\r\n\r\n" + body)
    parts: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            parts[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return parts


class BatchEndpoint:
    def __init__(self, auth, store: BatchStore, config: BatchConfig, routes: dict | None = None) -> None:
        """``routes``: the config's routes, to keep a chat batch's work per route for the policy."""
        self._routes = routes or {}
        self._auth = auth
        self._store = store
        self._config = config

    async def _call(self, function, *args):
        return await asyncio.to_thread(function, *args)

    async def handle(self, scope, receive, send, request_id: str) -> None:
        path = scope["path"].rstrip("/")
        method = scope["method"]
        headers = header_map(scope)
        tenant = await self._auth.authenticate(headers.get("authorization"))
        parts = path.removeprefix("/v1/").split("/")
        reply = {"x-request-id": request_id}
        if parts[0] == "files":
            if len(parts) == 1 and method == "GET":
                answer = await self._files(tenant.tenant_id, scope.get("query_string", b""))
            elif len(parts) == 1:
                self._allow(method, "POST", FILES)
                answer = await self._upload(tenant.tenant_id, headers, receive)
            elif len(parts) == 2:
                self._allow(method, "GET", f"{FILES}/{{id}}")
                answer = await self._file(tenant.tenant_id, parts[1])
            elif len(parts) == 3 and parts[2] == "content":
                self._allow(method, "GET", f"{FILES}/{{id}}/content")
                await self._file(tenant.tenant_id, parts[1])  # 404 unless the caller's tenant owns it
                data = await self._call(self._store.file_content, tenant.tenant_id, parts[1])
                await _send_bytes(send, data, reply)
                return
            else:
                raise NotFoundError(f"unknown path {path}")
        elif len(parts) == 1:
            if method == "POST":
                body = await read_body(receive, 64 * 1024, headers.get("content-length"))
                answer = await self._create(tenant, body)
            else:
                self._allow(method, "GET", BATCHES)
                answer = await self._list(tenant.tenant_id, scope.get("query_string", b""))
        elif len(parts) == 2:
            self._allow(method, "GET", f"{BATCHES}/{{id}}")
            answer = (await self._job(tenant.tenant_id, parts[1])).to_openai()
        elif len(parts) == 3 and parts[2] == "cancel":
            self._allow(method, "POST", f"{BATCHES}/{{id}}/cancel")
            answer = await self._cancel(tenant.tenant_id, parts[1])
        else:
            raise NotFoundError(f"unknown path {path}")
        await send_json(send, 200, orjson.dumps(answer), reply)

    @staticmethod
    def _allow(method: str, allowed: str, path: str) -> None:
        if method != allowed:
            raise MethodNotAllowedError(f"{method} is not allowed on {path}")

    # -- files -----------------------------------------------------------------------------

    async def _upload(self, tenant_id: str, headers: dict[str, str], receive) -> dict:
        limit = self._config.max_file_bytes
        try:
            body = await read_body(receive, limit + MULTIPART_OVERHEAD, headers.get("content-length"))
        except BodyTooLargeError:
            raise BodyTooLargeError(f"the file is over the {limit}-byte limit", param="file") from None
        fields = parse_multipart(headers.get("content-type", ""), body)
        purpose = fields.get("purpose", (None, b""))[1].decode("utf-8", "replace")
        if purpose not in FILE_PURPOSES:
            raise RequestError(f"purpose must be one of {', '.join(FILE_PURPOSES)}", param="purpose")
        if "file" not in fields:
            raise RequestError("the upload has no file part", param="file")
        filename, data = fields["file"]
        if len(data) > limit:
            raise BodyTooLargeError(f"the file is over the {limit}-byte limit", param="file")
        parse_batch_file(data, max_lines=self._config.max_lines)  # 400 naming the first bad line
        now = int(time.time())
        created = file_object(new_file_id(), size=len(data), created_at=now, filename=filename or "upload.jsonl",
                              purpose=purpose)
        await self._call(self._store.put_file, tenant_id, created, data, now + self._config.keep_days * 86400)
        return created

    async def _files(self, tenant_id: str, query: bytes) -> dict:
        after, limit = _page(query, default_limit=100, most=10_000)
        files, has_more = await self._call(lambda: self._store.file_objects(tenant_id, after=after, limit=limit))
        return {"object": "list", "data": files, "first_id": files[0]["id"] if files else None,
                "last_id": files[-1]["id"] if files else None, "has_more": has_more}

    async def _file(self, tenant_id: str, file_id: str) -> dict:
        found = await self._call(self._store.file_object, tenant_id, file_id)
        if found is None:
            raise NotFoundError(f"no file with id {file_id!r}", param="file_id", code="file_not_found")
        return found

    # -- batches ---------------------------------------------------------------------------

    async def _job(self, tenant_id: str, batch_id: str) -> BatchJob:
        job = await self._call(self._store.job, tenant_id, batch_id) if batch_id.startswith("batch_") else None
        if job is None:
            raise NotFoundError(f"no batch with id {batch_id!r}", param="batch_id", code="batch_not_found")
        return job

    async def _create(self, tenant, body: bytes) -> dict:
        tenant_id = tenant.tenant_id
        try:
            fields = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise RequestError("the body is not JSON") from None
        if not isinstance(fields, dict):
            raise RequestError("the body must be a JSON object")
        file_id, endpoint, window, metadata = check_create(fields)
        meta = await self._call(self._store.file_object, tenant_id, file_id)
        if meta is None or meta.get("purpose") != "batch":
            raise NotFoundError(f"no batch input file with id {file_id!r}", param="input_file_id",
                                code="file_not_found")
        data = await self._call(self._store.file_content, tenant_id, file_id)
        lines = parse_batch_file(data, max_lines=self._config.max_lines)
        for line in lines:
            if line.url != endpoint:
                raise RequestError(f"line {line.number}: url {line.url} differs from the batch's endpoint "
                                   f"{endpoint} ({BATCH_ENDPOINTS[endpoint]} requests only)", param="input_file_id")
        now = int(time.time())
        ranges = chunk_ranges(len(lines), self._config.chunk_lines)
        job = BatchJob(id=new_batch_id(), tenant_id=tenant_id, input_file_id=file_id, endpoint=endpoint,
                       completion_window=window, created_at=now, total=len(lines), chunks=len(ranges),
                       metadata=metadata, plan=tenant.plan_name, key_id=tenant.key_id)
        work = queued_work((line.body for line in lines), self._routes) if endpoint == "/v1/chat/completions" else {}
        await self._call(self._store.put_job, job, work)
        messages = [{"tenant": tenant_id, "batch": job.id, "chunk": index, "first": first, "last": last}
                    for index, (first, last) in enumerate(ranges)]
        try:
            await self._call(self._store.enqueue, messages)
        except Exception:
            # nothing may run a batch whose lines did not all reach the queue: it fails as a whole
            await self._call(lambda: self._store.move(tenant_id, job.id, "failed", when=("validating",), at=now))
            raise
        return job.to_openai()

    async def _list(self, tenant_id: str, query: bytes) -> dict:
        after, limit = _page(query, default_limit=20, most=100)
        jobs, has_more = await self._call(lambda: self._store.jobs(tenant_id, after=after, limit=limit))
        data = [job.to_openai() for job in jobs]
        return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None, "has_more": has_more}

    async def _cancel(self, tenant_id: str, batch_id: str) -> dict:
        job = await self._job(tenant_id, batch_id)
        now = int(time.time())
        await self._call(lambda: self._store.move(tenant_id, batch_id, "cancelling",
                                                  when=("validating", "in_progress"), at=now))
        # a batch already finished keeps its status: cancelling it changes nothing, as at OpenAI
        return (await self._job(tenant_id, job.id)).to_openai()


def _page(query: bytes, *, default_limit: int, most: int) -> tuple[str | None, int]:
    """A list request's ``after`` and ``limit``."""
    params = parse_qs(query.decode("latin-1"))
    try:
        limit = int(params.get("limit", [str(default_limit)])[0])
    except ValueError:
        limit = 0
    if not 1 <= limit <= most:
        raise RequestError(f"limit must be an integer from 1 to {most}", param="limit")
    return params.get("after", [None])[0], limit


async def _send_bytes(send, data: bytes, extra: dict[str, str]) -> None:
    headers = [(b"content-type", b"application/octet-stream"), (b"content-length", str(len(data)).encode())]
    headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items())
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": data})
