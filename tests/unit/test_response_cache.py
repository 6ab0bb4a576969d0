"""The response cache's behaviour on an in-memory store: hits, expiry, isolation, read bounds,
near-miss refusals, accounting, and that a failing store never fails a request."""

from __future__ import annotations

import asyncio
import math

from functions.core.chat import ChatRequest, Completion, Usage
from functions.core.context import RequestContext, Tenant
from functions.gateway.response_cache import TieredResponseCache
from tests.fakes.cache_store import InMemoryCacheStore, TableEmbedder
from tests.support import make_config

CONFIG = make_config({"routes": {"chat": {"cache": {"exact": True, "semantic": True, "ttl-s": 100,
                                                   "similarity-threshold": 0.9}}},
                      "cache": {"lsh-tables": 4, "lsh-bits": 4, "bucket-read-limit": 3}})


def vec(*head: float) -> list[float]:
    """A 4-d unit vector."""
    v = list(head) + [0.0] * (4 - len(head))
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


VECTORS = {
    "How can I cancel my subscription?": vec(1, 0),
    "How do I cancel my subscription?": vec(1, 0.2),          # cosine 0.98
    "How can I not cancel my subscription?": vec(1, 0.1),     # close, but negated
    "What is the weather like?": vec(0, 1),
}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def make_cache(store=None, clock=None, config=CONFIG):
    store = store or InMemoryCacheStore()
    return TieredResponseCache(config, store, TableEmbedder(VECTORS), clock=clock or Clock()), store


def ctx(question: str, tenant: str = "acme", max_tokens: int = 64, **extra) -> RequestContext:
    chat = ChatRequest.model_validate({"model": "chat", "temperature": 0, **extra,
                                       "messages": [{"role": "user", "content": question}]})
    return RequestContext(request_id="r", route_name="chat", route=CONFIG.routes["chat"], kind="chat",
                          tenant=Tenant(tenant, "pro", CONFIG.plans["pro"]), chat=chat, max_tokens=max_tokens)


ANSWER = Completion(text="Go to settings.", finish_reason="stop", usage=Usage(12, 30), model="m")


def miss_then_store(cache, question, **kwargs):
    c = ctx(question, **kwargs)
    assert asyncio.run(cache.lookup(c)) is None
    asyncio.run(cache.store(c, ANSWER))
    return c


def test_exact_hit_is_free_and_reports_what_it_saved():
    cache, _ = make_cache()
    miss_then_store(cache, "How can I cancel my subscription?")
    c = ctx("How can I cancel my subscription?")
    hit = asyncio.run(cache.lookup(c))
    assert c.cache_status == "hit-exact" and hit.text == ANSWER.text
    assert hit.usage == Usage(0, 0, cached_tokens=42)
    assert c.state["cache_saved"]["tokens"] == 42 and c.state["cache_saved"]["usd"] > 0


def test_charge_hits_keeps_the_original_usage():
    config = make_config({"routes": {"chat": {"cache": {"charge-hits": True}}}})
    cache, _ = make_cache(config=config)
    c = ctx("How can I cancel my subscription?")
    c.route = config.routes["chat"]
    asyncio.run(cache.lookup(c))
    asyncio.run(cache.store(c, ANSWER))
    again = ctx("How can I cancel my subscription?")
    again.route = config.routes["chat"]
    assert asyncio.run(cache.lookup(again)).usage.total_tokens == 42


def test_l2_serves_a_new_instance_and_expiry_is_enforced_by_the_reader():
    clock = Clock()
    cache, store = make_cache(clock=clock)
    miss_then_store(cache, "How can I cancel my subscription?")
    fresh_instance, _ = make_cache(store=store, clock=clock)
    c = ctx("How can I cancel my subscription?")
    assert asyncio.run(fresh_instance.lookup(c)) is not None and c.cache_status == "hit-exact"
    clock.now += 101  # past ttl-s; the store still holds the item, as DynamoDB may
    for instance in (cache, fresh_instance):
        c = ctx("How can I cancel my subscription?")
        assert asyncio.run(instance.lookup(c)) is None and c.cache_status == "miss"


def test_semantic_hit_and_near_miss_refusal():
    cache, _ = make_cache()
    miss_then_store(cache, "How can I cancel my subscription?")
    c = ctx("How do I cancel my subscription?")
    assert asyncio.run(cache.lookup(c)) is not None and c.cache_status == "hit-semantic"
    assert c.state["cache_similarity"] > 0.9
    c = ctx("How can I not cancel my subscription?")
    assert asyncio.run(cache.lookup(c)) is None and c.cache_status == "miss"
    c = ctx("What is the weather like?")
    assert asyncio.run(cache.lookup(c)) is None


