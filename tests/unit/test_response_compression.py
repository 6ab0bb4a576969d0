"""Response compression (functions/gateway/compression.py): what is compressed, for whom, and that
every streamed event can be decoded the moment it is sent."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import orjson
import pytest

from functions.core.config import parse_config
from functions.gateway.compression import CompressingSend, accepts_gzip
from tests.support import deep_merge, example_config_data

CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/0b6a8c37-1f7e-4a0e-9f3b-2c1d4e5f6a7b"


@pytest.mark.parametrize("value, expected", [
    ("gzip, deflate, zstd", True), ("gzip", True), ("GZIP;q=0.5", True), ("br, *", True),
    (None, False), ("", False), ("identity", False), ("gzip;q=0", False), ("deflate, br", False),
    ("*;q=0", False), ("*, gzip;q=0", False), ("gzip;q=oops", False), ("x-gzip", True),
])
def test_accept_encoding_negotiation(value, expected):
    assert accepts_gzip(value) is expected


def _run(messages: list[dict], accept: str | None, min_bytes: int = 512) -> list[dict]:
    sent: list[dict] = []

    async def send(message) -> None:
        sent.append(message)

    scope = {"type": "http", "headers": [(b"accept-encoding", accept.encode())] if accept else []}
    wrapper = CompressingSend(send, scope, min_bytes=min_bytes)

    async def main() -> None:
        for message in messages:
            await wrapper(message)

    asyncio.run(main())
    return sent


def _start(content_type: bytes, length: int | None = None) -> dict:
    headers = [(b"content-type", content_type), (b"x-request-id", b"r1")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http.response.start", "status": 200, "headers": headers}


def _headers(message: dict) -> dict[bytes, bytes]:
    return dict(message["headers"])


def test_large_json_is_gzipped_whole_with_its_compressed_length():
    body = orjson.dumps({"choices": [{"message": {"content": "word " * 400}}]})
    start, part = _run([_start(b"application/json", len(body)), {"type": "http.response.body", "body": body}],
                       "gzip, deflate")
    headers = _headers(start)
    assert headers[b"content-encoding"] == b"gzip" and headers[b"vary"] == b"accept-encoding"
    assert int(headers[b"content-length"]) == len(part["body"]) < len(body) / 10
    assert gzip.decompress(part["body"]) == body


def test_small_json_and_clients_without_gzip_get_the_bytes_as_they_were():
    small = b'{"ok":true}'
    start, part = _run([_start(b"application/json", len(small)), {"type": "http.response.body", "body": small}],
                       "gzip")
    assert b"content-encoding" not in _headers(start) and part["body"] == small
    big = b'{"text":"' + b"a" * 5000 + b'"}'
    start, part = _run([_start(b"application/json", len(big)), {"type": "http.response.body", "body": big}], None)
    assert b"content-encoding" not in _headers(start) and part["body"] == big
    assert _headers(start)[b"vary"] == b"accept-encoding" and _headers(start)[b"content-length"] == b"5011"


def test_binary_and_already_encoded_responses_pass_untouched():
    image = _start(b"image/png", 4000)
    done = {"type": "http.response.body", "body": b"\x89PNG" * 1000}
    assert _run([image, done], "gzip") == [image, done]
    encoded = _start(b"application/json")
    encoded["headers"].append((b"content-encoding", b"br"))
    assert _run([encoded, done], "gzip") == [encoded, done]


def test_each_stream_event_decodes_as_soon_as_it_is_sent():
    events = [b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"delta":{"content":"w%d"}}]}\n\n'
              % index for index in range(50)]
    messages = [_start(b"text/event-stream")]
    messages += [{"type": "http.response.body", "body": event, "more_body": True} for event in events]
    messages.append({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})
    start, *parts = _run(messages, "gzip, deflate")
    assert _headers(start)[b"content-encoding"] == b"gzip" and b"content-length" not in _headers(start)
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    for event, part in zip(events, parts):
        assert decoder.decompress(part["body"]) == event  # nothing held back for a later event
    assert decoder.decompress(parts[-1]["body"]) == b"data: [DONE]\n\n" and decoder.eof
    assert sum(len(part["body"]) for part in parts) < sum(map(len, events)) / 3


def test_compression_is_on_by_default_in_a_container_and_off_on_lambda():
    data = example_config_data()
    assert parse_config(data).gateway.compresses_responses() is False
    container = deep_merge(data, {"gateway": {"hosting": "container", "container": {"certificate-arn": CERTIFICATE}}})
    assert parse_config(container).gateway.compresses_responses() is True
    for hosted in (data, container):
        for choice in (True, False):
            chosen = deep_merge(hosted, {"gateway": {"compress-responses": choice}})
            assert parse_config(chosen).gateway.compresses_responses() is choice
