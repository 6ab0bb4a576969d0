"""An in-memory QuotaHoldStore: the same contract as the DynamoDB one, without I/O."""

from __future__ import annotations

import threading

from functions.core.ports import HeldCounter


class FakeQuotaHoldStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: key -> {"used", "settled", "holds": {holder: [held, until]}}
        self.items: dict[str, dict] = {}
        self.writes = 0
        #: (key, writer) -> the last settle seq applied; ("a", key, writer) -> the last acquire seq
        self.marks: dict[tuple, int] = {}

    def _item(self, key: str) -> dict:
        return self.items.setdefault(key, {"used": 0.0, "settled": 0.0, "holds": {}})

    def acquire(self, key, holder, amount, limit, hold_until, expires_at, batch=None):
        with self._lock:
            self.writes += 1
            item = self._item(key)
            if batch is not None and self.marks.get(("a", key, batch.writer), 0) >= batch.seq:
                return True, item["used"]  # applied already
            if item["used"] > limit - amount:
                return False, item["used"]
            if batch is not None:
                self.marks[("a", key, batch.writer)] = batch.seq
            item["used"] += amount
            hold = item["holds"].setdefault(holder, [0.0, 0.0])
            hold[0] += amount
            hold[1] = hold_until
            return True, item["used"]

    def settle(self, key, holder, release, spend, hold_until, expires_at, batch=None):
        with self._lock:
            self.writes += 1
            item = self._item(key)
            if batch is not None:
                if self.marks.get((key, batch.writer), 0) >= batch.seq:
                    return item["used"]  # applied already
                self.marks[(key, batch.writer)] = batch.seq
            hold = item["holds"].get(holder)
            if hold is None or hold[0] < release:
                item["used"] += max(spend - release, 0.0)
            else:
                hold[0] -= release
                hold[1] = hold_until
                item["used"] += spend - release
            item["settled"] += spend
            return item["used"]

    def reclaim_expired(self, key, now, *, refund):
        with self._lock:
            item = self._item(key)
            reclaimed = 0.0
            for holder, (held, until) in list(item["holds"].items()):
                if until < now:
                    self.writes += 1
                    if refund:
                        item["used"] -= held
                        reclaimed += held
                    else:
                        item["forfeited"] = item.get("forfeited", 0.0) + held
                    del item["holds"][holder]
            return reclaimed

    def read_counters(self, keys):
        with self._lock:
            return {k: HeldCounter(self.items[k]["used"], self.items[k]["settled"], self.items[k].get("forfeited", 0.0),
                                   {h: tuple(v) for h, v in self.items[k]["holds"].items()})
                    for k in keys if k in self.items}
