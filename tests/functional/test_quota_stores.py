"""The DynamoDB stores behind quotas, on moto server: conditional counters under racing threads,
expired counters restarting, holds reclaimed exactly once, usage aggregates adding up, ledger
records read back exactly as written."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from functions.adapters.dynamodb.counters import DynamoCounterStore
from functions.adapters.dynamodb.ledger_records import PAGE_RECORDS, DynamoLedgerRecords
from functions.adapters.dynamodb.quota_holds import DynamoQuotaHoldStore
from functions.adapters.dynamodb.usage_aggregates import DynamoUsageAggregates
from functions.core.ports import MinuteUsage
from functions.core.tables import USAGE
from functions.core.usage_ledger import LedgerEntry


def test_counter_try_add_never_passes_the_limit_under_racing_threads(make_runtime):
    runtime = make_runtime()
    store = DynamoCounterStore(runtime.dynamodb, runtime.table(USAGE))
    expires = int(time.time()) + 3600
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda _: store.try_add("spend#t", 0.25, 5.0, expires), range(40)))
    assert sum(ok for ok, _ in results) == 20
    assert store.read(["spend#t", "absent"]) == {"spend#t": 5.0, "absent": 0.0}
    assert store.add("spend#t", -1.0, expires) == 4.0
    assert store.try_add("spend#t", 1.0, 5.0, expires) == (True, 5.0)
    assert store.try_add("spend#t", 0.5, 5.0, expires) == (False, 5.0)


def test_an_expired_counter_reads_as_zero_and_restarts(make_runtime):
    runtime = make_runtime()
    clock = [1_000_000.0]
    store = DynamoCounterStore(runtime.dynamodb, runtime.table(USAGE), clock=lambda: clock[0])
    assert store.try_add("c", 3.0, 3.0, 1_000_010) == (True, 3.0)
    assert store.try_add("c", 1.0, 3.0, 1_000_010) == (False, 3.0)
    clock[0] = 1_000_011.0
    assert store.read(["c"]) == {"c": 0.0}
    assert store.try_add("c", 1.0, 3.0, 1_000_100) == (True, 1.0)


def test_a_dead_hold_is_reclaimed_once_and_a_late_settle_charges_only_the_excess(make_runtime):
    runtime = make_runtime()
    store = DynamoQuotaHoldStore(runtime.dynamodb, runtime.table(USAGE))
    expires = int(time.time()) + 600
    assert store.acquire("slots", "dead", 2.0, 2.0, 100.0, expires) == (True, 2.0)
    assert store.acquire("slots", "live", 1.0, 2.0, time.time() + 60, expires) == (False, 2.0)
    with ThreadPoolExecutor(max_workers=4) as pool:  # racing reclaimers: only one frees it
        freed = list(pool.map(lambda _: store.reclaim_expired("slots", time.time(), refund=True), range(4)))
    assert sorted(freed) == [0.0, 0.0, 0.0, 2.0]
    assert store.acquire("slots", "live", 1.0, 2.0, time.time() + 60, expires) == (True, 1.0)

    assert store.acquire("tokens", "dead", 100.0, 1000.0, 100.0, expires)[0]
    assert store.reclaim_expired("tokens", time.time(), refund=False) == 0.0  # forfeited: stays used
    counter = store.read_counters(["tokens"])["tokens"]
    assert counter.used == 100.0 and counter.forfeited == 100.0 and counter.holds == {}
    assert store.settle("tokens", "dead", 100.0, 130.0, 200.0, expires) == 130.0  # only the excess is new
    assert store.read_counters(["tokens"])["tokens"].settled == 130.0


def test_usage_aggregates_add_up_across_writers(make_runtime):
    runtime = make_runtime()
    aggregates = DynamoUsageAggregates(runtime.dynamodb, runtime.table(USAGE))
    row = MinuteUsage(minute=100, scope="route:chat", requests=2, prompt_tokens=10, completion_tokens=4,
                      cost_usd=0.5, refused=1, by_tier={"serverless": 1, "reserved": 1})
    aggregates.add([row])
    aggregates.add([row, MinuteUsage(minute=101, scope="route:chat", requests=1)])
    minutes = aggregates.minutes("route:chat", 99, 101)
    assert [m.minute for m in minutes] == [100, 101]
    assert minutes[0].requests == 4 and minutes[0].refused == 2 and minutes[0].cost_usd == 1.0
    assert minutes[0].by_tier == {"serverless": 2, "reserved": 2}
    assert aggregates.minutes("route:other", 0, 200) == []


def _entry(n: int, tenant: str, at: float) -> LedgerEntry:
    refused = n % 7 == 0
    return LedgerEntry(request_id=f"req-{tenant}-{n}", at=at + n / 1000, tenant_id=tenant, route="chat",
                       tier=None if refused else "serverless", outcome="refused" if refused else "ok",
                       status=429 if refused else 200, error_code="rate_limit_exceeded" if refused else None,
                       cache_status="miss", prompt_tokens=0 if refused else 10 + n % 13,
                       completion_tokens=0 if refused else n % 31, cached_tokens=0,
                       cost_usd=0.0 if refused else n * 1e-7, latency_ms=0.25 + n % 5)


def test_ledger_records_read_back_exactly_per_tenant_and_day_across_pages(make_runtime):
    runtime = make_runtime()
    records = DynamoLedgerRecords(runtime.dynamodb, runtime.table(USAGE))
    midnight = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    hot = [_entry(n, "hot", midnight - 1.5) for n in range(PAGE_RECORDS * 2 + 500)]  # spans two days
    cold = [_entry(n, "cold", midnight + 60) for n in range(3)]
    records.put_many(hot[:1700] + cold)
    records.put_many(hot[1700:])

    before, after = [e for e in hot if e.at < midnight], [e for e in hot if e.at >= midnight]
    assert before and after
    assert records.day("hot", "2025-12-31") == before
    assert records.day("hot", "2026-01-01") == after
    assert records.day("cold", "2026-01-01") == cold
    assert records.day("absent", "2026-01-01") == []
