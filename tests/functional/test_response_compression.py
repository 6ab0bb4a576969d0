"""Response compression end to end: the gateway under uvicorn on moto, the official openai SDK
(httpx underneath, which asks for gzip and decodes it, streamed or not) as the client."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import boto3
import httpx
import pytest

from functions.adapters.dynamodb.ledger_records import DynamoLedgerRecords
from functions.core.tables import USAGE
from functions.gateway.composition import build_gateway
from tierup.local_stack import GatewayServer, create_key

from ..support import openai_client

#: answers long enough to be worth compressing, streamed over about half a second
COMPRESSED = {"gateway": {"compress-responses": True},
              "simulated": {"ttft-ms": 0, "tokens-per-s": 400, "answer-tokens": 200}}
PLAIN = {"Accept-Encoding": "identity"}
QUESTION = [{"role": "user", "content": "tell me a story"}]


@pytest.fixture
def compressing(make_runtime):
    runtime = make_runtime(COMPRESSED)
    app = build_gateway(runtime)
    key = create_key(runtime, "acme", "pro")
    server = GatewayServer(app).start()
    try:
        yield runtime, app, server, key
    finally:
        server.stop()


def test_the_sdk_asks_for_gzip_and_reads_json_answers_as_uncompressed_ones(compressing):
    _, _, server, key = compressing
    raw = openai_client(server.url, key).chat.completions.with_raw_response.create(
        model="chat", messages=QUESTION, temperature=0)
    assert raw.headers["content-encoding"] == "gzip"
    assert raw.http_request.headers["accept-encoding"].startswith("gzip")
    zipped = raw.parse()
    plain_raw = openai_client(server.url, key, default_headers=PLAIN).chat.completions.with_raw_response.create(
        model="chat", messages=QUESTION, temperature=0)
    assert "content-encoding" not in plain_raw.headers
    plain = plain_raw.parse()
    assert zipped.choices[0].message.content == plain.choices[0].message.content
    assert len(plain.choices[0].message.content) > 500


def _stream_text(client) -> tuple[str, list[float], str | None]:
    """The streamed answer's text, when each piece arrived, and the response's content-encoding."""
    with client.chat.completions.with_streaming_response.create(
            model="chat", messages=QUESTION, stream=True, stream_options={"include_usage": True}) as response:
        encoding = response.headers.get("content-encoding")
        pieces, arrivals = [], []
        for chunk in response.parse():
            arrivals.append(time.monotonic())
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
    return "".join(pieces), arrivals, encoding


def test_streamed_answers_decode_identically_and_arrive_event_by_event(compressing):
    _, _, server, key = compressing
    text, arrivals, encoding = _stream_text(openai_client(server.url, key))
    plain_text, _, plain_encoding = _stream_text(openai_client(server.url, key, default_headers=PLAIN))
    assert (encoding, plain_encoding) == ("gzip", None)
    assert text == plain_text and len(text) > 500
    # the model takes ~0.5 s: the first event is read well before the last (a gzip stream that is
    # not flushed per event would hold them all until the end)
    assert len(arrivals) > 100 and arrivals[-1] - arrivals[0] > 0.2


def test_a_client_without_accept_encoding_gets_plain_bytes(compressing):
    _, _, server, key = compressing
    body = {"model": "chat", "messages": QUESTION, "temperature": 0}
    auth = {"Authorization": f"Bearer {key}"}
    for headers in ({**auth, "Accept-Encoding": ""}, {**auth, "Accept-Encoding": "gzip;q=0, identity"}):
        answer = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers, timeout=10)
        assert answer.status_code == 200 and "content-encoding" not in answer.headers
        assert answer.headers["vary"] == "accept-encoding" and answer.content.startswith(b"{")
        streamed = httpx.post(f"{server.url}/v1/chat/completions", json={**body, "stream": True},
                              headers=headers, timeout=10)
        assert "content-encoding" not in streamed.headers and streamed.content.startswith(b"data: {")


def test_the_egress_meter_counts_the_compressed_bytes(compressing, moto_endpoint):
    runtime, app, server, key = compressing
    body = {"model": "chat", "messages": QUESTION, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, timeout=10,
                      headers={"Authorization": f"Bearer {key}", "Accept-Encoding": "gzip"}) as answer:
        decoded = b"".join(answer.iter_bytes())
        on_the_wire = answer.num_bytes_downloaded
    assert answer.headers["content-encoding"] == "gzip" and on_the_wire < len(decoded) / 3
    server.stop()  # the last flush writes the request's ledger record
    client = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    entries = DynamoLedgerRecords(lambda: client, runtime.table(USAGE)).day("acme", day)
    counted = sum(entry.egress_bytes for entry in entries) + app._meter.unattributed().egress_bytes
    assert on_the_wire <= counted < on_the_wire + 1000  # the body as sent, plus the status line and headers


def test_responses_api_streams_and_embeddings_decode_the_same_compressed(compressing):
    _, _, server, key = compressing
    texts = []
    for client in (openai_client(server.url, key), openai_client(server.url, key, default_headers=PLAIN)):
        with client.responses.with_streaming_response.create(model="chat", input="tell me a story",
                                                             stream=True) as response:
            encoding = response.headers.get("content-encoding")
            events = list(response.parse())
        texts.append((encoding, "".join(e.delta for e in events if e.type == "response.output_text.delta")))
    assert [encoding for encoding, _ in texts] == ["gzip", None]
    assert texts[0][1] == texts[1][1] and len(texts[0][1]) > 500
    raw = openai_client(server.url, key).embeddings.with_raw_response.create(model="embed", input="hello " * 50)
    plain = openai_client(server.url, key, default_headers=PLAIN).embeddings.create(model="embed",
                                                                                  input="hello " * 50)
    assert raw.headers["content-encoding"] == "gzip"
    assert raw.parse().data[0].embedding == plain.data[0].embedding
