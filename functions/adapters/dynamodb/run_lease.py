"""``RunLease`` on DynamoDB: one item per job in the ``state`` table.

    pk="lease"  sk=JOB   holder, expires_at (epoch seconds; also the table's TTL attribute)

Taken with one conditional write (free, or expired at ``now``), so two runs that start together
cannot both win; released with a conditional delete that only the holder's own run can make.
This replaces a reserved concurrency of 1, which accounts at the default concurrency quota refuse.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from .numbers import number

_LEASE_PK = "lease"


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoRunLease:
    def __init__(self, client_factory, table: str, job: str) -> None:
        self._client_factory = client_factory
        self._table = table
        self._key = {"pk": {"S": _LEASE_PK}, "sk": {"S": job}}

    def acquire(self, holder: str, now_s: float, hold_until_s: float) -> bool:
        try:
            self._client_factory().put_item(
                TableName=self._table,
                Item={**self._key, "holder": {"S": holder}, "expires_at": number(hold_until_s)},
                ConditionExpression="attribute_not_exists(pk) OR expires_at <= :now",
                ExpressionAttributeValues={":now": number(now_s)})
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def release(self, holder: str) -> None:
        try:
            self._client_factory().delete_item(
                TableName=self._table, Key=self._key, ConditionExpression="holder = :holder",
                ExpressionAttributeValues={":holder": {"S": holder}})
        except ClientError as exc:
            if not _conditional_failed(exc):  # taken over after expiry: the new holder's now
                raise
