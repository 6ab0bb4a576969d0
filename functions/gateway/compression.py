"""Response compression negotiated by ``Accept-Encoding``: gzip, for streams without delaying them.

A streamed answer is one SSE event per token, ~150 bytes each and nearly all of it repeated from
the event before (id, object, created, model): gzip keeps the last 32 KB as its dictionary, so
an event after the first costs ~20-40 bytes. Bytes out to the internet are billed per GB on every
host, so this is the largest single saving on the gateway's own bill after stream time.

* ``text/event-stream``: one gzip stream for the whole response, flushed with ``Z_SYNC_FLUSH``
  after each event, so the client can decode every event the moment it arrives: nothing waits
  for the next one (a plain gzip stream would hold events until its buffer filled);
* JSON (and other text) bodies of at least ``min_bytes``: compressed whole, ``content-length``
  rewritten; a smaller body goes out as it is (gzip's ~20 bytes of framing would not pay);
* a client that does not list gzip (or refuses it with ``q=0``) gets the bytes as they were, as
  does any response that already carries a ``content-encoding``.

``send`` wraps the ASGI ``send`` outside the part that settles a request and inside the egress
count (``app.GatewayApp._http``), so the meter bills the bytes that go out: the compressed ones.
Pure: zlib (standard library) only, no I/O of its own.
"""

from __future__ import annotations

import zlib

#: zlib level: the events are small, so the per-call cost dominates and the higher levels buy a
#: few percent of size for about twice the CPU (``bench/gateway_cost.py`` measures the CPU)
LEVEL = 6
#: JSON bodies shorter than this are sent as they are
DEFAULT_MIN_BYTES = 512
#: content types worth compressing (text); anything else (images, already-compressed files) passes
_TEXT_TYPES = (b"text/", b"application/json", b"application/jsonl", b"application/x-ndjson")
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer around raw deflate


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` value allows gzip (RFC 9110 12.5.3): listed, or matched by
    ``*``, with a quality above zero."""
    if not accept_encoding:
        return False
    qualities: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        qualities[coding.strip().lower()] = quality
    if "gzip" in qualities:
        return qualities["gzip"] > 0
    if "x-gzip" in qualities:
        return qualities["x-gzip"] > 0
    return qualities.get("*", 0.0) > 0


def _request_accepts_gzip(scope: dict) -> bool:
    values = [value.decode("latin-1") for name, value in scope.get("headers", ()) if name == b"accept-encoding"]
    return accepts_gzip(", ".join(values))


class CompressingSend:
    """An ASGI ``send`` that gzips the response when the client accepts it and it is worth it."""

    __slots__ = ("_send", "_accepts", "_min_bytes", "_start", "_stream", "_compressor")

    def __init__(self, send, scope: dict, *, min_bytes: int = DEFAULT_MIN_BYTES) -> None:
        self._send = send
        self._accepts = _request_accepts_gzip(scope)
        self._min_bytes = min_bytes
        #: a JSON response's start, held until its body shows whether compressing it pays
        self._start: dict | None = None
        self._stream = False
        self._compressor = None

    async def __call__(self, message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            await self._on_start(message)
        elif kind == "http.response.body" and (self._start is not None or self._compressor is not None):
            await self._on_body(message)
        else:
            await self._send(message)

    async def _on_start(self, message) -> None:
        headers = message.get("headers", [])
        names = {name.lower(): value for name, value in headers}
        content_type = names.get(b"content-type", b"")
        if not content_type.startswith(_TEXT_TYPES) or b"content-encoding" in names:
            await self._send(message)
            return
        headers = [*headers, (b"vary", b"accept-encoding")]  # caches must key on the client's choice
        if not self._accepts:
            await self._send({**message, "headers": headers})
            return
        if content_type.startswith(b"text/event-stream"):
            self._stream = True
            self._compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, _GZIP_WBITS)
            await self._send({**message, "headers": [*_without_length(headers), (b"content-encoding", b"gzip")]})
            return
        self._start = {**message, "headers": headers}

    async def _on_body(self, message) -> None:
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if self._start is not None:  # the first body part of a held start
            start, self._start = self._start, None
            if not more and len(body) < self._min_bytes:
                await self._send(start)
                await self._send(message)
                return
            self._compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, _GZIP_WBITS)
            if not more:  # whole: its compressed length is known
                body = self._compressor.compress(body) + self._compressor.flush(zlib.Z_FINISH)
                self._compressor = None
                headers = [*_without_length(start["headers"]), (b"content-encoding", b"gzip"),
                           (b"content-length", str(len(body)).encode())]
                await self._send({**start, "headers": headers})
                await self._send({**message, "body": body})
                return
            headers = [*_without_length(start["headers"]), (b"content-encoding", b"gzip")]
            await self._send({**start, "headers": headers})
        if more:
            # an event goes out whole and decodable now (a stream's), or a part of a larger body
            data = self._compressor.compress(body)
            if self._stream:
                data += self._compressor.flush(zlib.Z_SYNC_FLUSH)
        else:
            data = self._compressor.compress(body) + self._compressor.flush(zlib.Z_FINISH)
            self._compressor = None
        await self._send({**message, "body": data})


def _without_length(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(name, value) for name, value in headers if name.lower() != b"content-length"]
