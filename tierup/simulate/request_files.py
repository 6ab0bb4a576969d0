"""Your own traffic for ``tierup simulate``: a JSONL or CSV file of requests, or the usage ledger.

A trace file has one request per line (JSONL: one object; CSV: a header row, then rows) with
``timestamp`` (epoch seconds, or an ISO 8601 date-time), ``input_tokens`` and ``output_tokens``;
``prefix_hash`` is optional (read, not yet priced). ``prompt_tokens`` / ``completion_tokens``
are accepted for the token columns. A bad value is a ``TraceFileError`` naming the line and
column.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from functions.core.usage_ledger import LedgerEntry

COLUMNS = {"timestamp": ("timestamp",), "input_tokens": ("input_tokens", "prompt_tokens"),
           "output_tokens": ("output_tokens", "completion_tokens")}


class TraceFileError(ValueError):
    """A trace file line that cannot be read; the message names the line and column."""


@dataclass(frozen=True)
class RequestArrays:
    arrival_s: np.ndarray
    prompt_tokens: np.ndarray
    completion_tokens: np.ndarray


def _timestamp(value, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise TraceFileError(f"{where}, column timestamp: {text!r} is neither epoch seconds nor ISO 8601") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _tokens(value, column: str, where: str) -> float:
    try:
        tokens = float(value)
    except (TypeError, ValueError):
        raise TraceFileError(f"{where}, column {column}: {value!r} is not a number") from None
    if tokens < 0 or tokens != tokens:
        raise TraceFileError(f"{where}, column {column}: {value!r} must be a non-negative number")
    return tokens


def _field(row: dict, column: str, where: str):
    for name in COLUMNS[column]:
        if name in row and row[name] not in (None, ""):
            return row[name]
    raise TraceFileError(f"{where}: column {column} is missing")


def read_trace_file(path: Path) -> RequestArrays:
    """The requests of a ``.jsonl`` / ``.json`` or ``.csv`` file, sorted by arrival."""
    if not path.is_file():
        raise TraceFileError(f"{path}: no such file")
    arrivals, prompts, completions = [], [], []
    with path.open(newline="") as handle:
        if path.suffix.lower() == ".csv":
            rows = ((number + 2, row) for number, row in enumerate(csv.DictReader(handle)))
        else:
            rows = _jsonl_rows(handle, path)
        for number, row in rows:
            where = f"{path.name} line {number}"
            arrivals.append(_timestamp(_field(row, "timestamp", where), where))
            prompts.append(_tokens(_field(row, "input_tokens", where), "input_tokens", where))
            completions.append(_tokens(_field(row, "output_tokens", where), "output_tokens", where))
    if not arrivals:
        raise TraceFileError(f"{path.name}: no requests")
    order = np.argsort(arrivals, kind="stable")
    return RequestArrays(np.asarray(arrivals)[order], np.asarray(prompts)[order], np.asarray(completions)[order])


def _jsonl_rows(handle, path: Path):
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            raise TraceFileError(f"{path.name} line {number}, column {exc.colno}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise TraceFileError(f"{path.name} line {number}: expected an object")
        yield number, row


def from_ledger(entries: list[LedgerEntry], route: str) -> RequestArrays:
    """The route's requests from usage-ledger records: those answered by a model (cache hits and
    refusals never reached a tier)."""
    kept = [entry for entry in entries if entry.route == route and entry.tier and entry.answered
            and not entry.cache_status.startswith("hit")]
    kept.sort(key=lambda entry: entry.at)
    return RequestArrays(np.array([entry.at for entry in kept], dtype=float),
                         np.array([entry.prompt_tokens for entry in kept], dtype=float),
                         np.array([entry.completion_tokens for entry in kept], dtype=float))
