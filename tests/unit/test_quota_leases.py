"""Quota leases on the in-memory hold store: exact under any interleaving of many instances,
few writes per request, nothing stranded after an idle flush, dead holds reclaimed once."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from functions.core.config import QuotaConfig
from functions.core.quota.counters import QuotaCounter
from functions.quotas.leases import QuotaLeases
from tests.fakes.quota_hold_store import FakeQuotaHoldStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def counter(limit: float, name: str = "requests-per-minute") -> QuotaCounter:
    return QuotaCounter(name, "acme", limit, "w", 4_000_000_000.0, 4_000_000_300)


def instances(store, count: int, clock=None, **config) -> list[QuotaLeases]:
    quotas = QuotaConfig(**{"refusal-recheck-s": 0, **config})
    kwargs = {"clock": clock, "monotonic": clock} if clock else {}
    return [QuotaLeases(store, quotas, instance_id=f"i{n}", **kwargs) for n in range(count)]


async def hammer(leases: list[QuotaLeases], quota: QuotaCounter, requests: int, need=lambda: 1.0,
                 actual=lambda reserved: reserved) -> list[float]:
    """``requests`` concurrent requests spread over the instances; returns what each admitted spent."""
    spent: list[float] = []

    async def one(n: int) -> None:
        lease = leases[n % len(leases)]
        reservation = await lease.reserve(quota, need())
        if reservation is None:
            return
        await asyncio.sleep(random.random() / 1000)
        used = actual(reservation.amount)
        await lease.settle(reservation, used)
        spent.append(used)

    await asyncio.gather(*(one(n) for n in range(requests)))
    return spent


@pytest.mark.parametrize("instances_count", [1, 3, 8])
def test_admits_exactly_the_limit_when_demand_exceeds_it(instances_count):
    store = FakeQuotaHoldStore()
    quota = counter(100)
    leases = instances(store, instances_count)

    async def run():
        first = await hammer(leases, quota, 400)
        for lease in leases:
            await lease.flush(final=True)
        return first

    spent = asyncio.run(run())
    assert len(spent) == 100
    item = store.items[quota.key]
    assert item["used"] == item["settled"] == 100


def test_variable_token_demand_never_settles_over_the_limit():
    random.seed(7)
    store = FakeQuotaHoldStore()
    quota = counter(10_000, "tokens-per-minute")
    leases = instances(store, 4)

    async def run():
        spent = await hammer(leases, quota, 2_000, need=lambda: float(random.randint(50, 400)),
                             actual=lambda reserved: float(random.randint(1, int(reserved))))
        for lease in leases:
            await lease.flush(final=True)
        return spent

    spent = asyncio.run(run())
    assert sum(spent) <= 10_000
    assert store.items[quota.key]["settled"] == sum(spent)
    assert store.items[quota.key]["used"] == sum(spent)  # everything unspent was handed back


def test_leasing_costs_far_fewer_writes_than_a_write_per_request():
    store, plain_store = FakeQuotaHoldStore(), FakeQuotaHoldStore()
    quota = counter(100_000)

    async def run(store, leasing):
        leases = instances(store, 2)
        for lease in leases:
            lease.leasing = leasing
        await hammer(leases, quota, 1_000)

    asyncio.run(run(store, True))
    asyncio.run(run(plain_store, False))
    # a reserve per request; settles made while one is written go together in the next
    assert 1_000 < plain_store.writes <= 2_000
    assert store.writes < 100


def test_idle_balances_are_handed_back_so_nothing_stays_stranded():
    store = FakeQuotaHoldStore()
    quota = counter(1_000)
    lease = instances(store, 1)[0]

    async def run():
        await hammer([lease], quota, 10)
        assert lease.stranded()["requests-per-minute"] > 0
        await lease.flush()  # touched since the last flush: kept
        await lease.flush()  # idle for a whole interval: handed back
        return lease.stranded()["requests-per-minute"]

    assert asyncio.run(run()) == 0
    assert store.items[quota.key]["used"] == 10


def test_a_dead_instances_hold_is_reclaimed_after_the_ttl_and_only_then():
    clock = Clock()
    store = FakeQuotaHoldStore()
    quota = counter(1, "max-concurrent")
    dead, alive = instances(store, 2, clock, **{"lease-ttl-s": 10})

    async def run():
        assert await dead.reserve(quota, 1.0) is not None  # then it dies: never settles
        clock.now += 9
        assert await alive.reserve(quota, 1.0) is None
        clock.now += 2
        return await alive.reserve(quota, 1.0)

    assert asyncio.run(run()) is not None
    item = store.items[quota.key]
    assert item["used"] == 1 and list(item["holds"]) == ["i1g1"]


def test_a_holder_that_missed_its_renewals_rolls_over_and_never_spends_a_reclaimed_lease():
    clock = Clock()
    store = FakeQuotaHoldStore()
    quota = counter(100)
    frozen, other = instances(store, 2, clock, **{"lease-ttl-s": 10, "lease-fraction": 0.5})

    async def run():
        first = await frozen.reserve(quota, 1.0)  # leases a block of 50
        await frozen.settle(first, 1.0)
        clock.now += 60  # frozen (a Lambda between invocations): no renewals
        while await other.reserve(quota, 1.0) is not None:
            pass
        admitted_by_other = store.items[quota.key]["settled"]
        # the frozen instance thaws: its balance must not be trusted any more
        late = await frozen.reserve(quota, 1.0)
        for lease in (frozen, other):
            await lease.flush(final=True)
        return late

    assert asyncio.run(run()) is None
    assert store.items[quota.key]["used"] <= 100


def test_a_flush_after_a_stall_rolls_over_instead_of_reviving_a_reclaimed_hold():
    clock = Clock()
    store = FakeQuotaHoldStore()
    quota = counter(100)
    stalled, other = instances(store, 2, clock, **{"lease-ttl-s": 10, "lease-fraction": 0.5})

    async def run():
        await stalled.settle(await stalled.reserve(quota, 1.0), 1.0)  # holds a block of 50
        clock.now += 30  # stalled past its TTL: the other instance reclaims (forfeits) the hold
        while await other.reserve(quota, 1.0) is not None:
            pass
        await stalled.flush()  # must not renew the dead hold and go on spending its balance
        return await stalled.reserve(quota, 1.0), stalled.stranded()["requests-per-minute"]

    late, balance = asyncio.run(run())
    assert late is None and balance == 0
    assert store.items[quota.key]["used"] <= 100


class OutageStore(FakeQuotaHoldStore):
    """A hold store that fails every settle while ``down`` (each failure taking a while)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.settle_calls = 0

    def settle(self, *args, **kwargs):
        self.settle_calls += 1
        if self.down:
            time.sleep(0.05)
            raise TimeoutError("no answer")
        return super().settle(*args, **kwargs)


