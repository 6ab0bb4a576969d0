"""An in-memory GpuSpendLedger: the cursor, and the charge added to a CounterStore (the same one
the spend-cap stage reads, in unit tests) and to per-minute rows."""

from __future__ import annotations


class FakeGpuSpendLedger:
    def __init__(self, counters) -> None:
        self.counters = counters
        self.cursors: dict[str, int] = {}
        #: (route, minute) -> [usd, gpu seconds]
        self.rows: dict[tuple[str, int], list[float]] = {}
        self.refused = 0

    def billed_until(self, route: str) -> int | None:
        return self.cursors.get(route)

    def record(self, charge, amounts) -> bool:
        if self.cursors.get(charge.route, charge.from_minute) != charge.from_minute:
            self.refused += 1
            return False
        self.cursors[charge.route] = charge.to_minute
        for key, (usd, expires_at) in amounts.items():
            self.counters.add(key, usd, expires_at)
        for minute in charge.minutes:
            row = self.rows.setdefault((charge.route, minute.minute), [0.0, 0.0])
            row[0] += minute.usd
            row[1] += minute.gpu_seconds
        return True
