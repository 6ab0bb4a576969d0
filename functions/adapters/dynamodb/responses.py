"""``ResponseStore`` on DynamoDB: stored Responses in the ``state`` table.

    pk = "response#<tenant id>#<response id>"   sk = "response"   body (B), conversation (B),
                                                                   tenant, expires_at (TTL)

The tenant's id is part of the key, so a read can only ever find the caller's own responses
(another tenant's id in the path reads a key that does not exist); the stored ``tenant`` is
checked again on the way out, and a delete is conditional on it. DynamoDB deletes expired
items only eventually, so a read checks ``expires_at`` itself.
"""

from __future__ import annotations

import time

from ...core.stored_responses import StoredResponse
from .numbers import number
from .storage_errors import translates_storage_errors
from .table_store import TableStore

SORT_KEY = "response"


def _key(tenant_id: str, response_id: str) -> dict:
    return {"pk": {"S": f"response#{tenant_id}#{response_id}"}, "sk": {"S": SORT_KEY}}


class DynamoResponseStore(TableStore):
    @translates_storage_errors("responses")
    def get(self, tenant_id: str, response_id: str) -> StoredResponse | None:
        item = self._client.get_item(TableName=self._table, Key=_key(tenant_id, response_id),
                                     ConsistentRead=True).get("Item")
        if not item or item["tenant"]["S"] != tenant_id:
            return None
        expires_at = int(item["expires_at"]["N"])
        if expires_at <= time.time():
            return None
        return StoredResponse(response_id=response_id, tenant_id=tenant_id, body=item["body"]["B"],
                              conversation=item["conversation"]["B"], expires_at=expires_at)

    @translates_storage_errors("responses")
    def put(self, stored: StoredResponse) -> None:
        self._client.put_item(TableName=self._table, Item={
            **_key(stored.tenant_id, stored.response_id), "tenant": {"S": stored.tenant_id},
            "body": {"B": stored.body}, "conversation": {"B": stored.conversation},
            "expires_at": number(stored.expires_at)})

    @translates_storage_errors("responses")
    def delete(self, tenant_id: str, response_id: str) -> bool:
        client = self._client
        try:
            old = client.delete_item(TableName=self._table, Key=_key(tenant_id, response_id), ReturnValues="ALL_OLD",
                                     ConditionExpression="tenant = :tenant",
                                     ExpressionAttributeValues={":tenant": {"S": tenant_id}}).get("Attributes")
        except client.exceptions.ConditionalCheckFailedException:  # none, or (never) another tenant's
            return False
        return bool(old) and int(old["expires_at"]["N"]) > time.time()
