"""The usage ledger's per-request records on DynamoDB (``usage`` table), written in pages.

    pk = "ledger#<tenant>#<YYYY-MM-DD>#<shard>"   sk = "<first record's epoch ms, 13 digits>#<its request id>"
    records = zlib(JSON list of records)          count = number of records in the page

One flush writes each tenant's records of a day as pages of up to ``PAGE_RECORDS`` records, a
few ``BatchWriteItem`` calls a second however busy the instance is. An item per request would
cost one write unit and about a quarter of a millisecond of botocore CPU per request, on the
same core as the event loop; a page costs a few write units per thousand requests. The shard
(a hash of the page's first request id) spreads a hot tenant's pages over ``SHARDS`` partition
keys; reading a day queries every shard.

Each page names its fields, so a page written before a field existed (``estimated``: tokens the
gateway counted because the provider reported none) reads with the field's default, and a field
this version does not know is skipped.
"""

from __future__ import annotations

import json
import zlib
from collections import defaultdict
from dataclasses import fields
from datetime import datetime, timezone

from ...core.usage_ledger import LedgerEntry
from .batch_writes import write_all
from .numbers import number
from .storage_errors import translates_storage_errors

SHARDS = 16
#: records in one item: about 60 bytes each compressed, far under DynamoDB's 400 KB item limit
PAGE_RECORDS = 1000
_FIELDS = tuple(spec.name for spec in fields(LedgerEntry))
_KNOWN = frozenset(_FIELDS)


def _day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d")


def _page(tenant_id: str, day: str, entries: list[LedgerEntry], expires_at: int) -> dict:
    first = entries[0]
    shard = zlib.crc32(first.request_id.encode()) % SHARDS
    rows = [[getattr(entry, name) for name in _FIELDS] for entry in entries]
    body = json.dumps({"fields": _FIELDS, "rows": rows}, separators=(",", ":")).encode()
    return {"pk": {"S": f"ledger#{tenant_id}#{day}#{shard}"},
            "sk": {"S": f"{int(first.at * 1000):013d}#{first.request_id}"},
            "records": {"B": zlib.compress(body, 6)},
            "count": number(len(entries)),
            "expires_at": number(expires_at)}


def _records(item: dict) -> list[LedgerEntry]:
    page = json.loads(zlib.decompress(item["records"]["B"]))
    known = [(index, name) for index, name in enumerate(page["fields"]) if name in _KNOWN]
    return [LedgerEntry(**{name: row[index] for index, name in known}) for row in page["rows"]]


class DynamoLedgerRecords:
    def __init__(self, client_factory, table: str, *, keep_days: int = 35) -> None:
        self._client_factory = client_factory
        self._table = table
        self._keep_s = keep_days * 86400

    @translates_storage_errors("ledger")
    def put_many(self, entries: list[LedgerEntry]) -> None:
        by_tenant_day: dict[tuple[str, str], list[LedgerEntry]] = defaultdict(list)
        for entry in entries:
            by_tenant_day[(entry.tenant_id, _day(entry.at))].append(entry)
        pages = [_page(tenant_id, day, group[start:start + PAGE_RECORDS],
                       int(group[start].at) + self._keep_s)
                 for (tenant_id, day), group in by_tenant_day.items()
                 for start in range(0, len(group), PAGE_RECORDS)]
        write_all(self._client_factory(), self._table, [{"PutRequest": {"Item": page}} for page in pages])

    @translates_storage_errors("ledger")
    def put_each(self, entries: list[LedgerEntry]) -> None:
        """Each entry in a page of its own, as ``put_many([entry])`` writes it, 25 a call: an entry
        written again overwrites its own page (its key is the entry's start time and request id),
        so a writer that cannot know whether a record was written may write it again."""
        pages = [_page(entry.tenant_id, _day(entry.at), [entry], int(entry.at) + self._keep_s) for entry in entries]
        write_all(self._client_factory(), self._table, [{"PutRequest": {"Item": page}} for page in pages])

    @translates_storage_errors("ledger")
    def day(self, tenant_id: str, day: str) -> list[LedgerEntry]:
        client = self._client_factory()
        found: list[LedgerEntry] = []
        for shard in range(SHARDS):
            request = {"TableName": self._table, "KeyConditionExpression": "pk = :pk",
                       "ExpressionAttributeValues": {":pk": {"S": f"ledger#{tenant_id}#{day}#{shard}"}},
                       "ConsistentRead": True}
            while True:
                response = client.query(**request)
                for item in response["Items"]:
                    found.extend(_records(item))
                if "LastEvaluatedKey" not in response:
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return sorted(found, key=lambda e: e.at)
