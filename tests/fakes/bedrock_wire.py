"""ConverseStream answers on the wire, for tests of the Bedrock provider.

botocore's ``Stubber`` cannot return an event stream (it validates ``stream`` as a dict), so
these answers are served one level lower: a ``before-send`` handler on a real boto3 client
returns an HTTP response whose body is AWS event-stream frames encoded here. botocore then
serialises the request, and decodes and parses the frames, exactly as it does against Bedrock.
"""

from __future__ import annotations

import binascii
import json
import struct
import threading
import time

from botocore.awsrequest import AWSResponse

_STRING_HEADER = 7


def _headers(headers: dict[str, str]) -> bytes:
    out = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        out += struct.pack("!B", len(raw_name)) + raw_name
        out += struct.pack("!BH", _STRING_HEADER, len(raw_value)) + raw_value
    return out


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (lengths + CRC), headers, payload, message CRC."""
    raw_headers = _headers(headers)
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack("!II", total, len(raw_headers))
    prelude += struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + raw_headers + payload
    return body + struct.pack("!I", binascii.crc32(body) & 0xFFFFFFFF)


def event_frame(event: dict) -> bytes:
    """``{"contentBlockDelta": {...}}`` as Bedrock sends it; ``{"throttlingException": {...}}``
    becomes an exception message."""
    (name, body), = event.items()
    payload = json.dumps(body).encode()
    if name.endswith("Exception"):
        return frame({":message-type": "exception", ":exception-type": name,
                      ":content-type": "application/json"}, payload)
    return frame({":message-type": "event", ":event-type": name, ":content-type": "application/json"}, payload)


class WireBody:
    """The raw HTTP body botocore reads an event stream from (``.stream()`` and ``.close()``).

    With ``hold_after`` set, it sends that many frames and then blocks, as a slow model does,
    until it is closed; ``closed`` records that the provider closed it. ``gap_s`` blocks before
    each frame, as reading a model that decodes at 1/gap_s tokens per second does.
    """

    def __init__(self, frames: list[bytes], hold_after: int | None = None, gap_s: float = 0.0) -> None:
        self._frames = frames
        self._hold_after = hold_after
        self._gap_s = gap_s
        self.closed = threading.Event()
        self.released = threading.Event()

    def stream(self, amt=None, decode_content=None):
        for index, chunk in enumerate(self._frames):
            if self._hold_after is not None and index >= self._hold_after:
                self.closed.wait(timeout=10)
                self.released.set()
                raise ConnectionError("connection closed while reading")
            if self._gap_s:
                time.sleep(self._gap_s)  # a blocking socket read while the model decodes
            yield chunk

    def close(self) -> None:
        self.closed.set()


class ConverseStreamWire:
    """Serves ConverseStream answers to a boto3 client and records the requests it was sent."""

    def __init__(self, client) -> None:
        self.requests: list[dict] = []
        self.urls: list[str] = []
        self.bodies: list[WireBody] = []
        self._queued: list[WireBody] = []
        self._every: tuple[list[bytes], float] | None = None
        client.meta.events.register("before-send.bedrock-runtime.ConverseStream", self._answer)

    def add(self, events: list[dict], *, hold_after: int | None = None) -> WireBody:
        body = WireBody([event_frame(event) for event in events], hold_after=hold_after)
        self._queued.append(body)
        return body

    def answer_every_request(self, events: list[dict], *, gap_s: float = 0.0) -> None:
        """Once the queued answers are used up, answer each request with ``events`` afresh."""
        self._every = ([event_frame(event) for event in events], gap_s)

    def _answer(self, request, **_):
        self.requests.append(json.loads(request.body))
        self.urls.append(request.url)
        if self._queued or self._every is None:
            body = self._queued.pop(0)
        else:
            body = WireBody(self._every[0], gap_s=self._every[1])
        self.bodies.append(body)
        return AWSResponse(request.url, 200, {"content-type": "application/vnd.amazon.eventstream"}, body)
