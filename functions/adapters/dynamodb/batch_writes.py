"""``BatchWriteItem`` until every request is applied: 25 requests a call, and the ones DynamoDB
leaves unprocessed (throttled) sent again with backoff, as its documentation advises."""

from __future__ import annotations

import time


def write_all(client, table: str, requests: list[dict]) -> None:
    """Apply ``requests`` (``PutRequest`` / ``DeleteRequest`` items) to ``table``; raises
    ``RuntimeError`` when some stay unprocessed after retries."""
    for start in range(0, len(requests), 25):
        pending = {table: requests[start:start + 25]}
        for attempt in range(8):
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            if not pending:
                break
            time.sleep(0.05 * 2 ** attempt)  # DynamoDB throttled part of the batch: back off
        if pending:
            raise RuntimeError(f"DynamoDB kept {len(pending[table])} writes to {table} unprocessed")
