"""Semantic cache on Quora Question Pairs: does ``max-wrong-hit-rate`` keep its promise, and what
does it serve next to GPTCache on the same embeddings?

    .venv/bin/python bench/semantic_cache.py [--seeds 5] [--folds 2] [--share 0.02]
        [--method exact|model|estimate] [--confidence 0.5] [--e2e]

1. Promised error rate (per pair: a stored, b asked). For each seed the pairs are shuffled and cut
   into ``--folds`` folds (2: halves); each fold in turn is the held-out part and the route learns
   from the others (cross-fitting: every pair is measured once per seed, by a route that never saw
   it; more folds mean more learning traffic, 5 folds 8,000 pairs). The route learns as it would in
   production (core/cache/calibration.py): it starts with no observations; each guarded candidate at
   or above ``calibration-floor`` below the current threshold is observed for free (the model is
   called anyway), and a ``calibration-share`` of those above it is sent to the model and observed
   (counted: that is what the promise costs). The model's verdict is the judge's (duplicate: same
   answer). The threshold learnt is then frozen and measured on the held-out fold: hit rate on
   duplicates and the wrong share of hits, with a 95% Wilson interval (pooled over seeds and folds),
   the spread across them, and how many of them served a wrong share above the bound. Two judges,
   each used both to learn and to measure, for tierup and GPTCache alike: Quora's labels, and the
   same labels with every pair labelled non-duplicate at cosine 0.90 or above read again by hand
   (bench/data/qqp_adjudicated.jsonl, all 421 of them, both halves; see bench/data/README.md): at
   high similarity Quora's labels call many identical questions different. Below 0.90 the
   adjudicated judge is Quora's labels again, so under it the route learns only from candidates at
   0.90 or above (its floor), where it is one judge. ``--method`` picks ``calibration-method``: the
   exact test, the logistic curve's bound on the hits above a threshold (``model``) or its estimate
   of each candidate's own wrong rate at ``--confidence`` (``estimate``;
   core/cache/calibration_model.py). No setting is chosen on a held-out fold: each is run as given.
2. GPTCache in the same run, on the same embeddings, with its own scoring (bench/semantic_cache_peer.py):
   on the same held-out fold, at the threshold whose duplicate hit rate matches tierup's, at the best
   threshold whose wrong share is no worse than tierup's (the 1.5x goal), and at its default 0.8.
   The library itself is run on a sample of pairs to check the scoring reproduces it.
3. Near-miss suite (bench/data/cache_suite.jsonl, when present): for each bound, pairs that must not
   share an answer and paraphrases that should, per shape, for tierup (guards on, at the lowest
   threshold any fold learnt for the bound, per judge), the static 0.96 and GPTCache (matched
   and default thresholds).
4. With ``--e2e``: the lookup path through the gateway's cache (bench/semantic_cache_e2e.py).

Embeddings: the local all-MiniLM-L6-v2 (numpy), computed once and kept in bench/results/.
Needs ../shared/data/qqp/qqp_pairs_dev.jsonl; skips with a message when it is absent.
Results: bench/results/semantic_cache_{method}[_{confidence}]_{folds}fold.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path

# One BLAS thread: on a shared machine OpenBLAS's spinning worker threads make MiniLM ~5x slower.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from semantic_cache_report import gptcache_pooled, markdown, summarise  # noqa: E402
DATA = ROOT.parent / "shared" / "data" / "qqp" / "qqp_pairs_dev.jsonl"
SUITE = ROOT / "bench" / "data" / "cache_suite.jsonl"
ADJUDICATED = ROOT / "bench" / "data" / "qqp_adjudicated.jsonl"
#: every pair labelled non-duplicate at this cosine or above is read and judged again (bench/data/README.md)
BAND_FLOOR = 0.90
RESULTS = ROOT / "bench" / "results"
BOUNDS = [0.005, 0.01, 0.02, 0.05]
#: the static threshold the project shipped before max-wrong-hit-rate, for reference
STATIC_THRESHOLD = 0.96


def load_pairs() -> list[dict]:
    from functions.core.cache.keys import normalise_text

    pairs = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    for pair in pairs:
        pair["a"], pair["b"] = normalise_text(pair["a"]), normalise_text(pair["b"])
    return pairs


def embed(texts: list[str], tag: str):
    """Unit vectors of ``texts`` (by text), cached on disk by content and model."""
    import numpy as np

    from functions.adapters.embeddings_local import LocalMiniLMEmbedder

    questions = sorted(set(texts))
    digest = hashlib.sha256(("\n".join(questions) + "all-MiniLM-L6-v2").encode()).hexdigest()[:16]
    cached = RESULTS / f"{tag}_minilm_{digest}.npy"
    if cached.exists():
        vectors = np.load(cached)
    else:
        started = time.perf_counter()
        vectors = LocalMiniLMEmbedder().embed_array(questions)
        print(f"embedded {len(questions)} questions in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        np.save(cached, vectors)
    return {q: i for i, q in enumerate(questions)}, vectors


def embed_questions(pairs: list[dict]):
    return embed([p[k] for p in pairs for k in "ab"], "qqp")


def adjudicated_labels(raw_same, cosine):
    """The labels with every non-duplicate in the band (cosine >= BAND_FLOOR) replaced by its
    adjudicated verdict; refuses to run when the adjudication does not match the data or misses a
    pair of the band (so a changed data file cannot be judged by a stale adjudication)."""
    raw = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    verdicts = {}
    for line in ADJUDICATED.read_text().splitlines():
        row = json.loads(line)
        pair = raw[row["pair"]]
        digest = hashlib.sha256(f"{pair['a']}\n{pair['b']}".encode()).hexdigest()[:12]
        if digest != row["text_sha256"] or pair["duplicate"]:
            raise SystemExit(f"{ADJUDICATED.name}: pair {row['pair']} does not match {DATA.name}")
        verdicts[row["pair"]] = row["verdict"] == "same"
    band = [i for i in range(len(raw)) if cosine[i] >= BAND_FLOOR and not raw_same[i]]
    missing = [i for i in band if i not in verdicts]
    if missing:
        raise SystemExit(f"{ADJUDICATED.name} misses {len(missing)} pairs of the band, e.g. {missing[:5]}")
    same = raw_same.copy()
    for i, verdict in verdicts.items():
        same[i] = verdict
    return same, {"band_floor": BAND_FLOOR, "band_pairs": len(band),
                  "judged_same": sum(verdicts[i] for i in band), "judged_different": sum(not verdicts[i] for i in band)}


# -- per pair arrays ----------------------------------------------------------------------------


def pair_arrays(pairs, index, vectors):
    """tierup's score (b against a's stored int8 form), GPTCache's rank, labels, guard verdicts."""
    import numpy as np

    from functions.core.cache.lsh import dequantise, quantise
    from functions.core.cache.near_miss import near_miss_reasons
    from semantic_cache_peer import scores

    stored = np.array([dequantise(quantise(vectors[index[p["a"]]].tolist())) for p in pairs])
    query = np.array([vectors[index[p["b"]]] for p in pairs])
    a = np.array([vectors[index[p["a"]]] for p in pairs])
    return {"score": (stored * query).sum(axis=1) / np.linalg.norm(stored, axis=1),
            "cosine": (a * query).sum(axis=1),
            "rank": scores(a, query),
            "same": np.array([bool(p.get("duplicate", p.get("must_share"))) for p in pairs]),
            "guarded": np.array([not near_miss_reasons(p["b"], p["a"]) for p in pairs])}


