"""An in-memory ``CacheStore`` with DynamoDB's semantics that matter to the cache: items stay
until deleted (expiry is the reader's job), buckets list newest first and honour ``limit``."""

from __future__ import annotations

import itertools

from functions.core.ports import BucketItem


class InMemoryCacheStore:
    def __init__(self) -> None:
        self.answers: dict[str, tuple[bytes, str, int, str, str]] = {}
        self.buckets: dict[str, list[tuple[int, BucketItem, str, str]]] = {}
        self.stats: dict[tuple[str, str], dict[str, float]] = {}
        self.wrong_at: dict[str, float] = {}
        self.calibrations: dict[str, tuple[dict[int, float], dict[int, float]]] = {}
        self.items_read = 0
        self._order = itertools.count()

    def get_answer(self, entry_key: str):
        found = self.answers.get(entry_key)
        if found is None:
            return None
        self.items_read += 1
        return found[0], found[1], found[2], self.wrong_at.get(entry_key, 0.0)

    def mark_wrong(self, entry_key, similarity) -> None:
        if entry_key in self.answers:
            self.wrong_at[entry_key] = max(self.wrong_at.get(entry_key, 0.0), round(similarity, 4))

    def add_calibration(self, calibration_key, right, wrong) -> None:
        mine = self.calibrations.setdefault(calibration_key, ({}, {}))
        for counts, added in zip(mine, (right, wrong)):
            for index, count in added.items():
                counts[index] = counts.get(index, 0.0) + count

    def read_calibration(self, calibration_key):
        right, wrong = self.calibrations.get(calibration_key, ({}, {}))
        return dict(right), dict(wrong)

    def read_calibrations(self):
        return {key: self.read_calibration(key) for key in self.calibrations}

    def put_answer(self, entry_key, body, question, expires_at, *, scope, route) -> None:
        self.answers[entry_key] = (body, question, expires_at, scope, route)

    def put_bucket_items(self, bucket_keys, item, *, scope, route) -> None:
        order = next(self._order)
        for key in bucket_keys:
            self.buckets.setdefault(key, []).append((order, item, scope, route))

    def query_bucket(self, bucket_key, limit):
        newest = sorted(self.buckets.get(bucket_key, []), key=lambda entry: -entry[0])[:limit]
        self.items_read += len(newest)
        return [entry[1] for entry in newest]

    def add_stats(self, route, day, counts) -> None:
        row = self.stats.setdefault((route, day), {})
        for name, value in counts.items():
            row[name] = row.get(name, 0) + value

    def read_stats(self, route=None):
        totals: dict[str, dict[str, float]] = {}
        for (name, _), counts in self.stats.items():
            if route is None or name == route:
                row = totals.setdefault(name, {})
                for key, value in counts.items():
                    row[key] = row.get(key, 0) + value
        return totals

    def purge(self, scope=None, route=None, *, dry_run=False) -> int:
        def doomed(s, r):
            return (scope is None or s == scope) and (route is None or r == route)

        removed = [k for k, v in self.answers.items() if doomed(v[3], v[4])]
        count = len(removed) + sum(doomed(e[2], e[3]) for entries in self.buckets.values() for e in entries)
        if dry_run:
            return count
        for key in removed:
            del self.answers[key]
        for key, entries in self.buckets.items():
            self.buckets[key] = [e for e in entries if not doomed(e[2], e[3])]
        return count


class TableEmbedder:
    """An ``Embedder`` that returns given vectors (tests choose exact similarities)."""

    name = "table"

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors
        self.dimensions = len(next(iter(vectors.values())))
        self.calls = 0

    def embed(self, texts):
        self.calls += 1
        return [self.vectors[t] for t in texts]
