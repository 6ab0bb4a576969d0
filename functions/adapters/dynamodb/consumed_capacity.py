"""DynamoDB request units counted per call, as DynamoDB reports them (``ConsumedCapacity``).

Every data-plane call a metered client makes asks for ``ReturnConsumedCapacity = TOTAL``, and
the units in the answer are handed to ``count(read_units, write_units)``. Reads (``GetItem``,
``Query``, ...) are read request units and writes write request units, as on-demand bills them.
A conditional write that failed its condition still consumes a write unit (DynamoDB bills it,
but its error answer carries no ``ConsumedCapacity``): it is counted as one.
"""

from __future__ import annotations

from collections.abc import Callable

READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
#: the error of a write whose condition did not hold: billed as (at least) one write unit
_CONDITION_FAILED = "ConditionalCheckFailedException"


def consumed_units(operation: str, parsed: dict) -> tuple[float, float]:
    """(read units, write units) in one DynamoDB answer."""
    consumed = parsed.get("ConsumedCapacity")
    if consumed is None:
        failed = (parsed.get("Error") or {}).get("Code") == _CONDITION_FAILED
        return (0.0, 1.0) if failed and operation in WRITE_OPERATIONS else (0.0, 0.0)
    reads = writes = 0.0
    for table in consumed if isinstance(consumed, list) else [consumed]:
        total = float(table.get("CapacityUnits") or 0.0)
        if operation in READ_OPERATIONS:
            reads += float(table.get("ReadCapacityUnits") or total)
        else:
            writes += float(table.get("WriteCapacityUnits") or total)
    return reads, writes


def count_consumed_capacity(client, count: Callable[[], Callable[[float, float], None] | None]) -> None:
    """Report each call's units to ``count()`` (looked up per call: None counts nothing)."""

    def ask_for_units(params=None, model=None, **_) -> None:
        if count() is not None and model is not None and model.name in READ_OPERATIONS | WRITE_OPERATIONS:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")

    def counted(parsed=None, model=None, **_) -> None:
        counter = count()
        if counter is None or model is None or not isinstance(parsed, dict):
            return
        reads, writes = consumed_units(model.name, parsed)
        if reads or writes:
            counter(reads, writes)

    service_id = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register(f"provide-client-params.{service_id}", ask_for_units)
    client.meta.events.register(f"after-call.{service_id}", counted)
