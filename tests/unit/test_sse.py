"""SseDecoder: whole events out, however the bytes were cut."""

from __future__ import annotations

import pytest

from functions.adapters.sse import SseDecoder

STREAM = (b'data: {"a": 1}\n\n'
          b": a comment line\n\n"
          b"event: message\r\nid: 7\r\ndata: {\"b\": \"na\xc3\xafve\"}\r\n\r\n"
          b"data: first line\ndata: second line\n\n"
          b"data:no-space\r\r"
          b"data: [DONE]\n\n")
EXPECTED = [b'{"a": 1}', b'{"b": "na\xc3\xafve"}', b"first line\nsecond line", b"no-space", b"[DONE]"]


def decode_in_pieces(data: bytes, size: int) -> list[bytes]:
    decoder = SseDecoder()
    events = []
    for start in range(0, len(data), size):
        events.extend(decoder.feed(data[start:start + size]))
    return events + decoder.close()


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, len(STREAM)])
def test_events_are_whole_at_any_cut(size):
    assert decode_in_pieces(STREAM, size) == EXPECTED


def test_every_single_cut_point():
    for cut in range(1, len(STREAM)):
        decoder = SseDecoder()
        events = decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:]) + decoder.close()
        assert events == EXPECTED, f"cut at byte {cut}"


def test_event_is_returned_as_soon_as_it_ends():
    decoder = SseDecoder()
    assert decoder.feed(b"data: x\n") == []
    assert decoder.feed(b"\n") == [b"x"]


def test_unterminated_last_event_is_delivered_on_close():
    decoder = SseDecoder()
    assert decoder.feed(b"data: tail") == []
    assert decoder.close() == [b"tail"]
    assert decoder.close() == []


def test_blank_lines_without_data_make_no_event():
    assert decode_in_pieces(b"\n\n\r\n: ping\n\n", 1) == []
