"""The OpenAI Batch API's data: request files, batch jobs and their output lines.

A batch input file is JSONL, one request a line::

    {"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions", "body": {...}}

The file's frame is checked at upload (each line a JSON object with a unique ``custom_id``,
``method`` POST and a supported ``url``); an upload that breaks it is refused with a 400 naming
the line. A line's ``body`` is checked when it runs, as an interactive request's is: a bad body
becomes that line's entry in the batch's error file while the other lines complete.

No I/O here.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson

from .errors import RequestError

if TYPE_CHECKING:
    from .config import RouteConfig

#: what a batch line may call, and the route kind each serves
BATCH_ENDPOINTS = {"/v1/chat/completions": "chat", "/v1/embeddings": "embedding"}
COMPLETION_WINDOWS = ("24h",)
WINDOW_S = {"24h": 86_400}
#: statuses after which a batch never changes again
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
CUSTOM_ID_MAX = 512


def new_file_id() -> str:
    return "file-" + secrets.token_hex(12)


def new_batch_id(now: float | None = None) -> str:
    """Creation time first (milliseconds, hex), so that a tenant's batches sort oldest to newest."""
    return f"batch_{int((now or time.time()) * 1000):012x}{secrets.token_hex(6)}"


def output_file_id(batch_id: str, kind: str) -> str:
    """The id of a batch's ``output`` or ``error`` file: fixed per batch, so finishing a batch twice
    (two workers, or one that crashed while finishing) writes the same files."""
    return f"file-{batch_id.removeprefix('batch_')}-{kind}"


def line_request_id(batch_id: str, line: int) -> str:
    """The request id a line runs under, the same on every attempt: the key of its ledger record."""
    return f"{batch_id}-{line:06d}"


@dataclass(frozen=True)
class BatchLine:
    number: int  # 1-based, as an editor shows it
    custom_id: str
    url: str
    body: dict


def parse_batch_file(data: bytes, *, max_lines: int) -> list[BatchLine]:
    """The lines of an uploaded JSONL file, or ``RequestError`` naming the first bad line."""
    lines: list[BatchLine] = []
    seen: set[str] = set()
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        if len(lines) >= max_lines:
            raise RequestError(f"line {number}: the file holds more than {max_lines} requests (the limit)",
                               param="file", code="too_many_lines")
        try:
            item = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise RequestError(f"line {number}: not a JSON object", param="file", code="invalid_jsonl") from None
        lines.append(_checked_line(number, item, seen))
    if not lines:
        raise RequestError("the file holds no request lines", param="file", code="empty_file")
    return lines


def _checked_line(number: int, item, seen: set[str]) -> BatchLine:
    def refuse(message: str) -> RequestError:
        return RequestError(f"line {number}: {message}", param="file", code="invalid_batch_line")

    if not isinstance(item, dict):
        raise refuse("not a JSON object")
    custom_id = item.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id or len(custom_id) > CUSTOM_ID_MAX:
        raise refuse(f"custom_id must be a string of 1 to {CUSTOM_ID_MAX} characters")
    if custom_id in seen:
        raise refuse(f"custom_id {custom_id!r} is used by an earlier line; each must be unique")
    seen.add(custom_id)
    if item.get("method", "POST") != "POST":
        raise refuse("method must be POST")
    url = item.get("url")
    if url not in BATCH_ENDPOINTS:
        raise refuse(f"url must be one of {', '.join(BATCH_ENDPOINTS)}")
    body = item.get("body")
    if not isinstance(body, dict):
        raise refuse("body must be a JSON object")
    return BatchLine(number, custom_id, url, body)


def file_object(file_id: str, *, size: int, created_at: int, filename: str, purpose: str) -> dict:
    return {"id": file_id, "object": "file", "bytes": size, "created_at": created_at, "filename": filename,
            "purpose": purpose, "status": "processed", "status_details": None, "expires_at": None}


