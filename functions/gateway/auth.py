"""API-key authentication: ``Authorization: Bearer KEY`` -> SHA-256 -> key store -> tenant.

Lookups are cached in-process for ``key_cache_s`` (hits and misses alike), so a hot key costs no
DynamoDB read per request; a revoked key stops working within that time.

When the key store cannot answer (down, or no answer within its deadline), a key in the cache
keeps working until its entry expires; any other key gets a 503 ``storage_unavailable`` with
Retry-After, not a 401: the key may well be valid, and nothing about the failure is cached.
"""

from __future__ import annotations

import time

from ..adapters.store_calls import call_store
from ..core.config import TierupConfig
from ..core.context import Tenant
from ..core.errors import AuthenticationError
from ..core.keys import ApiKeyRecord, hash_api_key
from ..core.ports import KeyStore

_NEGATIVE_TTL_S = 5.0


class Authenticator:
    def __init__(self, store: KeyStore, config: TierupConfig) -> None:
        self._store = store
        self._config = config
        self._ttl = config.gateway.key_cache_s
        self._cache: dict[str, tuple[float, Tenant | None]] = {}

    async def authenticate(self, authorization: str | None) -> Tenant:
        if not authorization:
            raise AuthenticationError("missing API key: send 'Authorization: Bearer <key>'")
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise AuthenticationError("malformed Authorization header: expected 'Bearer <key>'")
        key_hash = hash_api_key(key)
        now = time.monotonic()
        cached = self._cache.get(key_hash)
        if cached is not None and cached[0] > now:
            tenant = cached[1]
        else:
            record = await call_store(self._store.get, key_hash, store="keys")
            tenant = self._tenant(record)
            ttl = self._ttl if tenant is not None else min(self._ttl, _NEGATIVE_TTL_S)
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[key_hash] = (now + ttl, tenant)
        if tenant is None:
            raise AuthenticationError("invalid or revoked API key")
        return tenant

    def _tenant(self, record: ApiKeyRecord | None) -> Tenant | None:
        if record is None or record.revoked:
            return None
        plan = self._config.plan_for(record.plan, record.tenant_id)
        return Tenant(tenant_id=record.tenant_id, plan_name=record.plan, plan=plan, key_id=record.key_id)
