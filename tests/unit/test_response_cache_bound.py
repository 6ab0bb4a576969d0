"""A route with ``max-wrong-hit-rate`` on the in-memory store: nothing is served until observations
prove a threshold; misses with a candidate become free observations; a share of would-be hits is
sent to the model and marked ``calibration``; an entry seen wrong is not served that close again."""

from __future__ import annotations

import asyncio

from functions.core.cache.calibration import bin_of
from functions.core.chat import Completion, Usage
from functions.gateway.cache_calibration import calibration_key
from functions.gateway.response_cache import TieredResponseCache
from tests.fakes.cache_store import InMemoryCacheStore, TableEmbedder
from tests.support import make_config

from .test_response_cache import ANSWER, VECTORS, Clock, ctx, vec

BOUNDED = make_config({"routes": {"chat": {"cache": {"exact": True, "semantic": True, "ttl-s": 100,
                                                    "max-wrong-hit-rate": 0.05, "calibration-share": 0.1}}},
                       "cache": {"lsh-tables": 4, "lsh-bits": 4, "bucket-read-limit": 3}})
KEY = calibration_key("chat", "table")
STORED, PARAPHRASE = "How can I cancel my subscription?", "How do I cancel my subscription?"  # cosine 0.98


CLOSER = "How could I cancel my subscription?"
EMBEDDINGS = {**VECTORS, CLOSER: vec(1, 0.21)}  # 0.979 from STORED, 0.9999 from PARAPHRASE


def make(chance: float = 0.5, store=None):
    store = store or InMemoryCacheStore()
    return TieredResponseCache(BOUNDED, store, TableEmbedder(EMBEDDINGS), clock=Clock(),
                               chance=lambda: chance), store


def bounded_ctx(question):
    c = ctx(question)
    c.route = BOUNDED.routes["chat"]
    return c


def ask(cache, question, answer=ANSWER):
    c = bounded_ctx(question)
    served = asyncio.run(cache.lookup(c))
    if served is None:
        c.tier = "serverless"
        asyncio.run(cache.store(c, answer))
    return c, served


def proven(store, similarity=0.98, right=200):
    store.add_calibration(KEY, {bin_of(similarity): right}, {})


def test_without_observations_no_semantic_hit_but_the_miss_is_observed_for_free():
    cache, store = make()
    ask(cache, STORED)
    c, served = ask(cache, PARAPHRASE)
    assert served is None and c.cache_status == "miss"  # not charged as calibration: a miss anyway
    assert c.state["cache_calibration"] == {"similarity": 0.9806, "agreed": True}
    asyncio.run(cache.calibration.flush())
    right, wrong = store.read_calibration(KEY)
    assert right == {bin_of(0.9806): 1.0} and wrong == {}


def test_a_proven_threshold_serves_the_paraphrase():
    cache, store = make(chance=0.5)
    proven(store)
    ask(cache, STORED)
    c, served = ask(cache, PARAPHRASE)
    assert served is not None and c.cache_status == "hit-semantic" and c.state["cache_threshold"] == 0.98


def test_a_share_of_would_be_hits_goes_to_the_model_and_is_marked_calibration():
    cache, store = make(chance=0.05)  # under calibration-share 0.1: this one is checked
    proven(store)
    ask(cache, STORED)
    fresh = Completion(text="Go to settings.", finish_reason="stop", usage=Usage(12, 30), model="m")
    c, served = ask(cache, PARAPHRASE, fresh)
    assert served is None and c.cache_status == "calibration"
    asyncio.run(cache.stats.flush())
    row = store.read_stats("chat")["chat"]
    assert row["calibration"] == 1 and row["calibration_tokens"] == 42 and row["observed_right"] == 1


def test_a_wrong_answer_is_counted_and_the_entry_is_not_served_that_close_again():
    cache, store = make(chance=0.05)
    proven(store, similarity=0.95)
    ask(cache, STORED)
    other = Completion(text="You cannot.", finish_reason="stop", usage=Usage(12, 3), model="m")
    ask(cache, PARAPHRASE, other)  # checked: the model says something else
    asyncio.run(cache.calibration.flush())
    assert store.read_calibration(KEY)[1] == {bin_of(0.9806): 1.0}
    assert max(store.wrong_at.values()) == 0.9806
    store.answers = {k: v for k, v in store.answers.items() if v[1] != PARAPHRASE}  # only STORED is left
    cache, _ = make(chance=0.99, store=store)  # a fresh instance; this draw would serve
    c, served = ask(cache, CLOSER)  # further from STORED than the paraphrase it answered wrongly
    assert served is None and c.cache_status == "miss"


def test_a_model_route_serves_where_its_curve_proves_the_bound_and_an_exact_route_does_not():
    """The same 1,600 observations (a logistic wrong rate: tests/unit/test_cache_calibration_model.py)
    prove 1% from 0.93 up to the curve, and nothing to the exact test (too few clean ones above);
    the curve estimates a candidate wrong at most 1% from 0.945 up, and from 0.95 up at the upper
    end of its 95% interval (the route's calibration-confidence reaches the gateway)."""
    import random

    from .test_cache_calibration_model import observed

    calibration = observed(random.Random(2), 1600)
    for method, confidence, threshold in (("model", 0.5, 0.93), ("exact", 0.5, None), ("estimate", 0.5, 0.945),
                                          ("estimate", 0.95, 0.95)):
        config = make_config({"routes": {"chat": {"cache": {
            "exact": True, "semantic": True, "ttl-s": 100, "max-wrong-hit-rate": 0.01,
            "calibration-method": method, "calibration-confidence": confidence}}},
            "cache": {"lsh-tables": 4, "lsh-bits": 4, "bucket-read-limit": 3}})
        store = InMemoryCacheStore()
        store.add_calibration(KEY, calibration.right, calibration.wrong)
        cache = TieredResponseCache(config, store, TableEmbedder(EMBEDDINGS), clock=Clock(), chance=lambda: 0.5)
        for question in (STORED, PARAPHRASE):
            c = ctx(question)
            c.route = config.routes["chat"]
            served = asyncio.run(cache.lookup(c))
            if served is None and question == STORED:
                c.tier = "serverless"
                asyncio.run(cache.store(c, ANSWER))
        assert c.state["cache_threshold"] == threshold
        assert (served is not None) == (method != "exact")
