"""The usage ledger's per-request records on DynamoDB (``usage`` table).

    pk = "ledger#<tenant>#<YYYY-MM-DD>#<shard>"   sk = "<epoch ms, 13 digits>#<request id>"

Written in ``BatchWriteItem`` batches off the request path. The shard (a hash of the request id)
spreads a hot tenant's records over ``SHARDS`` partition keys, so a tenant past DynamoDB's
1,000 writes/s per partition key is not throttled; reading a day queries every shard.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import asdict, fields
from datetime import datetime, timezone

from ...core.usage_ledger import LedgerEntry

SHARDS = 16
_NUMBERS = {"at", "status", "prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd", "latency_ms"}


def _day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d")


def _item(entry: LedgerEntry, expires_at: int) -> dict:
    shard = zlib.crc32(entry.request_id.encode()) % SHARDS
    item = {"pk": {"S": f"ledger#{entry.tenant_id}#{_day(entry.at)}#{shard}"},
            "sk": {"S": f"{int(entry.at * 1000):013d}#{entry.request_id}"},
            "expires_at": {"N": str(expires_at)}}
    for name, value in asdict(entry).items():
        if value is None:
            continue
        item[name] = {"N": repr(value) if isinstance(value, float) else str(value)} if name in _NUMBERS \
            else {"S": str(value)}
    return item


class DynamoLedgerRecords:
    def __init__(self, client_factory, table: str, *, keep_days: int = 35) -> None:
        self._client_factory = client_factory
        self._table = table
        self._keep_s = keep_days * 86400

    def put_many(self, entries: list[LedgerEntry]) -> None:
        client = self._client_factory()
        for start in range(0, len(entries), 25):
            batch = [{"PutRequest": {"Item": _item(e, int(e.at) + self._keep_s)}} for e in entries[start:start + 25]]
            pending = {self._table: batch}
            for attempt in range(8):
                pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(0.05 * 2 ** attempt)  # DynamoDB throttled part of the batch: back off
            if pending:
                raise RuntimeError(f"DynamoDB kept {len(pending[self._table])} ledger records unprocessed")

    def day(self, tenant_id: str, day: str) -> list[LedgerEntry]:
        client = self._client_factory()
        found: list[LedgerEntry] = []
        for shard in range(SHARDS):
            request = {"TableName": self._table, "KeyConditionExpression": "pk = :pk",
                       "ExpressionAttributeValues": {":pk": {"S": f"ledger#{tenant_id}#{day}#{shard}"}},
                       "ConsistentRead": True}
            while True:
                response = client.query(**request)
                found.extend(_entry(item) for item in response["Items"])
                if "LastEvaluatedKey" not in response:
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return sorted(found, key=lambda e: e.at)


def _entry(item: dict) -> LedgerEntry:
    values = {}
    for spec in fields(LedgerEntry):
        raw = item.get(spec.name)
        if raw is None:
            values[spec.name] = None
        elif "N" in raw:
            number = float(raw["N"])
            values[spec.name] = int(number) if spec.name in {"status", "prompt_tokens", "completion_tokens",
                                                            "cached_tokens"} else number
        else:
            values[spec.name] = raw["S"]
    return LedgerEntry(**values)
