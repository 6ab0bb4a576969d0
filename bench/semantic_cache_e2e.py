"""The semantic cache end to end, through the gateway's TieredResponseCache (``bench/semantic_cache.py --e2e``).

Every distinct a stored in one tenant's scope (about 10,000 entries), then held-out b questions
looked up. A hit is judged by the labels: right if it serves a question identical to b (QQP repeats
questions across pairs) or one labelled a duplicate of b, wrong if labelled a non-duplicate, else
unjudged. Lookup latency p50/p99 (embedding excluded: vectors are precomputed) and items read per
lookup, on DynamoDB (moto server) and on the in-memory store of the unit tests (the cache's own
cost, without moto's HTTP). Scale: the same lookups with 100,000 entries (the real questions plus
synthetic entries: normalised mixes of two real question vectors, so that they fall where questions
fall), on the in-memory store: items read per lookup stay bounded by lsh-tables x bucket-read-limit.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
import time

class PrecomputedEmbedder:
    """The Embedder port over vectors computed up front (lookup latency excludes embedding)."""

    name = "all-MiniLM-L6-v2 (precomputed)"
    dimensions = 384

    def __init__(self, index, vectors) -> None:
        self._index, self._vectors = index, vectors

    def embed(self, texts):
        return [self._vectors[self._index[t]].tolist() for t in texts]


def gateway_cache(runtime, embedder):
    from functions.adapters.dynamodb.cache import DynamoCacheStore
    from functions.core.tables import CACHE
    from functions.gateway.response_cache import TieredResponseCache

    store = DynamoCacheStore(runtime.dynamodb, runtime.table(CACHE))
    return TieredResponseCache(runtime.config, store, embedder), store


def request(runtime, question: str):
    from functions.core.chat import ChatRequest
    from functions.core.context import RequestContext, Tenant

    chat = ChatRequest.model_validate({"model": "chat", "temperature": 0,
                                       "messages": [{"role": "user", "content": question}]})
    return RequestContext(request_id="bench", route_name="chat", route=runtime.config.routes["chat"],
                          kind="chat", tenant=Tenant("bench", "pro", runtime.config.plans["pro"]),
                          chat=chat, max_tokens=512)


def fill(runtime, store, entries, threads: int = 4) -> float:
    """Store (question, vector) entries as the cache would, in parallel; return seconds taken."""
    from concurrent.futures import ThreadPoolExecutor

    from functions.core.cache.keys import cache_keys
    from functions.core.cache.lsh import HyperplaneLSH, quantise
    from functions.core.ports import BucketItem

    settings = runtime.config.cache
    route = runtime.config.routes["chat"]
    lsh = HyperplaneLSH(384, settings.lsh_tables, settings.lsh_bits)
    import numpy as np

    all_buckets = lsh.buckets_many(np.array([v for _, v in entries]))
    expires = int(time.time()) + 86400
    body = b'j{"t":"cached answer","f":"stop","m":"m","s":true,"u":[10,20]}'

    def put(args):
        (question, vector), buckets = args
        keys = cache_keys("chat", route, "bench", request(runtime, question).chat, 512)
        entry = "s#" + hashlib.sha256(f"{keys.semantic_scope}\x00{question}".encode()).hexdigest()[:40]
        store.put_answer(entry, body, question, expires, scope="bench", route="chat")
        store.put_bucket_items([f"b#{keys.semantic_scope}#{t}#{b:x}" for t, b in enumerate(buckets)],
                               BucketItem(entry, quantise(list(vector)), question, expires),
                               scope="bench", route="chat")

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for done, _ in enumerate(pool.map(put, zip(entries, all_buckets)), 1):
            if done % 1_000 == 0:
                print(f"stored {done:,} entries, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return time.perf_counter() - started


def run_lookups(runtime, cache, sample, labels):
    """Look up each b. A hit is right when it serves the pair's own a and the pair is a duplicate,
    or serves a question identical to b (QQP repeats questions across pairs), or another pair
    labels the two a duplicate; wrong when a label says non-duplicate; otherwise unjudged."""
    latencies, items = [], []
    counts = {"right": 0, "wrong": 0, "unjudged": 0}
    examples: list[dict] = []  # a few wrong hits, to read what "wrong" means on this data

    async def one(pair):
        ctx = request(runtime, pair["b"])
        started = time.perf_counter()
        hit = await cache.lookup(ctx)
        latencies.append((time.perf_counter() - started) * 1000)
        items.append(ctx.state.get("cache_items_read", 0))
        if hit is None:
            return
        served_for = ctx.state.get("cache_question")
        label = 1 if served_for == pair["b"] else labels.get(frozenset((served_for, pair["b"])))
        verdict = {1: "right", 0: "wrong", None: "unjudged"}[label]
        counts[verdict] += 1
        if verdict == "wrong" and len(examples) < 12:
            examples.append({"asked": pair["b"], "served_answer_of": served_for,
                             "similarity": ctx.state.get("cache_similarity")})

    async def all_lookups():
        for pair in sample:
            await one(pair)

    asyncio.run(all_lookups())
    latencies.sort()
    dups = sum(p["duplicate"] for p in sample)
    judged = counts["right"] + counts["wrong"]
    return {"lookups": len(sample), "p50_ms": latencies[len(latencies) // 2],
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1], "items_read_mean": sum(items) / len(items),
            "items_read_max": max(items), "hits": judged + counts["unjudged"], **counts,
            "hits_per_duplicate_pair": counts["right"] / dups if dups else 0.0,
            "wrong_share_of_judged_hits": counts["wrong"] / judged if judged else 0.0,
            "wrong_hit_examples": examples}


def synthetic_entries(index, vectors, count: int, seed: int = 7):
    import numpy as np

    rng = np.random.default_rng(seed)
    first, second = rng.integers(0, len(vectors), count), rng.integers(0, len(vectors), count)
    mixed = vectors[first] + vectors[second]
    mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
    return [(f"synthetic question {i}", mixed[i]) for i in range(count)]


def end_to_end(pairs, index, vectors, threshold, lookups: int, scale: bool, moto: bool, saved,
               moto_entries: int | None = None):
    """Held-out lookups with 10,000 entries in memory, then 100,000 in memory, then 10,000 on moto;
    ``saved(results)`` is called after each stage, so that a cut-short run keeps what it measured."""
    from tierup.local_stack import LOCAL_CREDENTIALS, moto_server, prepare_tables

    from functions.gateway.composition import Runtime
    from functions.gateway.response_cache import TieredResponseCache
    from tests.fakes.cache_store import InMemoryCacheStore
    from tests.support import make_config

    os.environ.update({k: os.environ.get(k, v) for k, v in LOCAL_CREDENTIALS.items()})
    embedder = PrecomputedEmbedder(index, vectors)
    real = list({p["a"]: (p["a"], vectors[index[p["a"]]]) for p in pairs}.values())
    sample = pairs[1::2][:lookups]  # held-out half
    labels = {frozenset((p["a"], p["b"])): p["duplicate"] for p in pairs}
    config = make_config({"routes": {"chat": {"cache": {"exact": False, "semantic": True,
                                                       "similarity-threshold": threshold}}}})
    results = []
    # The in-memory store of the unit tests: what the cache itself costs, without moto's HTTP.
    runtime = Runtime(config=config, environ=dict(os.environ))
    memory = InMemoryCacheStore()
    cache = TieredResponseCache(config, memory, embedder)
    fill(runtime, memory, real, threads=1)
    results.append({"store": "in-memory", "entries": len(real), **run_lookups(runtime, cache, sample, labels)})
    saved(results)
    if scale:
        extra = synthetic_entries(index, vectors, 100_000 - len(real))
        fill(runtime, memory, extra, threads=1)
        results.append({"store": "in-memory", "entries": len(real) + len(extra),
                        **run_lookups(runtime, cache, sample, labels)})
        saved(results)
    if moto:
        with moto_server() as endpoint:
            runtime = Runtime(config=config, environ={**os.environ, "TIERUP_AWS_ENDPOINT": endpoint})
            prepare_tables(runtime)
            cache, store = gateway_cache(runtime, embedder)
            stored = real[:moto_entries] if moto_entries else real
            fill_s = fill(runtime, store, stored)
            results.append({"store": "DynamoDB (moto server)", "entries": len(stored), "fill_s": round(fill_s, 1),
                            **run_lookups(runtime, cache, sample, labels)})
            saved(results)
    return results


