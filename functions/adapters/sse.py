"""Server-sent events from bytes as they arrive: the ``data`` of each event, whole.

Network reads cut the stream anywhere (inside a line, between ``\\r`` and ``\\n``, inside a UTF-8
character); ``SseDecoder.feed`` keeps the unfinished tail and returns only complete events. It
follows the parts of the SSE format OpenAI-compatible servers use: ``data:`` lines (several in one
event are joined with ``\\n``), comment lines (``:``) and other fields ignored, an empty line ends
an event, and ``\\n``, ``\\r\\n`` or ``\\r`` end a line.

Pure: no I/O here, and no decoding beyond splitting (the payloads stay bytes for orjson).
"""

from __future__ import annotations


class SseDecoder:
    __slots__ = ("_buffer", "_data")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add ``chunk``; return the data of every event it completes, in order."""
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            if buffer.endswith(b"\r"):  # a "\r\n" may be cut in two: decide on the next chunk
                self._buffer = buffer
                return []
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()  # the unfinished last line (b"" when the chunk ended a line)
        events: list[bytes] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(self._data[0] if len(self._data) == 1 else b"\n".join(self._data))
                    self._data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
        return events

    def close(self) -> list[bytes]:
        """End of stream: an event not closed by an empty line is still delivered."""
        events = self.feed(b"\n\n") if self._buffer or self._data else []
        self._buffer = b""
        return events
