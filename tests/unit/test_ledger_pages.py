"""Ledger pages name their fields, so records read across versions: a page written before
``estimated`` existed reads with its default, and a field this version does not know is skipped."""

from __future__ import annotations

import json
import zlib
from dataclasses import replace

from functions.adapters.dynamodb.ledger_records import _page, _records
from functions.core.usage_ledger import LedgerEntry

ENTRY = LedgerEntry(request_id="r1", at=1_700_000_000.0, tenant_id="acme", route="chat", tier="serverless",
                    outcome="error", status=502, error_code="upstream_stream_incomplete", cache_status="miss",
                    prompt_tokens=40, completion_tokens=7, cached_tokens=0, cost_usd=0.001, latency_ms=12.5,
                    estimated=True)


def _item(fields: list[str], rows: list[list]) -> dict:
    body = json.dumps({"fields": fields, "rows": rows}).encode()
    return {"records": {"B": zlib.compress(body)}}


def test_an_estimated_record_round_trips():
    assert _records(_page("acme", "2023-11-14", [ENTRY], 0)) == [ENTRY]


def test_a_page_from_before_the_estimated_field_reads_as_not_estimated():
    fields = [name for name in LedgerEntry.__dataclass_fields__ if name != "estimated"]
    old = _item(fields, [[getattr(ENTRY, name) for name in fields]])
    assert _records(old) == [replace(ENTRY, estimated=False)]


def test_a_field_from_a_later_version_is_skipped():
    fields = [*LedgerEntry.__dataclass_fields__, "gpu_seconds"]
    newer = _item(fields, [[*(getattr(ENTRY, name) for name in LedgerEntry.__dataclass_fields__), 3.5]])
    assert _records(newer) == [ENTRY]