# -- 1. the promised error rate ---------------------------------------------------------------------


def learn(order, arrays, bound: float, floor: float, share: float, rng: random.Random, method: str = "exact",
          confidence: float = 0.5):
    """The route's online calibration over ``order``: (final threshold, paid checks, free observations).
    The threshold is looked at after every observation, as the gateway does (the model's held from one
    look to the next, ``ThresholdHold``)."""
    from functions.core.cache.calibration import Calibration, ThresholdHold

    calibration, paid, free, hold = Calibration(), 0, 0, ThresholdHold()
    threshold = None
    for i in order:
        score = float(arrays["score"][i])
        if not arrays["guarded"][i] or score < floor:
            continue
        if threshold is not None and score >= threshold:
            if rng.random() >= share:
                continue  # served
            paid += 1
        else:
            free += 1
        calibration.observe(score, bool(arrays["same"][i]))
        threshold = hold.threshold("route", calibration, bound, floor, method, confidence)
    return threshold, paid, free


def served_counts(mask, arrays, test):
    import numpy as np

    hit = np.zeros(len(arrays["same"]), dtype=bool)
    hit[test] = mask[test]
    same = arrays["same"]
    dups = int(same[test].sum())
    right, wrong = int((hit & same).sum()), int((hit & ~same).sum())
    return {"hits": right + wrong, "right": right, "wrong": wrong,
            "duplicate_hit_rate": right / dups if dups else 0.0,
            "wrong_share": wrong / (right + wrong) if right + wrong else 0.0}


def gptcache_at(arrays, test, threshold: float):
    from semantic_cache_peer import rank_needed

    return {"threshold": round(threshold, 4), **served_counts(arrays["rank"] >= rank_needed(threshold), arrays, test)}


def gptcache_sweep(arrays, test):
    """GPTCache at every threshold that changes what it serves on ``test`` (one per distinct score)."""
    import numpy as np

    from semantic_cache_peer import threshold_for_cosine

    cosines = np.unique(np.round(1 - (4 - arrays["rank"][test]) / 2, 4))
    return [gptcache_at(arrays, test, threshold_for_cosine(c) - 1e-9) for c in cosines[cosines > 0.5]]


