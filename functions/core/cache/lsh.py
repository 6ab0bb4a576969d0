"""Locality-sensitive hashing of unit vectors into buckets, so that a semantic lookup reads a
bounded number of cache items however large the cache grows.

Random-hyperplane LSH (Charikar 2002): each of ``tables`` tables has ``bits`` hyperplanes drawn
from a fixed seed; a vector's bucket in a table is the sign pattern of its projections. Two
vectors at angle θ share a bucket in one table with probability (1 - θ/π)^bits, and in at least
one table with 1 - (1 - (1 - θ/π)^bits)^tables. A lookup reads one bucket per table (each capped
at a read limit), so items read per lookup are at most ``tables x limit``.

Vectors are stored quantised to int8 (384 or 512 bytes instead of 1.5-2 KB of float32): cosine
from int8 differs from float32 by about 0.001.

Pure Python (the Lambda runtime has no numpy); ``buckets_many`` uses numpy when given an array,
for benchmarks. No I/O here.
"""

from __future__ import annotations

import math
import operator
import random
from array import array

#: the hyperplanes' seed: changing it orphans every semantic entry already stored
LSH_SEED = 20240611


class HyperplaneLSH:
    def __init__(self, dimensions: int, tables: int, bits: int, seed: int = LSH_SEED) -> None:
        self.dimensions = dimensions
        self.tables = tables
        self.bits = bits
        rng = random.Random(f"{seed}:{dimensions}:{tables}:{bits}")
        self._planes = [[[rng.gauss(0.0, 1.0) for _ in range(dimensions)] for _ in range(bits)]
                        for _ in range(tables)]

    def buckets(self, vector: list[float]) -> list[int]:
        """One bucket id per table."""
        if len(vector) != self.dimensions:
            raise ValueError(f"vector has {len(vector)} dimensions, the LSH expects {self.dimensions}")
        ids = []
        for planes in self._planes:
            bucket = 0
            for plane in planes:
                bucket = (bucket << 1) | (sum(map(operator.mul, plane, vector)) >= 0.0)
            ids.append(bucket)
        return ids

    def buckets_many(self, vectors) -> list[list[int]]:
        """``buckets`` for a numpy array of shape (n, dimensions), vectorised."""
        import numpy as np

        planes = np.asarray(self._planes, dtype=np.float64)  # (tables, bits, dims)
        signs = np.einsum("nd,tbd->ntb", np.asarray(vectors, dtype=np.float64), planes) >= 0.0
        weights = 1 << np.arange(self.bits - 1, -1, -1)
        return (signs * weights).sum(axis=2).tolist()


def collision_probability(cosine: float, tables: int, bits: int) -> float:
    """Chance that two vectors at this cosine share a bucket in at least one table."""
    theta = math.acos(max(-1.0, min(1.0, cosine)))
    per_table = (1.0 - theta / math.pi) ** bits
    return 1.0 - (1.0 - per_table) ** tables


def quantise(vector: list[float]) -> bytes:
    """A unit vector as int8 bytes (component x 127, rounded)."""
    return array("b", (max(-127, min(127, round(v * 127.0))) for v in vector)).tobytes()


def dequantise(data: bytes) -> list[float]:
    values = array("b")
    values.frombytes(data)
    return [v / 127.0 for v in values]


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(map(operator.mul, a, b))
    norm = math.sqrt(sum(map(operator.mul, a, a)) * sum(map(operator.mul, b, b)))
    return dot / norm if norm else 0.0
