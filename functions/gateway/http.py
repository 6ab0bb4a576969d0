"""The few ASGI primitives the gateway needs: read a bounded body, send JSON, send a stream.

tierup speaks raw ASGI instead of using a framework: the whole surface is four endpoints, and
skipping routing/middleware layers keeps both cold start (no framework import) and per-request
CPU small. Uvicorn (with httptools and uvloop) does the HTTP parsing.
"""

from __future__ import annotations

from random import getrandbits

from ..core.errors import BodyTooLargeError

Headers = list[tuple[bytes, bytes]]


def new_request_id() -> str:
    """96 random bits as hex. A correlation handle, not a secret, so the fast non-cryptographic
    generator does: ``os.urandom`` is a system call per request and showed in profiles."""
    return "%024x" % getrandbits(96)


def header_map(scope: dict) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


async def read_body(receive, limit: int, declared: str | None) -> bytes:
    """The request body, or ``BodyTooLargeError`` as soon as it is known to exceed ``limit``."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(f"request body is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(f"request body is over the {limit}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def encode_headers(content_type: bytes, extra: dict[str, str]) -> Headers:
    headers = [(b"content-type", content_type)]
    headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items())
    return headers


async def send_json(send, status: int, body: bytes, extra: dict[str, str]) -> None:
    headers = encode_headers(b"application/json", extra)
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def start_stream(send, extra: dict[str, str]) -> None:
    headers = encode_headers(b"text/event-stream", extra)
    headers.append((b"cache-control", b"no-cache"))
    headers.append((b"x-accel-buffering", b"no"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})


async def send_chunk(send, data: bytes, more: bool = True) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": more})
