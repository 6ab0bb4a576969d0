"""GPTCache as the peer of ``bench/semantic_cache.py``: its own scoring on the same embeddings.

GPTCache's semantic setup (faiss ``IndexFlatL2`` + ``SearchDistanceEvaluation``) scores a
candidate ``4 - min(d², 4)`` where d² is the squared L2 distance of the two vectors, and serves it
when that score is at least ``4 x similarity_threshold`` (its default threshold 0.8). On unit
vectors d² = 2 - 2 cos, so threshold τ serves cos >= 2τ - 1 (0.8: cos >= 0.6). ``scores`` uses
GPTCache's own ``SearchDistanceEvaluation`` and its adapter's threshold rule; ``engine_check``
runs pairs through the whole library (``gptcache.adapter.api`` with faiss and sqlite) and checks
that it serves exactly what ``scores`` says it serves.
"""

from __future__ import annotations

import shutil

#: GPTCache's ``Config().similarity_threshold``
DEFAULT_THRESHOLD = 0.8


def scores(stored, query):
    """GPTCache's rank of each (stored, query) pair, in [0, 4], and the rank a threshold needs."""
    import numpy as np
    from gptcache.similarity_evaluation.distance import SearchDistanceEvaluation

    evaluation = SearchDistanceEvaluation()
    squared = ((stored.astype(np.float32) - query.astype(np.float32)) ** 2).sum(axis=1)
    return np.array([evaluation.evaluation({}, {"search_result": (float(d), None)}) for d in squared])


def rank_needed(threshold: float) -> float:
    """The adapter's rule: (max_rank - min_rank) x threshold, clipped to the rank range."""
    from gptcache.similarity_evaluation.distance import SearchDistanceEvaluation

    low, high = SearchDistanceEvaluation().range()
    return min(high, max(low, (high - low) * threshold))


def threshold_for_cosine(cosine: float) -> float:
    """The GPTCache threshold that serves exactly cos >= ``cosine`` on unit vectors."""
    return (cosine + 1) / 2


def engine_check(pairs, vectors_of, threshold: float, folder, limit: int = 150) -> dict:
    """Store a, ask b, one fresh GPTCache per pair (so that only a can answer): does the library
    serve exactly the pairs whose ``scores`` rank reaches ``rank_needed(threshold)``?"""
    import numpy as np
    from gptcache import Cache, Config
    from gptcache.adapter.api import get, put
    from gptcache.manager import CacheBase, VectorBase, get_data_manager
    from gptcache.processor.pre import get_prompt
    from gptcache.similarity_evaluation.distance import SearchDistanceEvaluation

    # GPTCache flushes its stores again at exit: the folder must outlive the check
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    agree = served = 0
    checked = pairs[:limit]
    for n, pair in enumerate(checked):
        cache = Cache()
        cache.init(pre_embedding_func=get_prompt,
                   embedding_func=lambda text, **_: vectors_of(text).astype(np.float32),
                   data_manager=get_data_manager(CacheBase("sqlite", sql_url=f"sqlite:///{folder}/c{n}.db"),
                                                 VectorBase("faiss", dimension=384, index_path=f"{folder}/f{n}.index")),
                   similarity_evaluation=SearchDistanceEvaluation(), config=Config(similarity_threshold=threshold))
        put(pair["a"], "answer of a", cache_obj=cache)
        answer = get(pair["b"], cache_obj=cache)
        expected = scores(vectors_of(pair["a"])[None], vectors_of(pair["b"])[None])[0] >= rank_needed(threshold)
        served += answer is not None
        agree += (answer is not None) == bool(expected)
    return {"pairs": len(checked), "served_by_library": served, "decisions_matching_scores": agree}
