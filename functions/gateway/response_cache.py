"""The response cache the pipeline calls: in-process LRU, then DynamoDB exact, then semantic.

    lookup:  plan (route config, determinism, opt-outs)  ->  L1 exact  ->  L2 exact
             ->  semantic: embed the question, read one LSH bucket per table (bounded),
                 rank by cosine, refuse near-misses, fetch the best answer
    store:   exact answer (L1 + L2); semantic answer + one bucket listing per LSH table

A route with ``max-wrong-hit-rate`` serves a semantic hit only at or above the threshold its own
observations prove (core/cache/calibration.py, cache_calibration.py): its best candidate below that
is a miss whose model answer is compared with the cached one (free: the model is called anyway),
and a ``calibration-share`` of would-be hits is sent to the model to be compared too (billed as
usual, ``cache_status = "calibration"`` in the ledger).

A hit is served at no token cost (``Usage(0, 0, cached_tokens=N)``, so the quota guards refund
their reservation) unless the route says ``charge-hits``; what it saved goes in
``ctx.state["cache_saved"]``. The cache never fails a request: a store or embedder error is
logged (once per interval) and treated as a miss. It never serves an expired answer, whatever
DynamoDB still holds. Each store call has the storage deadline; after a store failure the
cache is skipped (a miss, nothing stored) for ``OUTAGE_SKIP_S``, so while DynamoDB is down or
frozen a request does not wait on the cache as well as on everything else.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial

from ..adapters.store_calls import call_store
from ..core.cache.calibration import ThresholdHold, answers_agree
from ..core.cache.entries import CachedAnswer, decode_completion, encode_completion
from ..core.cache.keys import CacheKeys, CachePlan, cache_keys, plan_cache
from ..core.cache.lsh import HyperplaneLSH, cosine, dequantise, quantise
from ..core.cache.near_miss import near_miss_reasons, not_cacheable_reason
from ..core.chat import Completion, Usage
from ..core.config import TierupConfig
from ..core.context import RequestContext
from ..core.errors import StorageUnavailableError
from ..core.ports import BucketItem, CacheStore, Embedder
from ..core.pricing import token_cost_usd
from ..core.rate_limited_log import RateLimitedLog, trace_of
from .cache_calibration import CalibrationBook, calibration_key
from .cache_stats import StatsCounter

log = logging.getLogger("tierup.cache")
_failures = RateLimitedLog(log)

#: after a store failure, the cache is not asked for this long (every request is a miss)
OUTAGE_SKIP_S = 5.0


@dataclass(frozen=True, slots=True)
class _Probe:
    """A semantic candidate the model's answer is to be compared with (a bounded route's observation)."""

    similarity: float
    entry_key: str
    cached: Completion
    #: a would-be hit sent to the model to check it (the call is the promise's cost)
    paid: bool


@dataclass(slots=True)
class _Request:
    """What lookup learnt that store reuses (the keys, and the question's vector if computed)."""

    plan: CachePlan
    keys: CacheKeys
    vector: list[float] | None = None
    probe: _Probe | None = None


class TieredResponseCache:
    """The ``ResponseCache`` port."""

    def __init__(self, config: TierupConfig, store: CacheStore, embedder: Embedder | None = None,
                 clock=time.time, *, monotonic=time.monotonic, chance=random.random, metrics=None) -> None:
        self._config = config
        self._settings = config.cache
        self._store = store
        self._embedder = embedder
        self._clock = clock
        self._lsh: HyperplaneLSH | None = None
        self._l1: OrderedDict[str, tuple[float, CachedAnswer]] = OrderedDict()
        self.stats = StatsCounter(store, clock)
        #: monotonic time until which the store is not asked (it just failed)
        self._skip_until = float("-inf")
        self._monotonic = monotonic
        #: draws in [0, 1) that pick would-be hits for calibration
        self._chance = chance
        self._metrics = metrics
        self.calibration = CalibrationBook(store, monotonic, self._publish if metrics is not None else None)
        #: model thresholds, held from one look to the next
        self._thresholds = ThresholdHold()

    def _store_down(self) -> bool:
        return self._monotonic() < self._skip_until

    def _failed(self, what: str, exc: Exception) -> None:
        self._skip_until = self._monotonic() + OUTAGE_SKIP_S
        if not isinstance(exc, StorageUnavailableError):  # an outage is logged where it happened
            _failures.warning(what, "cache %s failed; serving as a miss", what, exc_info=trace_of(exc))

    # -- lookup -----------------------------------------------------------------------------

    async def lookup(self, ctx: RequestContext) -> Completion | None:
        if ctx.kind != "chat" or ctx.chat is None:
            return None
        plan = plan_cache(ctx.route, ctx.chat, ctx.headers)
        if plan.semantic and self._embedder is None:
            plan = CachePlan(plan.lookup, plan.store, plan.exact, semantic=False)
        if not plan.active:
            return self._bypass(ctx)
        keys = cache_keys(ctx.route_name, ctx.route, ctx.tenant.tenant_id, ctx.chat, ctx.max_tokens)
        if plan.semantic and ctx.route.cache.near_miss_guards and not_cacheable_reason(keys.question):
            # "which breed is this dog?": no paraphrase may share its answer, so it is neither looked up
            # (no embedding) nor stored for paraphrases; the identical request still hits exactly
            plan = CachePlan(plan.lookup, plan.store, plan.exact, semantic=False)
            if not plan.exact:  # a route without exact answers has nothing to do for it
                return self._bypass(ctx)
        request = _Request(plan, keys)
        ctx.state["cache"] = request
        if not plan.lookup:
            return self._bypass(ctx)
        answer, status = None, "miss"
        if not self._store_down():
            try:
                answer, status = await self._find(ctx, request)
            except Exception as exc:
                self._failed("lookup", exc)
        if answer is None:
            ctx.cache_status = "miss"
            probe = request.probe
            self.stats.count(ctx.route_name, "calibration" if probe is not None and probe.paid else "miss")
            return None
        ctx.state["cache_question"] = answer.question
        return self._serve(ctx, answer.completion, status)

    def _bypass(self, ctx: RequestContext) -> None:
        ctx.cache_status = "bypass"
        self.stats.count(ctx.route_name, "bypass")
        return None

    async def _find(self, ctx: RequestContext, request: _Request) -> tuple[CachedAnswer | None, str]:
        # The question is embedded while the exact lookup runs: on a miss, neither waits for the other.
        embedding = asyncio.ensure_future(self._embed(request.keys.question)) if request.plan.semantic else None
        try:
            if request.plan.exact:
                answer = await self._exact(request.keys.exact)
                if answer is not None:
                    return answer, "hit-exact"
            if embedding is not None:
                request.vector = await embedding
                answer = await self._semantic(ctx, request)
                if answer is not None:
                    return answer, "hit-semantic"
            return None, "miss"
        finally:
            if embedding is not None:
                if embedding.done() and not embedding.cancelled():
                    embedding.exception()  # retrieved, so an unused failure is not logged as lost
                embedding.cancel()

    async def _exact(self, key: str) -> CachedAnswer | None:
        now = self._clock()
        held = self._l1.get(key)
        if held is not None:
            if held[0] > now:
                self._l1.move_to_end(key)
                return held[1]
            del self._l1[key]
        answer = await self._fetch("x#" + key)
        if answer is not None:
            self._remember(key, answer)
        return answer

    async def _fetch(self, entry_key: str) -> CachedAnswer | None:
        found = await call_store(self._store.get_answer, entry_key, store="cache")
        if found is None:
            return None
        body, question, expires_at, wrong_at = found
        answer = CachedAnswer(decode_completion(body), question, 0.0, expires_at, wrong_at)
        return answer if answer.fresh(self._clock()) else None

    def _remember(self, key: str, answer: CachedAnswer) -> None:
        if self._settings.l1_entries == 0 or self._settings.l1_ttl_s == 0:
            return
        self._l1[key] = (min(answer.expires_at, self._clock() + self._settings.l1_ttl_s), answer)
        self._l1.move_to_end(key)
        while len(self._l1) > self._settings.l1_entries:
            self._l1.popitem(last=False)

    async def _semantic(self, ctx: RequestContext, request: _Request) -> CachedAnswer | None:
        keys, settings = request.keys, ctx.route.cache
        assert request.vector is not None
        bucket_keys = self._bucket_keys(keys.semantic_scope, request.vector)
        limit = self._settings.bucket_read_limit
        listed = await asyncio.gather(*(call_store(self._store.query_bucket, k, limit, store="cache")
                                       for k in bucket_keys))
        ctx.state["cache_items_read"] = sum(len(items) for items in listed)
        now = self._clock()
        candidates: dict[str, tuple[float, BucketItem]] = {}
        for item in (i for items in listed for i in items):
            if item.entry_key not in candidates and item.expires_at > now:
                candidates[item.entry_key] = (cosine(request.vector, dequantise(item.vector)), item)
        bound = settings.max_wrong_hit_rate
        floor = settings.similarity_threshold if bound is None else settings.calibration_floor
        for score, item in sorted(candidates.values(), key=lambda c: -c[0]):
            if score < floor:
                break
            if settings.near_miss_guards and near_miss_reasons(keys.question, item.question):
                continue
            answer = await self._fetch(item.entry_key)
            if answer is None or answer.completion.usage.completion_tokens > ctx.max_tokens:
                continue
            if score <= answer.wrong_at:  # this entry was seen answering a paraphrase this close wrongly
                continue
            if bound is not None and not await self._servable(ctx, request, score, item.entry_key, answer):
                return None
            ctx.state["cache_similarity"] = round(score, 4)
            return answer
        return None

    async def _servable(self, ctx: RequestContext, request: _Request, score: float, entry_key: str,
                        answer: CachedAnswer) -> bool:
        """On a bounded route: serve the best candidate only at or above the proven threshold, and
        even then send a ``calibration-share`` of them to the model; the rest become observations."""
        settings = ctx.route.cache
        key = self._calibration_key(ctx.route_name)
        calibration = await self.calibration.current(key)
        threshold = self._thresholds.threshold(key, calibration, settings.max_wrong_hit_rate,
                                               settings.calibration_floor, settings.calibration_method,
                                               settings.calibration_confidence)
        ctx.state["cache_threshold"] = threshold
        servable = threshold is not None and score >= threshold
        if servable and self._chance() >= settings.calibration_share:
            return True
        request.probe = _Probe(score, entry_key, answer.completion, paid=servable)
        return False

    def _calibration_key(self, route: str) -> str:
        return calibration_key(route, getattr(self._embedder, "name", "embedder"))

    def _publish(self, key: str, calibration) -> None:
        route_name = key.split("#", 1)[0]
        route = self._config.routes.get(route_name)
        if route is None or route.cache.max_wrong_hit_rate is None:
            return
        settings = route.cache
        measured = calibration.measured(self._thresholds.threshold(
            key, calibration, settings.max_wrong_hit_rate, settings.calibration_floor, settings.calibration_method,
            settings.calibration_confidence))
        try:
            self._metrics.emit_cache_calibration(route_name, measured)
        except Exception as exc:
            _failures.warning("metrics", "cache calibration metric not emitted", exc_info=trace_of(exc))

    async def _embed(self, text: str) -> list[float]:
        assert self._embedder is not None
        return (await asyncio.to_thread(self._embedder.embed, [text]))[0]

    def _bucket_keys(self, semantic_scope: str, vector: list[float]) -> list[str]:
        if self._lsh is None or self._lsh.dimensions != len(vector):
            self._lsh = HyperplaneLSH(len(vector), self._settings.lsh_tables, self._settings.lsh_bits)
        return [f"b#{semantic_scope}#{table}#{bucket:x}" for table, bucket in enumerate(self._lsh.buckets(vector))]

    def _serve(self, ctx: RequestContext, cached: Completion, status: str) -> Completion:
        usage = cached.usage
        tier = ctx.route.start_tier
        saved_usd = token_cost_usd(self._config.pricing, tier, ctx.route.model_for(tier), usage)
        ctx.cache_status = status
        ctx.model = cached.model
        ctx.state["simulated"] = cached.simulated
        ctx.state["cache_saved"] = {"tokens": usage.total_tokens, "usd": saved_usd}
        self.stats.count(ctx.route_name, status, usage.total_tokens, saved_usd)
        if ctx.route.cache.charge_hits:
            served = Usage(usage.prompt_tokens, usage.completion_tokens, cached_tokens=usage.prompt_tokens)
        else:
            served = Usage(prompt_tokens=0, completion_tokens=0, cached_tokens=usage.total_tokens)
        return Completion(text=cached.text, finish_reason=cached.finish_reason, usage=served,
                          model=cached.model, simulated=cached.simulated, tool_calls=cached.tool_calls,
                          logprobs=cached.logprobs, refusal=cached.refusal)

    # -- store ------------------------------------------------------------------------------

    async def store(self, ctx: RequestContext, completion: Completion) -> None:
        request: _Request | None = ctx.state.get("cache")
        if request is not None and request.probe is not None:
            await self._compare(ctx, request.probe, completion)
        if request is None or not request.plan.store or ctx.cache_status.startswith("hit") or self._store_down():
            return
        try:
            await self._store_answer(ctx, request, completion)
        except Exception as exc:
            self._failed("store", exc)

    async def _compare(self, ctx: RequestContext, probe: _Probe, fresh: Completion) -> None:
        """The model answered a question the cache had a candidate for: was the candidate right?"""
        if probe.paid:  # the ledger bills this call as usual and says why it was made
            ctx.cache_status = "calibration"
            self.stats.add(ctx.route_name, {"calibration_tokens": fresh.usage.total_tokens})
        if fresh.finish_reason != "stop":
            return  # a cut-off answer says nothing about the cached one
        settings = ctx.route.cache
        try:
            agreed = await asyncio.to_thread(answers_agree, probe.cached, fresh, self._answer_similarity_sync,
                                             settings.answer_match_similarity)
        except Exception as exc:  # an embedder failure costs one observation, never the request
            _failures.warning("compare", "cache calibration comparison failed", exc_info=trace_of(exc))
            return
        ctx.state["cache_calibration"] = {"similarity": round(probe.similarity, 4), "agreed": agreed}
        self.calibration.observe(self._calibration_key(ctx.route_name), probe.similarity, agreed)
        self.stats.add(ctx.route_name, {"observed_right" if agreed else "observed_wrong": 1})
        if not agreed and not self._store_down():
            try:
                await call_store(self._store.mark_wrong, probe.entry_key, probe.similarity, store="cache")
            except Exception as exc:
                self._failed("mark", exc)

    def _answer_similarity_sync(self, a: str, b: str) -> float:
        if self._embedder is None:
            return 0.0
        first, second = self._embedder.embed([a, b])
        return cosine(first, second)

    async def _store_answer(self, ctx: RequestContext, request: _Request, completion: Completion) -> None:
        body = encode_completion(completion, self._settings.compress_over_bytes)
        if body is None:
            ctx.state["cache_skipped"] = "too_large"
            return
        keys, route = request.keys, ctx.route_name
        now = self._clock()
        # whole seconds, as DynamoDB's TTL wants them, rounded up: an answer is servable for at least
        # ttl-s (int() would cut up to a second off, all of it with ttl-s = 1)
        expires_at = math.ceil(now + ctx.route.cache.ttl_s)
        if request.plan.exact:
            await call_store(partial(self._store.put_answer, scope=keys.scope, route=route),
                             "x#" + keys.exact, body, keys.question, expires_at, store="cache")
            self._remember(keys.exact, CachedAnswer(completion, keys.question, now, expires_at))
        # A cut-off answer is only right for the same max_tokens: the exact key has it, a paraphrase may not.
        if request.plan.semantic and completion.finish_reason == "stop":
            vector = request.vector or await self._embed(keys.question)
            entry_key = "s#" + hashlib.sha256(f"{keys.semantic_scope}\x00{keys.question}".encode()).hexdigest()[:40]
            await call_store(partial(self._store.put_answer, scope=keys.scope, route=route),
                             entry_key, body, keys.question, expires_at, store="cache")
            item = BucketItem(entry_key=entry_key, vector=quantise(vector), question=keys.question,
                              expires_at=expires_at)
            await call_store(partial(self._store.put_bucket_items, scope=keys.scope, route=route),
                             self._bucket_keys(keys.semantic_scope, vector), item, store="cache")
