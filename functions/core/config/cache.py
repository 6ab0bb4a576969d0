"""Response-cache settings, per route (``[routes.NAME.cache]``)."""

from __future__ import annotations

from pydantic import Field

from ._base import Section


class RouteCacheConfig(Section):
    exact: bool = True
    semantic: bool = False
    #: seconds an answer stays servable
    ttl_s: int = Field(default=3600, alias="ttl-s", gt=0)
    #: cache answers of non-deterministic requests (temperature > 0) too
    cache_nondeterministic: bool = Field(default=False, alias="cache-nondeterministic")
    #: cosine similarity at or above which a semantic hit is served
    similarity_threshold: float = Field(default=0.9, alias="similarity-threshold", gt=0, le=1)
    #: share cached answers across tenants (only for routes whose answers hold no tenant data)
    share_across_tenants: bool = Field(default=False, alias="share-across-tenants")
