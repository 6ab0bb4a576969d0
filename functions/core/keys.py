"""API keys: how they are made and hashed. Only the SHA-256 hash is ever stored.

No I/O here.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

KEY_PREFIX = "tu-"


def generate_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id_of(key_hash: str) -> str:
    """A short, non-secret handle for a key, safe to print and to revoke by."""
    return key_hash[:12]


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    key_hash: str
    tenant_id: str
    plan: str
    created_at: int
    revoked: bool = False
    label: str = ""

    @property
    def key_id(self) -> str:
        return key_id_of(self.key_hash)
