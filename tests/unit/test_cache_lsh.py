"""LSH buckets and stored vectors: deterministic, bounded, and close to the theory."""

from __future__ import annotations

import math
import random

import pytest

from functions.core.cache.entries import MAX_BODY_BYTES, decode_completion, encode_completion
from functions.core.cache.lsh import HyperplaneLSH, collision_probability, cosine, dequantise, quantise
from functions.core.chat import Completion, Usage


def unit(rng: random.Random, dims: int) -> list[float]:
    v = [rng.gauss(0, 1) for _ in range(dims)]
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def at_cosine(rng: random.Random, base: list[float], target: float) -> list[float]:
    """A unit vector whose cosine with ``base`` is ``target``."""
    noise = unit(rng, len(base))
    dot = sum(a * b for a, b in zip(noise, base))
    ortho = [n - dot * b for n, b in zip(noise, base)]
    norm = math.sqrt(sum(x * x for x in ortho))
    s = math.sqrt(1 - target * target)
    return [target * b + s * o / norm for b, o in zip(base, ortho)]


def test_buckets_are_deterministic_and_in_range():
    rng = random.Random(1)
    v = unit(rng, 64)
    a, b = HyperplaneLSH(64, 4, 6), HyperplaneLSH(64, 4, 6)
    assert a.buckets(v) == b.buckets(v)
    assert len(a.buckets(v)) == 4 and all(0 <= x < 64 for x in a.buckets(v))


def test_vectorised_buckets_agree():
    np = pytest.importorskip("numpy")
    rng = random.Random(2)
    vectors = [unit(rng, 32) for _ in range(50)]
    lsh = HyperplaneLSH(32, 3, 8)
    assert lsh.buckets_many(np.array(vectors)) == [lsh.buckets(v) for v in vectors]


def test_wrong_dimension_is_refused():
    with pytest.raises(ValueError):
        HyperplaneLSH(8, 1, 2).buckets([1.0] * 9)


def test_collision_rate_matches_theory():
    rng = random.Random(3)
    lsh = HyperplaneLSH(96, 8, 10)
    trials, shared = 300, 0
    for _ in range(trials):
        base = unit(rng, 96)
        near = at_cosine(rng, base, 0.9)
        shared += any(x == y for x, y in zip(lsh.buckets(base), lsh.buckets(near)))
    expected = collision_probability(0.9, 8, 10)
    assert abs(shared / trials - expected) < 0.08


def test_quantised_vectors_keep_cosine():
    rng = random.Random(4)
    a = unit(rng, 384)
    b = at_cosine(rng, a, 0.92)
    assert len(quantise(a)) == 384
    assert abs(cosine(a, dequantise(quantise(b))) - 0.92) < 0.005


def completion(text: str) -> Completion:
    return Completion(text=text, finish_reason="stop", usage=Usage(10, 20), model="m", simulated=True)


def test_entries_round_trip_and_compress_large_answers():
    small = encode_completion(completion("hi"), compress_over=4096)
    assert small[:1] == b"j" and decode_completion(small) == completion("hi")
    text = "the same paragraph again. " * 2000
    large = encode_completion(completion(text), compress_over=4096)
    assert large[:1] == b"z" and len(large) < len(text) // 10
    assert decode_completion(large) == completion(text)


def test_answers_over_the_item_limit_are_not_cached():
    rng = random.Random(5)
    noise = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(MAX_BODY_BYTES * 2))
    assert encode_completion(completion(noise), compress_over=4096) is None