def folds_of(n: int, seed: int, folds: int):
    """(learning order, held-out indices) for each fold of one shuffle of ``n`` pairs."""
    import numpy as np

    order = list(range(n))
    random.Random(seed).shuffle(order)
    edges = [n * k // folds for k in range(folds + 1)]
    for k in range(folds):
        yield order[: edges[k]] + order[edges[k + 1]:], np.array(order[edges[k]: edges[k + 1]])


def bounded(arrays, seeds: int, folds: int, share: float, floor: float, method: str, confidence: float = 0.5):
    from semantic_cache_peer import DEFAULT_THRESHOLD

    n = len(arrays["same"])
    runs = []
    splits = [(seed, fold, learning, test) for seed in range(seeds)
              for fold, (learning, test) in enumerate(folds_of(n, seed, folds))]
    for seed, fold, learning, test in splits:
        sweep = gptcache_sweep(arrays, test)
        static = served_counts(arrays["guarded"] & (arrays["score"] >= STATIC_THRESHOLD), arrays, test)
        for bound in BOUNDS:
            threshold, paid, free = learn(learning, arrays, bound, floor, share, random.Random(seed * 1000 + fold),
                                          method, confidence)
            mask = arrays["guarded"] & (arrays["score"] >= (threshold if threshold is not None else 2.0))
            ours = served_counts(mask, arrays, test)
            by_labels = served_counts(mask, {**arrays, "same": arrays["labelled_same"]}, test)
            matched = min(sweep, key=lambda r: (abs(r["duplicate_hit_rate"] - ours["duplicate_hit_rate"]),
                                                -r["threshold"]))
            no_worse = [r for r in sweep if r["wrong_share"] <= ours["wrong_share"] and r["hits"]]
            same_wrong = max(no_worse, key=lambda r: r["duplicate_hit_rate"]) if no_worse else None
            runs.append({"seed": seed, "fold": fold, "bound": bound, "threshold": threshold, "paid_checks": paid,
                         "free_observations": free, "learning_pairs": len(learning), "tierup": ours,
                         "tierup_by_labels": by_labels,
                         "gptcache_same_hit_rate": matched, "gptcache_same_wrong_share": same_wrong,
                         "gptcache_default": gptcache_at(arrays, test, DEFAULT_THRESHOLD),
                         "tierup_static_0_96": static})
    return runs


# -- 3. near-miss suite -----------------------------------------------------------------------------


def near_miss_suite(runs_by_judge, peer_thresholds):
    """Per shape, for each bound: served share for tierup and GPTCache. tierup serves at the lowest
    threshold any fold learnt for the bound (the most it would serve), for each judge."""
    import numpy as np

    from semantic_cache_peer import DEFAULT_THRESHOLD, rank_needed

    suite = [json.loads(line) for line in SUITE.read_text().splitlines() if line.strip()]
    index, vectors = embed([p[k] for p in suite for k in "ab"], "suite")
    arrays = pair_arrays(suite, index, vectors)
    shapes = sorted({p["shape"] for p in suite})
    report = []
    for bound in BOUNDS:
        ours, thresholds = {}, {}
        for judge, runs in runs_by_judge.items():
            learnt = [r["threshold"] for r in runs if r["bound"] == bound and r["threshold"] is not None]
            thresholds[judge] = min(learnt) if learnt else None
            ours[f"tierup_{judge}"] = arrays["guarded"] & (arrays["score"] >= (min(learnt) if learnt else 2.0))
        peers = {"tierup_static_0_96": arrays["guarded"] & (arrays["score"] >= STATIC_THRESHOLD),
                 "gptcache_matched": arrays["rank"] >= rank_needed(peer_thresholds[bound]),
                 "gptcache_default": arrays["rank"] >= rank_needed(DEFAULT_THRESHOLD)}
        row = {"bound": bound, "thresholds": thresholds, "gptcache_matched_threshold": peer_thresholds[bound],
               "per_shape": {}}
        systems = {**ours, **peers}
        for name, served in systems.items():
            must_not = ~arrays["same"]
            row[name] = {"must_not_share_served": int((served & must_not).sum()),
                         "must_not_share_pairs": int(must_not.sum()),
                         "paraphrase_recall": float(served[arrays["same"]].mean()) if arrays["same"].any() else None}
        for shape in shapes:
            in_shape = np.array([p["shape"] == shape for p in suite])
            row["per_shape"][shape] = {
                "pairs": int(in_shape.sum()), "must_share": int((in_shape & arrays["same"]).sum()),
                **{name: {"served": int((served & in_shape).sum()),
                          "served_share": float(served[in_shape].mean()),
                          "must_not_share_served": int((served & in_shape & ~arrays["same"]).sum()),
                          "paraphrases_served": int((served & in_shape & arrays["same"]).sum())}
                   for name, served in systems.items()}}
        report.append(row)
    return report


# -- report -----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--share", type=float, default=None, help="calibration-share (default: the config's)")
    parser.add_argument("--engine-check", type=int, default=150, help="pairs run through the GPTCache library")
    parser.add_argument("--folds", type=int, default=2, help="folds per seed (each held out once)")
    parser.add_argument("--method", choices=("model", "estimate", "exact"), default=None,
                        help="calibration-method (default: the config's)")
    parser.add_argument("--confidence", type=float, default=None,
                        help="calibration-confidence, for --method estimate (default: the config's)")
    parser.add_argument("--e2e", action="store_true", help="also the lookup path through the gateway's cache")
    parser.add_argument("--lookups", type=int, default=1000, help="held-out lookups end to end")
    args = parser.parse_args()
    if not DATA.exists():
        print(f"skipped: {DATA} is absent (QQP pairs; see shared/data/README.md)")
        return 0
    import numpy as np

    from functions.core.config.cache import RouteCacheConfig

    defaults = RouteCacheConfig()
    share = defaults.calibration_share if args.share is None else args.share
    method = defaults.calibration_method if args.method is None else args.method
    confidence = defaults.calibration_confidence if args.confidence is None else args.confidence
    name = f"{method}_{confidence}" if method == "estimate" else method
    RESULTS.mkdir(parents=True, exist_ok=True)
    pairs = load_pairs()
    index, vectors = embed_questions(pairs)
    arrays = pair_arrays(pairs, index, vectors)
    adjudicated, band = adjudicated_labels(arrays["same"], arrays["cosine"])
    # each judge is both the model's verdict while learning and the measure on the held-out half
    results = {}
    for judge, same in (("labels", arrays["same"]), ("adjudicated", adjudicated)):
        # below the band the adjudicated judge is Quora's labels again: it learns only where it is one judge
        floor = defaults.calibration_floor if judge == "labels" else max(defaults.calibration_floor, BAND_FLOOR)
        runs = bounded({**arrays, "same": same, "labelled_same": arrays["same"]}, args.seeds, args.folds, share,
                       floor, method, confidence)
        sweep = gptcache_sweep({**arrays, "same": same}, np.arange(len(same)))  # every pair, once
        results[judge] = (gptcache_pooled(summarise(runs, BOUNDS), sweep), runs)
    check = None
    if args.engine_check:
        try:
            from semantic_cache_peer import DEFAULT_THRESHOLD, engine_check

            # its default, and 0.975 (cos >= 0.95), where tierup's thresholds are
            check = {threshold: engine_check(pairs, lambda q: vectors[index[q]], threshold,
                                             RESULTS / f"gptcache_check_{threshold}", args.engine_check)
                     for threshold in (DEFAULT_THRESHOLD, 0.975)}
        except ImportError as exc:
            print(f"GPTCache library check skipped: {exc}", file=sys.stderr)
    peer_thresholds = {b: next(r for r in results["adjudicated"][1] if r["bound"] == b and r["seed"] == 0)
                       ["gptcache_same_hit_rate"]["threshold"] for b in BOUNDS}
    suite = near_miss_suite({judge: runs for judge, (_, runs) in results.items()}, peer_thresholds) \
        if SUITE.exists() else None
    result = {"data": "qqp_pairs_dev.jsonl", "embedder": "all-MiniLM-L6-v2 (local, numpy)",
              "calibration_share": share, "calibration_method": method, "calibration_confidence": confidence,
              "folds": args.folds,
              "calibration_floor": {"labels": defaults.calibration_floor,
                                    "adjudicated": max(defaults.calibration_floor, BAND_FLOOR)}, "adjudication": band,
              **{f"summary_{judge}": summary for judge, (summary, _) in results.items()},
              **{f"runs_{judge}": runs for judge, (_, runs) in results.items()},
              "gptcache_engine_check": check, "near_miss_suite": suite}
    (RESULTS / f"semantic_cache_{name}_{args.folds}fold.json").write_text(json.dumps(result, indent=1))
    print(f"Adjudicated band: {band}")
    print(markdown(results, suite, check, static_threshold=STATIC_THRESHOLD, suite_file=SUITE.relative_to(ROOT)))
    if args.e2e:
        from semantic_cache_e2e import end_to_end

        summary = results["adjudicated"][0]
        threshold = next(r for r in summary if r["bound"] == 0.01)["thresholds"][0] or STATIC_THRESHOLD
        print(json.dumps(end_to_end(pairs, index, vectors, threshold, args.lookups, False, True,
                                    lambda _: None, 2000), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