def test_semantic_lookup_is_isolated_per_tenant():
    cache, _ = make_cache()
    miss_then_store(cache, "How can I cancel my subscription?", tenant="acme")
    c = ctx("How do I cancel my subscription?", tenant="globex")
    assert asyncio.run(cache.lookup(c)) is None


def test_items_read_per_lookup_are_bounded():
    cache, store = make_cache()
    for i in range(30):  # 30 entries, all in the same buckets (identical vectors)
        question = f"How can I cancel my subscription? #{i}"
        VECTORS[question] = vec(1, 0)
        c = ctx(question)
        asyncio.run(cache.lookup(c))
        asyncio.run(cache.store(c, ANSWER))
    c = ctx("How do I cancel my subscription?")
    asyncio.run(cache.lookup(c))
    assert c.state["cache_items_read"] <= 4 * 3  # lsh-tables x bucket-read-limit


def test_cut_off_answers_are_not_served_to_paraphrases():
    cache, _ = make_cache()
    c = ctx("How can I cancel my subscription?")
    asyncio.run(cache.lookup(c))
    asyncio.run(cache.store(c, Completion(text="Go to", finish_reason="length", usage=Usage(12, 2), model="m")))
    c = ctx("How do I cancel my subscription?")
    assert asyncio.run(cache.lookup(c)) is None


def test_an_answer_longer_than_max_tokens_is_not_served_semantically():
    cache, _ = make_cache()
    miss_then_store(cache, "How can I cancel my subscription?")
    c = ctx("How do I cancel my subscription?", max_tokens=10)
    assert asyncio.run(cache.lookup(c)) is None


class BrokenStore(InMemoryCacheStore):
    def get_answer(self, entry_key):
        raise ConnectionError("DynamoDB is unreachable")

    def put_answer(self, *args, **kwargs):
        raise ConnectionError("DynamoDB is unreachable")


def test_a_failing_store_is_a_miss_never_an_error():
    cache, _ = make_cache(store=BrokenStore())
    c = ctx("How can I cancel my subscription?")
    assert asyncio.run(cache.lookup(c)) is None and c.cache_status == "miss"
    asyncio.run(cache.store(c, ANSWER))


def test_bypass_and_opt_out_leave_the_store_alone():
    cache, store = make_cache()
    c = ctx("How can I cancel my subscription?", tierup={"cache": False})
    assert asyncio.run(cache.lookup(c)) is None and c.cache_status == "bypass"
    asyncio.run(cache.store(c, ANSWER))
    assert store.answers == {}


def test_stats_are_counted_and_flushed():
    cache, store = make_cache()

    async def run():
        miss_ctx = ctx("How can I cancel my subscription?")
        await cache.lookup(miss_ctx)
        await cache.store(miss_ctx, ANSWER)
        await cache.lookup(ctx("How can I cancel my subscription?"))
        await cache.stats.flush()

    asyncio.run(run())
    row = store.read_stats("chat")["chat"]
    assert row["miss"] == 1 and row["hit_exact"] == 1 and row["tokens_saved"] == 42


def test_a_question_pointing_outside_its_text_is_neither_embedded_nor_stored_for_paraphrases():
    deictic = "Which breed is this dog?"
    VECTORS[deictic] = vec(0.5, 0.5, 0.7)
    cache, store = make_cache()
    c = miss_then_store(cache, deictic)
    assert cache._embedder.calls == 0  # no lookup cost for a question no paraphrase may share
    assert not store.buckets and [key[:2] for key in store.answers] == ["x#"]  # the exact answer only
    again = ctx(deictic)
    assert asyncio.run(cache.lookup(again)) is not None and again.cache_status == "hit-exact"
    assert c.cache_status == "miss"


def test_on_a_paraphrase_only_route_a_question_pointing_outside_its_text_bypasses_the_cache():
    config = make_config({"routes": {"chat": {"cache": {"exact": False, "semantic": True,
                                                       "similarity-threshold": 0.9}}}})
    cache, store = make_cache(config=config)
    c = ctx("Which breed is this dog?")
    c.route = config.routes["chat"]
    assert asyncio.run(cache.lookup(c)) is None and c.cache_status == "bypass"
    asyncio.run(cache.store(c, ANSWER))
    assert not store.answers and cache._embedder.calls == 0
