"""Writes that count once when sent twice: per-writer sequence marks on DynamoDB items.

    w_<writer>   the number (``WriteBatch.seq``) of the last write of <writer> applied to this item

(A store may keep two kinds of a writer's writes apart under another prefix, when they may be in
flight at once: ``a_<writer>`` marks quota acquires, whose numbers run beside its settles'.)

A write that timed out (or lost its connection, or got a 5xx) may have been applied all the same,
and sending an ``ADD`` again would count it twice. So a writer (one instance's ledger, quota
leases or spend leases) numbers its writes in increasing order, sends a failed one again exactly
as it was, under its own number, before any newer write to the same item, and never has two of
its writes to one item in flight at once. Each write is conditional on the item's mark being
below its number and sets the mark in the same update: a second copy, or a late copy arriving
after a newer write, finds the mark at or past its number and changes nothing. One number per
writer and item suffices, where a set of write ids would grow with every write; the price is
about 20 bytes per writer that wrote to the item.

A marked write asks for the item as it was when its condition failed (``ALL_OLD``), so that
``update_once`` tells "applied by an earlier copy" (the mark) from "refused by its own condition".
"""

from __future__ import annotations

import re

from botocore.exceptions import BotoCoreError, ClientError

from ...core.ports import WriteBatch
from .numbers import number

_WRITER = re.compile(r"^[A-Za-z0-9]{1,40}$")
NOT_APPLIED = "(attribute_not_exists(#w) OR #w < :seq)"


class TruncatedAnswerError(BotoCoreError):
    """A 200 without the body it announced (the server died while answering): the write may have
    been applied, and what it returned is unknown, so it is a failure like a timeout."""

    fmt = "DynamoDB answered UpdateItem without the attributes asked for (a truncated response)"


def conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def written_if_allowed(write, **request) -> bool:
    """Send one conditional write (``write`` is e.g. ``client.put_item``): whether it was applied.
    A refusal by its own condition is an answer (someone was first), not an error; other errors raise."""
    try:
        write(**request)
    except ClientError as exc:
        if conditional_failed(exc):
            return False
        raise
    return True


def marked(request: dict, batch: WriteBatch, mark: str = "w") -> dict:
    """``request`` (an ``UpdateItem``) applied only if ``batch`` is not yet, and marking it applied
    (in ``<mark>_<writer>``). The mark joins the ``UpdateExpression``'s ``SET`` clause, which must
    come last, or starts one."""
    if not _WRITER.match(batch.writer):
        raise ValueError(f"writer id {batch.writer!r} must be 1-40 letters or digits")
    request.setdefault("ExpressionAttributeNames", {})["#w"] = f"{mark}_{batch.writer}"
    request.setdefault("ExpressionAttributeValues", {})[":seq"] = number(batch.seq)
    update = request["UpdateExpression"]
    request["UpdateExpression"] = update + (", #w = :seq" if " SET " in f" {update}" else " SET #w = :seq")
    condition = request.get("ConditionExpression")
    request["ConditionExpression"] = f"{_grouped(condition)} AND {NOT_APPLIED}" if condition else NOT_APPLIED
    request["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return request


def _grouped(condition: str) -> str:
    """``condition`` in parentheses, unless it is in a pair already (DynamoDB refuses two)."""
    depth = 0
    for index, char in enumerate(condition):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return condition if char == ")" and index == len(condition) - 1 else f"({condition})"
    return f"({condition})"


def update_once(client, request: dict, batch: WriteBatch | None, mark: str = "w") -> tuple[bool, dict]:
    """Send ``request`` (an ``UpdateItem``; marked with ``batch`` when one is given):
    ``(True, item)`` when it is applied, now or by an earlier copy (the item after it, as
    ``ReturnValues`` asks, or as it was when the copy was refused), ``(False, item as it was)``
    when its own condition refused it (ask for ``ALL_OLD`` to see it). An answer without the
    attributes asked for raises ``TruncatedAnswerError``."""
    try:
        answer = client.update_item(**(marked(request, batch, mark) if batch else request))
    except ClientError as exc:
        if not conditional_failed(exc):
            raise
        old = exc.response.get("Item") or {}
        applied = old.get(f"{mark}_{batch.writer}") if batch else None
        return applied is not None and float(applied["N"]) >= batch.seq, old
    if request.get("ReturnValues", "NONE") != "NONE" and "Attributes" not in answer:
        raise TruncatedAnswerError()
    return True, answer.get("Attributes", {})