@pytest.mark.usefixtures("no_fail_fast_window")  # the store is back at once here
def test_settles_made_during_an_outage_wait_for_no_other_and_all_count_once_it_ends():
    store = OutageStore()
    quota = counter(1_000)
    lease = instances(store, 1, **{"lease-fraction": 0.001})[0]  # blocks of one request: settled by each

    async def run():
        reservations = [await lease.reserve(quota, 10.0) for _ in range(20)]
        store.down = True
        await asyncio.gather(*(lease.settle(r, 4.0) for r in reservations))  # none raises
        calls_during_outage = store.settle_calls
        store.down = False
        await lease.flush()
        return calls_during_outage

    calls_during_outage = asyncio.run(run())
    assert calls_during_outage == 1  # the others did not queue behind it (nor retry it in turn)
    item = store.items[quota.key]
    assert item["settled"] == 80.0 and item["used"] == 80.0


def durable(store, clock, **config) -> QuotaLeases:
    """An instance that flushes after every request (as on Lambda): settles that would not move
    ``used`` wait for a write that is due anyway."""
    quotas = QuotaConfig(**{"refusal-recheck-s": 0, "lease-ttl-s": 15, **config})
    return QuotaLeases(store, quotas, per_request_flush=True, instance_id="d0", clock=clock, monotonic=clock)


