"""Kill-switch flags, once-only alert markers and the audit trail in the ``state`` table.

Items (``pk`` / ``sk``):

    killswitch / SCOPE              a flag: action, reason, budget, source, engaged_at, until, applied
    marker / alert#SCOPE#PERIOD#T   written once (conditional put): one alert per threshold per period
    audit#YYYY-MM / ISO-TIME#ID     one thing the guardrails did: what, why, when, source

Never holds spend counters (those live in the ``usage`` table behind ``CounterStore``).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone

from ...core.killswitch import AuditEntry, KillSwitchFlag
from .numbers import number
from .storage_errors import translates_storage_errors
from .table_store import TableStore

FLAGS_PK = "killswitch"
MARKERS_PK = "marker"
#: audit entries are kept this long (DynamoDB TTL)
AUDIT_RETENTION_S = 400 * 86400
#: a released-by-period flag is deleted by TTL this long after it stopped applying
FLAG_GRACE_S = 40 * 86400


def _audit_pk(epoch: float) -> str:
    return "audit#" + datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m")


def _previous_month(epoch: float) -> float:
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc).replace(day=1)
    return moment.timestamp() - 86400


class DynamoGuardrailStore(TableStore):
    # -- flags -------------------------------------------------------------------------------

    @translates_storage_errors("kill-switch")
    def flags(self) -> list[KillSwitchFlag]:
        items = []
        request = {"TableName": self._table, "KeyConditionExpression": "pk = :pk",
                   "ExpressionAttributeValues": {":pk": {"S": FLAGS_PK}}, "ConsistentRead": True}
        while True:
            page = self._client.query(**request)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [_flag(item) for item in items]

    @translates_storage_errors("kill-switch")
    def put_flag(self, flag: KillSwitchFlag) -> None:
        item = {"pk": {"S": FLAGS_PK}, "sk": {"S": flag.scope}, "action": {"S": flag.action},
                "reason": {"S": flag.reason}, "budget": {"S": flag.budget}, "source": {"S": flag.source},
                "engaged_at": number(flag.engaged_at)}
        if flag.until is not None:
            item["until"] = number(flag.until)
            item["expires_at"] = number(int(flag.until + FLAG_GRACE_S))
        if flag.applied:
            item["applied"] = {"SS": sorted(flag.applied)}
        self._client.put_item(TableName=self._table, Item=item)

    @translates_storage_errors("kill-switch")
    def add_applied(self, scope: str, step_id: str) -> None:
        self._client.update_item(
            TableName=self._table, Key={"pk": {"S": FLAGS_PK}, "sk": {"S": scope}},
            UpdateExpression="ADD applied :step", ExpressionAttributeValues={":step": {"SS": [step_id]}})

    @translates_storage_errors("kill-switch")
    def delete_flag(self, scope: str) -> bool:
        old = self._client.delete_item(TableName=self._table, Key={"pk": {"S": FLAGS_PK}, "sk": {"S": scope}},
                                       ReturnValues="ALL_OLD")
        return bool(old.get("Attributes"))

    # -- once-only markers ---------------------------------------------------------------------

    @translates_storage_errors("kill-switch")
    def mark_once(self, marker: str, expires_at: int) -> bool:
        client = self._client
        try:
            client.put_item(TableName=self._table,
                            Item={"pk": {"S": MARKERS_PK}, "sk": {"S": marker},
                                  "at": number(time.time()), "expires_at": number(expires_at)},
                            ConditionExpression="attribute_not_exists(pk)")
        except client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    @translates_storage_errors("kill-switch")
    def unmark(self, marker: str) -> None:
        self._client.delete_item(TableName=self._table, Key={"pk": {"S": MARKERS_PK}, "sk": {"S": marker}})

    # -- audit -------------------------------------------------------------------------------

    @translates_storage_errors("kill-switch")
    def append_audit(self, entry: AuditEntry) -> None:
        stamp = datetime.fromtimestamp(entry.at, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self._client.put_item(TableName=self._table, Item={
            "pk": {"S": _audit_pk(entry.at)}, "sk": {"S": f"{stamp}#{uuid.uuid4().hex[:8]}"},
            "at": number(entry.at), "scope": {"S": entry.scope}, "what": {"S": entry.what},
            "why": {"S": entry.why}, "source": {"S": entry.source},
            "detail": {"S": json.dumps(entry.detail, default=str)},
            "expires_at": number(int(entry.at + AUDIT_RETENTION_S))})

    @translates_storage_errors("kill-switch")
    def audit_trail(self, limit: int = 50) -> list[AuditEntry]:
        entries: list[AuditEntry] = []
        now = time.time()
        for month in (now, _previous_month(now)):
            if len(entries) >= limit:
                break
            page = self._client.query(TableName=self._table, KeyConditionExpression="pk = :pk",
                                      ExpressionAttributeValues={":pk": {"S": _audit_pk(month)}},
                                      ScanIndexForward=False, Limit=limit - len(entries))
            entries.extend(_audit(item) for item in page.get("Items", []))
        return entries


def _flag(item: dict) -> KillSwitchFlag:
    return KillSwitchFlag(
        scope=item["sk"]["S"], action=item["action"]["S"], reason=item.get("reason", {}).get("S", ""),
        budget=item.get("budget", {}).get("S", ""), source=item.get("source", {}).get("S", ""),
        engaged_at=float(item["engaged_at"]["N"]),
        until=float(item["until"]["N"]) if "until" in item else None,
        applied=frozenset(item.get("applied", {}).get("SS", [])))


def _audit(item: dict) -> AuditEntry:
    return AuditEntry(at=float(item["at"]["N"]), scope=item["scope"]["S"], what=item["what"]["S"],
                      why=item["why"]["S"], source=item["source"]["S"],
                      detail=json.loads(item.get("detail", {}).get("S", "{}")))
