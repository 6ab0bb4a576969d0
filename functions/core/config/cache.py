"""Response-cache settings: per route (``[routes.NAME.cache]``) and for the whole gateway (``[cache]``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ._base import Section

#: tenant ids may not start with this: it marks the cache's own scopes (``core.cache.keys.SHARED_SCOPE``)
RESERVED_TENANT_PREFIX = "*"


class RouteCacheConfig(Section):
    exact: bool = True
    semantic: bool = False
    #: seconds an answer stays servable
    ttl_s: int = Field(default=3600, alias="ttl-s", gt=0)
    #: cache answers of non-deterministic requests (temperature > 0) too
    cache_nondeterministic: bool = Field(default=False, alias="cache-nondeterministic")
    #: cosine similarity at or above which a semantic hit is served (a fixed rule; routes that set
    #: max-wrong-hit-rate learn theirs instead). Chosen for all-MiniLM-L6-v2
    #: on Quora Question Pairs with the near-miss guards on (bench/semantic_cache.py: lower serves
    #: more paraphrases and more wrong answers); Titan's similarities are on another scale:
    #: measure before changing embedder
    similarity_threshold: float = Field(default=0.96, alias="similarity-threshold", gt=0, le=1)
    #: refuse semantic hits whose negations (explicit or by affix), numbers, dates, names, argument
    #: order around a relation, question word, comparatives or opposites differ from the cached
    #: question, or whose script the embedder cannot read; a question that points outside its text
    #: ("this dog") is neither looked up nor stored for paraphrases (core/cache/near_miss.py, guards/)
    near_miss_guards: bool = Field(default=True, alias="near-miss-guards")
    #: share cached answers across tenants (only for routes whose answers hold no tenant data)
    share_across_tenants: bool = Field(default=False, alias="share-across-tenants")
    #: a hit counts its original tokens against the tenant's quota (default: hits are free)
    charge_hits: bool = Field(default=False, alias="charge-hits")
    #: the promised share of semantic hits that are wrong (e.g. 0.01): the route learns the lowest
    #: similarity that keeps the promise from its own traffic (core/cache/calibration.py) and serves
    #: no semantic hit until it has the observations to prove one
    max_wrong_hit_rate: float | None = Field(default=None, alias="max-wrong-hit-rate", gt=0, lt=0.5)
    #: share of would-be semantic hits sent to the model anyway to check them (billed as usual,
    #: marked ``calibration`` in the ledger)
    calibration_share: float = Field(default=0.02, alias="calibration-share", ge=0, le=1)
    #: how the observations prove a threshold: ``model`` fits a logistic curve of the wrong rate on
    #: similarity to every observation and bounds the wrong rate above each threshold (far fewer
    #: observations; the promise assumes the curve's shape, checked at every fit, with ``exact`` as
    #: the fallback when it fails); ``exact`` tests the observations above each threshold alone and
    #: assumes nothing (core/cache/calibration.py, calibration_model.py). ``estimate`` fits the same
    #: curve and serves a candidate when its own estimated chance of being wrong (at
    #: ``calibration-confidence``) is within the bound, so the hits served are wrong less often than
    #: the bound on average; it states no chance of failure. ``exact`` by default: its 95% holds for
    #: the route's life whatever the curve; on Quora pairs it proves nothing at 1% from 5,000 pairs,
    #: where ``estimate`` served 5% of duplicates at 0.5% wrong (bench/semantic_cache.py)
    calibration_method: Literal["model", "estimate", "exact"] = Field(default="exact", alias="calibration-method")
    #: with ``calibration-method = "estimate"``: the one-sided level of each candidate's estimate
    #: (0.5: the curve's point estimate; 0.95: the upper end of its 95% profile-likelihood interval)
    calibration_confidence: float = Field(default=0.5, alias="calibration-confidence", ge=0.5, lt=1)
    #: candidates below this similarity are neither served nor observed
    calibration_floor: float = Field(default=0.80, alias="calibration-floor", gt=0, lt=1)
    #: two free-text answers agree when their embeddings are at least this alike (short answers
    #: must be equal)
    answer_match_similarity: float = Field(default=0.90, alias="answer-match-similarity", gt=0, le=1)

    @model_validator(mode="after")
    def _one_rule_for_semantic_hits(self) -> RouteCacheConfig:
        if self.max_wrong_hit_rate is not None and "similarity_threshold" in self.model_fields_set:
            raise ValueError("set either similarity-threshold (a fixed threshold) or max-wrong-hit-rate (a "
                             "promised share of wrong hits, with a learnt threshold), not both")
        return self


class CacheConfig(Section):
    """``[cache]``: what every route's cache shares."""

    #: where question embeddings come from: ``auto`` is ``local`` under the simulated provider
    #: (``tierup dev``, tests) and ``titan`` otherwise
    embedder: Literal["auto", "local", "titan"] = "auto"
    titan_model: str = Field(default="amazon.titan-embed-text-v2:0", alias="titan-model")
    #: Titan v2 output size (256, 512 or 1024): smaller vectors make smaller cache items
    titan_dimensions: Literal[256, 512, 1024] = Field(default=512, alias="titan-dimensions")
    #: Bedrock region for Titan (default: the ``serverless`` Bedrock tier's region, else the
    #: gateway's); read through ``titan_region``, by the gateway and the stack's IAM grant alike
    titan_region: str | None = Field(default=None, alias="titan-region")
    #: exact answers kept in each instance's memory in front of DynamoDB
    l1_entries: int = Field(default=2048, alias="l1-entries", ge=0)
    #: longest an in-memory answer is served; bounds how stale a purge can leave an instance
    l1_ttl_s: int = Field(default=60, alias="l1-ttl-s", ge=0)
    #: LSH: hash tables (each lookup queries one bucket per table)
    lsh_tables: int = Field(default=8, alias="lsh-tables", ge=1, le=32)
    #: LSH: bits per bucket id (2^bits buckets per table and scope). Lookups read only the newest
    #: bucket-read-limit items of a bucket, so buckets must stay small as a scope grows: 14 bits
    #: keep ~6 entries per bucket at 100,000 entries, and still find 95% of neighbours at cosine 0.97
    lsh_bits: int = Field(default=14, alias="lsh-bits", ge=1, le=24)
    #: newest items read per bucket: items read per lookup are at most lsh-tables x this
    bucket_read_limit: int = Field(default=16, alias="bucket-read-limit", ge=1, le=1000)
    #: answers are zlib-compressed above this size (bytes)
    compress_over_bytes: int = Field(default=4096, alias="compress-over-bytes", ge=0)


def titan_region(config) -> str | None:
    """The one region Titan is called in and granted in: ``[cache] titan-region``, else the
    ``serverless`` tier's region when that tier is Bedrock, else None (the gateway's own region).
    ``config`` is the whole ``TierupConfig`` (the tiers live outside ``[cache]``)."""
    if config.cache.titan_region:
        return config.cache.titan_region
    tier = config.tiers.get("serverless")
    if tier is not None and tier.provider == "bedrock" and tier.region:
        return tier.region
    return None