def test_a_request_within_its_reservation_adds_no_write_when_flushed_after_it():
    clock = Clock()
    store = FakeQuotaHoldStore()
    quota = counter(1_000_000, "tokens-per-minute")  # far from the limit: a block covers many requests
    lease = durable(store, clock)

    async def run():
        await lease.settle(await lease.reserve(quota, 400.0), 250.0)  # leases a block: one write
        writes = store.writes
        for _ in range(5):  # each request flushes what it owes before its response completes
            clock.now += 0.5
            await lease.settle(await lease.reserve(quota, 400.0), 250.0)
            await lease.flush()
        assert store.writes == writes  # nothing moved ``used``: the hold counts all of it already
        assert store.items[quota.key]["used"] >= 6 * 250 and store.items[quota.key]["settled"] == 0
        clock.now += 4.0  # 6.5 s since the block was leased: not yet half the 13 s it is trusted
        await lease.flush()
        assert store.writes == writes
        clock.now += 0.1  # past it: the renewal is due, and carries the settles
        await lease.flush()
        assert store.writes == writes + 1
        assert store.items[quota.key]["settled"] == 6 * 250
        await lease.settle(await lease.reserve(quota, 400.0), 250.0)
        await lease.flush(final=True)  # shutdown: everything is written, the balance handed back
        assert store.items[quota.key]["settled"] == store.items[quota.key]["used"] == 7 * 250

    asyncio.run(run())


def test_usage_past_a_reservation_is_written_by_the_flush_after_its_request():
    clock = Clock()
    store = FakeQuotaHoldStore()
    quota = counter(1_000, "tokens-per-minute")
    lease = durable(store, clock, **{"lease-fraction": 0.01})  # a block of 10: no balance to cover

    async def run():
        reservation = await lease.reserve(quota, 100.0)
        used_before = store.items[quota.key]["used"]
        await lease.settle(reservation, 130.0)  # the provider answered more than estimated
        await lease.flush()
        return used_before

    used_before = asyncio.run(run())
    assert store.items[quota.key]["used"] == pytest.approx(used_before + 30.0)
    assert store.items[quota.key]["settled"] == 130.0


def test_what_waits_in_the_lease_counts_as_spent_if_the_instance_dies():
    clock = Clock()
    store = FakeQuotaHoldStore()
    quota = counter(100)
    lease, other = durable(store, clock), instances(store, 1, clock, **{"lease-ttl-s": 15})[0]

    async def run():
        for _ in range(3):
            await lease.settle(await lease.reserve(quota, 1.0), 1.0)
            await lease.flush()
        assert store.items[quota.key]["settled"] == 0 and store.items[quota.key]["used"] >= 3
        clock.now += 60  # the instance died: another reclaims its hold as spent when refused
        while await other.reserve(quota, 1.0) is not None:
            pass

    asyncio.run(run())
    item = store.items[quota.key]
    # the dead instance's hold, its 3 requests in it, was reclaimed as spent: counted, never refunded
    assert item["forfeited"] >= 3 and "d0g1" not in item["holds"]
    held = sum(amount for amount, _ in item["holds"].values())  # the other's admitted requests in flight
    assert item["used"] == pytest.approx(item["settled"] + item["forfeited"] + held) and item["used"] <= 100


def test_a_balance_is_kept_through_a_stream_and_handed_back_after_a_renewal_period_idle():
    clock = Clock()
    store = FakeQuotaHoldStore()
    quota = counter(1_000)
    lease = durable(store, clock)  # lease-ttl-s 15: trusted for 13 s, idle after 6.5 s

    async def run():
        await lease.settle(await lease.reserve(quota, 1.0), 1.0)
        await lease.flush()
        for _ in range(4):  # background flushes during the next request's 4 s stream
            clock.now += 1
            await lease.flush()
        assert lease.stranded()["requests-per-minute"] > 0  # kept for the request after it
        clock.now += 2.6
        await lease.flush()
        return lease.stranded()["requests-per-minute"]

    assert asyncio.run(run()) == 0
    assert store.items[quota.key]["used"] == store.items[quota.key]["settled"] == 1
