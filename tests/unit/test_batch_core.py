"""The Batch API's pure parts: the upload's frame checked line by line, create's fields, the batch
object as OpenAI renders it, chunks, and multipart parsing."""

from __future__ import annotations

import json

import pytest

from functions.core.batch import BatchJob, check_create, chunk_ranges, new_batch_id, parse_batch_file
from functions.core.errors import RequestError
from functions.gateway.batch_endpoint import parse_multipart


def line(custom_id: str = "a", **overrides) -> bytes:
    row = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": {"model": "chat"}}
    return json.dumps({**row, **overrides}).encode()


def test_lines_are_numbered_as_an_editor_shows_them_and_blank_lines_skipped():
    parsed = parse_batch_file(b"\n".join([line("a"), b"", line("b")]), max_lines=10)
    assert [(item.number, item.custom_id) for item in parsed] == [(1, "a"), (3, "b")]


@pytest.mark.parametrize("bad, message", [
    (b"[1, 2]", "line 2: not a JSON object"),
    (line("a"), "line 2: custom_id 'a' is used by an earlier line"),
    (line("b", method="GET"), "line 2: method must be POST"),
    (line("b", url="/v1/completions"), "line 2: url must be one of"),
    (line("b", body="text"), "line 2: body must be a JSON object"),
    (line(""), "line 2: custom_id must be a string"),
])
def test_a_bad_line_is_named(bad, message):
    with pytest.raises(RequestError) as refused:
        parse_batch_file(line("a") + b"\n" + bad, max_lines=10)
    assert refused.value.message.startswith(message) and refused.value.param == "file"


def test_too_many_lines_and_no_lines_are_refused():
    with pytest.raises(RequestError, match="line 3: the file holds more than 2"):
        parse_batch_file(b"\n".join(line(str(n)) for n in range(3)), max_lines=2)
    with pytest.raises(RequestError, match="no request lines"):
        parse_batch_file(b"\n\n", max_lines=2)


def test_create_checks_each_field_by_name():
    good = {"input_file_id": "file-1", "endpoint": "/v1/embeddings", "completion_window": "24h"}
    assert check_create(good) == ("file-1", "/v1/embeddings", "24h", None)
    for field, value in (("endpoint", "/v1/responses"), ("completion_window", "1h"), ("input_file_id", ""),
                         ("metadata", {"k": 1})):
        with pytest.raises(RequestError) as refused:
            check_create({**good, field: value})
        assert refused.value.param == field


def test_batch_object_counts_each_chunk_once_and_sorts_by_creation():
    job = BatchJob(id="batch_x", tenant_id="acme", input_file_id="file-1", endpoint="/v1/chat/completions",
                   completion_window="24h", created_at=100, total=5, chunks=2,
                   chunk_counts={"0": ["2", "1", "0.5"], "1": ["2", "0", "0.25"]})
    rendered = job.to_openai()
    assert rendered["request_counts"] == {"total": 5, "completed": 4, "failed": 1}
    assert rendered["expires_at"] == 100 + 86_400 and rendered["usage_cost_usd"] == 0.75
    assert new_batch_id(1000.0) < new_batch_id(1000.001)
    assert chunk_ranges(5, 2) == [(0, 1), (2, 3), (4, 4)]


def test_multipart_upload_as_the_sdk_sends_it():
    body = (b"--XX\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
            b"--XX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n{\"a\": 1}\n\r\n--XX--\r\n")
    parts = parse_multipart("multipart/form-data; boundary=XX", body)
    assert parts["purpose"] == (None, b"batch")
    assert parts["file"] == ("in.jsonl", b"{\"a\": 1}\n")
    with pytest.raises(RequestError):
        parse_multipart("application/json", b"{}")
