"""In-memory fake of ``ResponseStore`` (stored Responses, looked up by tenant and id)."""

from __future__ import annotations

import time


class FakeResponseStore:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], object] = {}

    def get(self, tenant_id: str, response_id: str):
        stored = self.items.get((tenant_id, response_id))
        return stored if stored is not None and stored.expires_at > time.time() else None

    def put(self, stored) -> None:
        self.items[stored.tenant_id, stored.response_id] = stored

    def delete(self, tenant_id: str, response_id: str) -> bool:
        return self.items.pop((tenant_id, response_id), None) is not None
