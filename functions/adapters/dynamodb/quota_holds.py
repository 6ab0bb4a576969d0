"""``QuotaHoldStore`` on DynamoDB (``usage`` table): plan-quota counters with per-holder holds.

    pk = <counter key>   sk = "quota"
    used      settled + every hold: the conditional check is on this
    settled   usage actually spent (what providers reported)
    forfeited holds of dead holders kept as spent (their requests may have been billed)
    h_<id>    what holder <id> (one gateway instance's lease) holds: unspent lease + in flight
    x_<id>    when that hold expires unless its holder renews it (epoch seconds)
    w_<writer>  the last numbered settle of <writer> (one instance's leases) applied (``write_marks``)
    a_<writer>  the last numbered acquire of <writer> applied (apart from settles: both may be in flight)
    expires_at  TTL of the whole item (the end of its window, plus a grace)

Every change is one ``UpdateItem``: admission is atomic across instances, and reclaiming a dead
holder's hold is conditioned on the hold being unchanged since it was read, so it happens once.

A settle given a ``WriteBatch`` is applied once however often it is sent (its answer lost to a
timeout, it is sent again): both of its forms, the release from a live hold and the charge after
a reclaim, set the writer's mark, so the item as it was when a settle's condition failed tells
"applied by an earlier copy" (the mark) from "the hold was reclaimed" (no mark, a hold too small).
An ``acquire`` given a ``WriteBatch`` is likewise applied once: a copy finding ``a_<writer>`` at
its number answers "admitted" (with ``used`` as it is), so the holder adopts the block it holds
already. An unnumbered one whose answer was lost stays in its holder's hold unknown to it,
counted in ``used`` until the hold is reclaimed (then as forfeited), never in ``settled``.
"""

from __future__ import annotations

import re

from botocore.exceptions import ClientError

from ...core.ports import HeldCounter, WriteBatch
from .counters import _number
from .numbers import number
from .storage_errors import translates_storage_errors
from .write_marks import conditional_failed, update_once

SORT_KEY = "quota"
_HOLDER = re.compile(r"^[A-Za-z0-9]{1,40}$")


def _n(value: float) -> dict:
    return number(value)


def _names(holder: str) -> dict:
    if not _HOLDER.match(holder):
        raise ValueError(f"holder id {holder!r} must be 1-40 letters or digits")
    return {"#h": f"h_{holder}", "#x": f"x_{holder}"}


class DynamoQuotaHoldStore:
    def __init__(self, client_factory, table: str) -> None:
        self._client_factory = client_factory
        self._table = table

    def _key(self, key: str) -> dict:
        return {"pk": {"S": key}, "sk": {"S": SORT_KEY}}

    @translates_storage_errors("quota")
    def acquire(self, key: str, holder: str, amount: float, limit: float, hold_until: float,
                expires_at: int, batch: WriteBatch | None = None) -> tuple[bool, float]:
        admitted, item = update_once(self._client_factory(), {
            "TableName": self._table, "Key": self._key(key),
            "UpdateExpression": "ADD used :a, #h :a SET #x = :hu, expires_at = :e",
            "ConditionExpression": "attribute_not_exists(used) OR used <= :room",
            "ExpressionAttributeNames": _names(holder),
            "ExpressionAttributeValues": {":a": _n(amount), ":room": _n(limit - amount),
                                          ":hu": _n(hold_until), ":e": number(int(expires_at))},
            "ReturnValues": "UPDATED_NEW", "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}, batch, mark="a")
        return admitted, _number(item, "used")

    @translates_storage_errors("quota")
    def settle(self, key: str, holder: str, release: float, spend: float, hold_until: float,
               expires_at: int, batch: WriteBatch | None = None) -> float:
        # ALL_NEW, not UPDATED_NEW: a settle of exactly what was held adds 0 to ``used``, and
        # UPDATED_NEW may leave an unchanged attribute out (moto does), which read as 0 used.
        settle_from_hold = {
            "TableName": self._table, "Key": self._key(key),
            "UpdateExpression": "ADD used :d, settled :s, #h :r SET #x = :hu, expires_at = :e",
            "ConditionExpression": "#h >= :release", "ExpressionAttributeNames": _names(holder),
            "ExpressionAttributeValues": {":d": _n(spend - release), ":s": _n(spend), ":r": _n(-release),
                                          ":release": _n(release), ":hu": _n(hold_until),
                                          ":e": number(int(expires_at))},
            "ReturnValues": "ALL_NEW"}
        # The hold was reclaimed (this holder was taken for dead) and already counts in full:
        # only usage beyond what this release held is new.
        charge_after_reclaim = {
            "TableName": self._table, "Key": self._key(key), "UpdateExpression": "ADD used :over, settled :s",
            "ExpressionAttributeValues": {":over": _n(max(spend - release, 0.0)), ":s": _n(spend)},
            "ReturnValues": "ALL_NEW"}
        client = self._client_factory()
        applied, item = update_once(client, settle_from_hold, batch)
        if not applied:  # the hold is gone or too small: reclaimed
            applied, item = update_once(client, charge_after_reclaim, batch)
        return _number(item, "used")

    @translates_storage_errors("quota")
    def reclaim_expired(self, key: str, now: float, *, refund: bool) -> float:
        client = self._client_factory()
        item = client.get_item(TableName=self._table, Key=self._key(key), ConsistentRead=True).get("Item") or {}
        reclaimed = 0.0
        for holder, (held, until) in _holds(item).items():
            if until >= now:
                continue
            try:
                client.update_item(
                    TableName=self._table, Key=self._key(key),
                    UpdateExpression=("ADD used :minus" if refund else "ADD forfeited :held") + " REMOVE #h, #x",
                    ConditionExpression="#h = :held AND #x = :until", ExpressionAttributeNames=_names(holder),
                    ExpressionAttributeValues={":held": _n(held), ":until": _n(until),
                                               **({":minus": _n(-held)} if refund else {})})
            except ClientError as exc:
                if not conditional_failed(exc):
                    raise
                continue  # renewed, settled or reclaimed by another instance since it was read
            reclaimed += held if refund else 0.0
        return reclaimed

    @translates_storage_errors("quota")
    def read_counters(self, keys: list[str]) -> dict[str, HeldCounter]:
        found: dict[str, HeldCounter] = {}
        client = self._client_factory()
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 100):
            request = {self._table: {"Keys": [self._key(k) for k in unique[start:start + 100]],
                                     "ConsistentRead": True}}
            while request:
                response = client.batch_get_item(RequestItems=request)
                for item in response["Responses"].get(self._table, []):
                    found[item["pk"]["S"]] = HeldCounter(used=_number(item, "used"), settled=_number(item, "settled"),
                                                         forfeited=_number(item, "forfeited"), holds=_holds(item))
                request = response.get("UnprocessedKeys") or None
        return found


def _holds(item: dict) -> dict[str, tuple[float, float]]:
    holds = {}
    for name, value in item.items():
        if name.startswith("h_"):
            holder = name[2:]
            holds[holder] = (float(value["N"]), _number(item, f"x_{holder}"))
    return holds
