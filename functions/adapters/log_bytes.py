"""Bytes of log and metric lines the gateway writes, counted toward its CloudWatch Logs bill.

On Lambda everything written to stdout and stderr is ingested into CloudWatch Logs (and billed
per GB): the EMF metric lines (``counting_sink``) and the log records that reach the root
logger's handlers (``LogBytesCounter``, beside them, at their level). Around each record's
message and logger name come its level, separators and CloudWatch Logs' per-event overhead:
``LOG_LINE_OVERHEAD`` bytes, an allowance rather than a count.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..core.gateway_meter import count_log_bytes

#: bytes around a record's message and logger name: level, separators, newline, and the 26 bytes
#: CloudWatch Logs counts per event
LOG_LINE_OVERHEAD = 40


def counting_sink(sink: Callable[[str], None]) -> Callable[[str], None]:
    """``sink``, counting the bytes of each line (with its newline) it writes."""

    def write(line: str) -> None:
        sink(line)
        count_log_bytes(len(line.encode()) + 1)

    return write


class LogBytesCounter(logging.Handler):
    """Counts the bytes of each record the gateway logs; writes nothing itself."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            count_log_bytes(len(record.getMessage().encode()) + len(record.name) + LOG_LINE_OVERHEAD)
        except Exception:  # a record that cannot be formatted is the real handler's to report
            pass


def count_gateway_log_bytes() -> None:
    """Install the counter on the root logger, once per process, at the level of the handlers
    already there. With none there, Python would print warnings through its last-resort handler;
    adding a handler turns that off, so an equal one (stderr, WARNING, the bare message) is added."""
    root = logging.getLogger()
    if any(isinstance(handler, LogBytesCounter) for handler in root.handlers):
        return
    if not root.handlers:
        last_resort = logging.StreamHandler()
        last_resort.setLevel(logging.WARNING)
        root.addHandler(last_resort)
    counter = LogBytesCounter(level=min(handler.level or logging.NOTSET for handler in root.handlers))
    root.addHandler(counter)
