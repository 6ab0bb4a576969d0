"""In-memory fakes of the route table, the policy journal and the usage aggregates."""

from __future__ import annotations

import copy

from functions.core.ports import MinuteUsage
from functions.core.route_table import RouteEntry


class InMemoryRouteTable:
    def __init__(self, entries: dict[str, RouteEntry] | None = None) -> None:
        self.entries: dict[str, RouteEntry] = dict(entries or {})
        #: every write, in order, so tests can check what was stored before what
        self.writes: list[RouteEntry] = []
        self.fail_reads = False

    def read_routes(self) -> dict[str, RouteEntry]:
        if self.fail_reads:
            raise ConnectionError("route table unreachable")
        return dict(self.entries)

    def write_route(self, entry: RouteEntry) -> None:
        self.entries[entry.route] = entry
        self.writes.append(entry)


class InMemoryPolicyJournal:
    def __init__(self) -> None:
        self.states: dict[str, dict] = {}
        self.decisions: dict[str, list[tuple[float, dict]]] = {}

    def load_states(self) -> dict[str, dict]:
        return copy.deepcopy(self.states)

    def save_state(self, route: str, state: dict) -> None:
        self.states[route] = copy.deepcopy(state)

    def record_decision(self, route: str, at_s: float, record: dict) -> None:
        self.decisions.setdefault(route, []).append((at_s, copy.deepcopy(record)))

    def recent_decisions(self, route: str, limit: int = 20) -> list[dict]:
        return [record for _, record in reversed(self.decisions.get(route, []))][:limit]


class InMemoryUsageAggregates:
    """Per-minute usage set by the test: ``set_rate(scope, minute, requests, prompt, completion)``."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], MinuteUsage] = {}
        self.queries: list[tuple[str, int, int]] = []

    def set_minute(self, scope: str, minute: int, requests: int, prompt_tokens: int = 0,
                   completion_tokens: int = 0) -> None:
        self.rows[(scope, minute)] = MinuteUsage(minute=minute, scope=scope, requests=requests,
                                                 prompt_tokens=prompt_tokens,
                                                 completion_tokens=completion_tokens)

    def minutes(self, scope: str, since_minute: int, until_minute: int) -> list[MinuteUsage]:
        self.queries.append((scope, since_minute, until_minute))
        rows = [row for (s, m), row in self.rows.items() if s == scope and since_minute <= m <= until_minute]
        return sorted(rows, key=lambda row: row.minute)