@dataclass
class BatchJob:
    """One batch, as the jobs table keeps it."""

    id: str
    tenant_id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    created_at: int
    total: int
    chunks: int
    #: the plan of the key that created it: the lines run under its quotas
    plan: str = ""
    key_id: str = ""
    status: str = "validating"
    metadata: dict | None = None
    #: per finished chunk: [lines answered, lines failed, USD]; a chunk counts once however often it ran
    chunk_counts: dict[str, list] = field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None
    #: epoch seconds of each status change reached: in_progress_at, cancelling_at, completed_at...
    times: dict[str, int] = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)
    #: its Bedrock batch job, once handed one: state (submitted, done), arn, model, route
    bedrock: dict | None = None

    @property
    def completed(self) -> int:
        return sum(int(counts[0]) for counts in self.chunk_counts.values())

    @property
    def failed(self) -> int:
        return sum(int(counts[1]) for counts in self.chunk_counts.values())

    @property
    def cost_usd(self) -> float:
        return sum(float(counts[2]) for counts in self.chunk_counts.values())

    @property
    def expires_at(self) -> int:
        return self.created_at + WINDOW_S[self.completion_window]

    def to_openai(self) -> dict:
        times = self.times
        return {
            "id": self.id, "object": "batch", "endpoint": self.endpoint,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "input_file_id": self.input_file_id, "completion_window": self.completion_window,
            "status": self.status, "output_file_id": self.output_file_id, "error_file_id": self.error_file_id,
            "created_at": self.created_at, "in_progress_at": times.get("in_progress_at"),
            "expires_at": self.expires_at, "finalizing_at": times.get("finalizing_at"),
            "completed_at": times.get("completed_at"), "failed_at": times.get("failed_at"),
            "expired_at": times.get("expired_at"), "cancelling_at": times.get("cancelling_at"),
            "cancelled_at": times.get("cancelled_at"),
            "request_counts": {"total": self.total, "completed": self.completed, "failed": self.failed},
            "metadata": self.metadata,
            # not OpenAI's: what the batch has cost so far, at the price of the path each line ran on
            "usage_cost_usd": round(self.cost_usd, 8),
        }


def chunk_ranges(total: int, chunk_lines: int) -> list[tuple[int, int]]:
    """``(first, last)`` line indexes (0-based, inclusive) of each queue message's share."""
    return [(start, min(start + chunk_lines, total) - 1) for start in range(0, total, chunk_lines)]


#: the error of a line its batch's completion window ended before (OpenAI's code and words)
EXPIRED_ERROR = {"code": "batch_expired",
                 "message": "This request could not be executed before the completion window expired."}


def output_line(request_id: str, custom_id: str, status_code: int | None, body: dict | None,
                error: dict | None = None) -> dict:
    """A line of the output file (2xx) or error file (otherwise), in OpenAI's format; a line that
    never ran has an ``error`` and no ``response``."""
    response = None if status_code is None else {"status_code": status_code, "request_id": request_id, "body": body}
    return {"id": f"batch_req_{request_id}", "custom_id": custom_id, "response": response, "error": error}


def answered_ok(record: dict) -> bool:
    """Whether a kept line record goes to the output file (else to the error file)."""
    status = record.get("status_code")
    return status is not None and 200 <= status < 300


def check_create(body: dict) -> tuple[str, str, str, dict | None]:
    """``POST /v1/batches``' fields: ``(input_file_id, endpoint, completion_window, metadata)``."""
    file_id = body.get("input_file_id")
    if not isinstance(file_id, str) or not file_id:
        raise RequestError("input_file_id is required", param="input_file_id")
    endpoint = body.get("endpoint")
    if endpoint not in BATCH_ENDPOINTS:
        raise RequestError(f"endpoint must be one of {', '.join(BATCH_ENDPOINTS)}", param="endpoint")
    window = body.get("completion_window")
    if window not in COMPLETION_WINDOWS:
        raise RequestError(f"completion_window must be one of {', '.join(COMPLETION_WINDOWS)}",
                           param="completion_window")
    metadata = body.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or len(metadata) > 16 or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512
            for k, v in metadata.items())):
        raise RequestError("metadata must map at most 16 keys (64 characters) to strings (512 characters)",
                           param="metadata")
    return file_id, endpoint, window, metadata


#: prompt bytes per token, for a cheap estimate of a queued line's prompt (no tokenizer at upload)
PROMPT_BYTES_PER_TOKEN = 4


def line_tokens(body: dict, route: RouteConfig) -> tuple[int, int]:
    """A chat line's estimated ``(prompt, completion)`` tokens: its messages' bytes / 4, and the
    completion tokens it asks for (the route's ``default-max-tokens`` when it asks none)."""
    prompt = len(json.dumps(body.get("messages", ""), ensure_ascii=False)) // PROMPT_BYTES_PER_TOKEN
    asked = body.get("max_completion_tokens") or body.get("max_tokens")
    completion = asked if isinstance(asked, int) and asked > 0 else route.default_max_tokens
    return max(1, prompt), min(completion, route.max_tokens)


def queued_work(bodies: Iterable[dict], routes: dict[str, RouteConfig]) -> dict[str, tuple[int, int, int]]:
    """A chat batch's ``(lines, prompt tokens, completion tokens)`` per route its lines name (lines
    naming no chat route are left out: they fail when they run)."""
    work: dict[str, list[int]] = {}
    for body in bodies:
        route = routes.get(body.get("model")) if isinstance(body.get("model"), str) else None
        if route is None or route.kind != "chat":
            continue
        prompt, completion = line_tokens(body, route)
        totals = work.setdefault(body["model"], [0, 0, 0])
        totals[0] += 1
        totals[1] += prompt
        totals[2] += completion
    return {name: (lines, prompt, completion) for name, (lines, prompt, completion) in work.items()}
