"""The usage ledger: entries from requests, per-minute aggregates, EMF lines, flushing."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

from functions.adapters.emf_metrics import EmfMetrics
from functions.core.usage_ledger import LedgerEntry, aggregate
from functions.quotas.ledger import UsageLedger


def entry(n: int, *, outcome="ok", tier="serverless", cache="miss", tenant="acme", at=600.0) -> LedgerEntry:
    return LedgerEntry(request_id=f"r{n}", at=at, tenant_id=tenant, route="chat", tier=tier, outcome=outcome,
                       status=200 if outcome == "ok" else 429, error_code=None, cache_status=cache,
                       prompt_tokens=10 if outcome == "ok" else 0, completion_tokens=5 if outcome == "ok" else 0,
                       cached_tokens=0, cost_usd=0.001 if cache == "miss" and outcome == "ok" else 0.0,
                       latency_ms=2.0)


def test_aggregates_count_answers_refusals_tokens_and_tiers_per_route_and_tenant():
    entries = [entry(1), entry(2, tier="reserved"), entry(3, outcome="refused", tier=None),
               entry(4, cache="hit-exact", tier=None), entry(5, at=660.0)]
    rows = {(r.scope, r.minute): r for r in aggregate(entries)}
    route = rows[("route:chat", 10)]
    assert route.requests == 3 and route.refused == 1
    assert route.prompt_tokens == 20 and route.completion_tokens == 10  # cache hits cost no provider tokens
    assert route.by_tier == {"serverless": 1, "reserved": 1}
    assert rows[("tenant:acme", 10)].requests == 3
    assert rows[("route:chat", 11)].requests == 1


def _directives(blob: dict) -> dict[tuple[str, ...], set[str]]:
    return {tuple(d["Dimensions"][0]): {m["Name"] for m in d["Metrics"]} for d in blob["_aws"]["CloudWatchMetrics"]}


def test_emf_lines_carry_the_stacks_metric_names_and_dimensions():
    lines: list[str] = []
    EmfMetrics(sink=lines.append).emit([entry(1), entry(2, tier="reserved"), entry(3, outcome="refused", tier=None)])
    blobs = [json.loads(line) for line in lines]
    # two tiers: the per-tier counts differ from the route's, so they go in lines of their own
    assert [tuple(_directives(blob)) for blob in blobs] == [(("Route",), ()), (("Route", "Tier"),),
                                                            (("Route", "Tier"),)]
    per_route = blobs[0]
    assert per_route["Route"] == "chat" and per_route["Requests"] == [2.0] and per_route["Refusals"] == [1.0]
    assert per_route["CostUSD"] == [0.002] and per_route["Latency"] == [2.0, 2.0]
    assert {(blob["Tier"], blob["Requests"][0]) for blob in blobs[1:]} == {("serverless", 1.0), ("reserved", 1.0)}


def test_one_request_s_metrics_are_one_compact_line():
    """On Lambda each request flushes its own entry: its route, tier and total values agree, so one
    line carries the three directives (log ingestion is billed by the byte)."""
    lines: list[str] = []
    EmfMetrics(sink=lines.append).emit([entry(1), entry(2, outcome="refused", tier=None)])
    [line] = lines
    assert ", " not in line and ": " not in line
    blob = json.loads(line)
    assert _directives(blob) == {("Route",): {"Requests", "PromptTokens", "CompletionTokens", "CostUSD", "CacheHits",
                                              "Refusals", "Latency", "GatewayCostUSD"},
                                 ("Route", "Tier"): {"Requests"}, (): {"CostUSD", "GatewayCostUSD"}}
    assert blob["Route"] == "chat" and blob["Tier"] == "serverless"
    assert blob["Requests"] == [1.0] and blob["CostUSD"] == [0.001] and blob["Refusals"] == [1.0]


class ListAggregates:
    def __init__(self, fail_times: int = 0) -> None:
        self.rows = []
        self.fail_times = fail_times

    def add(self, rows, batch=None) -> None:
        if self.fail_times:
            self.fail_times -= 1
            raise OSError("DynamoDB is away")
        self.rows.extend(rows)


def test_a_failed_flush_keeps_its_entries_for_the_next():
    aggregates = ListAggregates(fail_times=1)
    ledger = UsageLedger(aggregates)
    ledger._buffer.extend([entry(1), entry(2)])

    async def run():
        await ledger.flush()
        assert aggregates.rows == []
        await ledger.flush()

    asyncio.run(run())
    assert sum(r.requests for r in aggregates.rows if r.scope == "route:chat") == 2


class FailingRecords:
    def __init__(self) -> None:
        self.calls = 0

    def put_many(self, entries) -> None:
        self.calls += 1
        raise OSError("DynamoDB is away")


def test_a_sink_that_fails_never_makes_the_others_write_twice():
    aggregates, records, lines = ListAggregates(), FailingRecords(), []
    ledger = UsageLedger(aggregates, records, EmfMetrics(sink=lines.append))
    ledger._buffer.append(entry(1))

    async def run():
        await ledger.flush()
        await ledger.flush()  # nothing new: only the failed records are tried again

    asyncio.run(run())
    assert sum(r.requests for r in aggregates.rows if r.scope == "route:chat") == 1
    assert records.calls == 2
    per_route = [blob for blob in map(json.loads, lines)
                 if blob.get("Route") == "chat" and ("Route",) in _directives(blob)]
    assert [blob["Requests"] for blob in per_route] == [[1.0]]


def test_a_busy_flush_emits_every_latency_in_lines_powertools_accepts():
    lines: list[str] = []
    EmfMetrics(sink=lines.append).emit([replace(entry(n), latency_ms=float(n)) for n in range(250)])
    blobs = [json.loads(line) for line in lines]
    per_route = [blob for blob in blobs if blob.get("Route") == "chat" and ("Route",) in _directives(blob)]
    assert per_route[0]["Requests"] == [250.0]
    assert sorted(v for blob in per_route for v in blob["Latency"]) == sorted(float(n) for n in range(250))
    assert all(len(blob["Latency"]) <= 99 for blob in per_route)


def test_a_flush_of_refusals_only_emits_no_latency():
    lines: list[str] = []
    EmfMetrics(sink=lines.append).emit([entry(1, outcome="refused", tier=None)])
    per_route = json.loads(lines[0])
    assert per_route["Refusals"] == [1.0] and per_route["Requests"] == [0.0] and "Latency" not in per_route


def test_route_aggregates_count_arrivals_per_10_seconds():
    """The traffic policy's live signals: answered requests per 10 seconds of their arrival
    minute, on route rows only (tenants do not need them)."""
    entries = [entry(1, at=600.0), entry(2, at=609.9), entry(3, at=655.0), entry(4, outcome="refused", at=655.0)]
    rows = {(r.scope, r.minute): r for r in aggregate(entries)}
    assert rows[("route:chat", 10)].by_10s == {0: [2, 20, 10], 5: [1, 10, 5]}
    assert rows[("tenant:acme", 10)].by_10s is None
