"""The base of the stores that live on one DynamoDB table."""

from __future__ import annotations


class TableStore:
    """A store on the table named ``table``; its client comes from ``client_factory`` on each use
    (``AwsClients`` makes it once, on first use, so building a store costs no boto3 import)."""

    def __init__(self, client_factory, table: str) -> None:
        self._client_factory = client_factory
        self._table = table

    @property
    def _client(self):
        return self._client_factory()
