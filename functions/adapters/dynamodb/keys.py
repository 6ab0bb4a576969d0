"""The API-key store on DynamoDB (``keys`` table, partition key = SHA-256 of the key)."""

from __future__ import annotations

from ...core.keys import ApiKeyRecord
from .numbers import number
from .storage_errors import translates_storage_errors
from .table_store import TableStore


class DynamoKeyStore(TableStore):
    @translates_storage_errors("keys")
    def get(self, key_hash: str) -> ApiKeyRecord | None:
        item = self._client.get_item(TableName=self._table, Key={"pk": {"S": key_hash}},
                                     ConsistentRead=True).get("Item")
        return _record(item) if item else None

    @translates_storage_errors("keys")
    def put(self, record: ApiKeyRecord) -> None:
        self._client.put_item(TableName=self._table, Item={
            "pk": {"S": record.key_hash}, "tenant_id": {"S": record.tenant_id}, "plan": {"S": record.plan},
            "created_at": number(record.created_at), "revoked": {"BOOL": record.revoked},
            "label": {"S": record.label}, "key_id": {"S": record.key_id}},
            ConditionExpression="attribute_not_exists(pk)")

    @translates_storage_errors("keys")
    def revoke(self, key_id: str) -> int:
        revoked = 0
        for record in self.list():
            if record.key_id == key_id and not record.revoked:
                self._client.update_item(TableName=self._table, Key={"pk": {"S": record.key_hash}},
                                         UpdateExpression="SET revoked = :t",
                                         ExpressionAttributeValues={":t": {"BOOL": True}})
                revoked += 1
        return revoked

    @translates_storage_errors("keys")
    def list(self, tenant_id: str | None = None) -> list[ApiKeyRecord]:
        records = []
        for page in self._client.get_paginator("scan").paginate(TableName=self._table):
            records.extend(_record(item) for item in page["Items"])
        return [r for r in records if tenant_id is None or r.tenant_id == tenant_id]


def _record(item: dict) -> ApiKeyRecord:
    return ApiKeyRecord(key_hash=item["pk"]["S"], tenant_id=item["tenant_id"]["S"], plan=item["plan"]["S"],
                        created_at=int(item["created_at"]["N"]), revoked=item.get("revoked", {}).get("BOOL", False),
                        label=item.get("label", {}).get("S", ""))
