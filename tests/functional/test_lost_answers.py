"""Writes whose answer was lost, on moto server: DynamoDB applied them, the gateway saw a timeout
and sent them again. Quota ``used``/``settled`` and the spend-cap counters still equal the usage
that was actually settled, exactly; a write that failed before it was applied is not lost."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import pytest
from botocore.exceptions import ReadTimeoutError

from functions.adapters.dynamodb.counters import DynamoCounterStore
from functions.adapters.dynamodb.quota_holds import DynamoQuotaHoldStore
from functions.core.errors import StorageUnavailableError
from functions.core.ports import WriteBatch
from functions.core.quota.counters import QuotaCounter
from functions.core.spend_caps import SpendCap
from functions.core.tables import USAGE
from functions.guardrails.spend_leases import SpendLeases
from functions.quotas.leases import QuotaLeases


pytestmark = pytest.mark.usefixtures("no_fail_fast_window")  # stores come back at once here


class LossyClient:
    """A DynamoDB client whose next ``update_item`` calls that ``match`` time out: after being
    applied (``lose_answers``: the answer is lost) or before reaching the table (``fail``); or
    are applied and answered with an empty body (``truncate``: botocore's reading of a 200 whose
    server died before sending its body)."""

    def __init__(self, client, match) -> None:
        self._client = client
        self._match = match
        self.plan: list[str] = []

    def lose_answers(self, count: int = 1) -> None:
        self.plan += ["applied"] * count

    def fail(self, count: int = 1) -> None:
        self.plan += ["not applied"] * count

    def truncate(self, count: int = 1) -> None:
        self.plan += ["truncated"] * count

    def update_item(self, **request):
        if self.plan and self._match(request):
            fault = self.plan.pop(0)
            if fault != "not applied":
                answer = self._client.update_item(**request)
                if fault == "truncated":
                    return {"ResponseMetadata": answer["ResponseMetadata"]}
            raise ReadTimeoutError(endpoint_url="http://moto")
        return self._client.update_item(**request)

    def __getattr__(self, name):
        return getattr(self._client, name)


def _lossy(runtime, match) -> tuple[LossyClient, Callable[[], LossyClient]]:
    client = LossyClient(runtime.dynamodb(), match)
    return client, lambda: client


def _settles(request: dict) -> bool:
    return "settled" in request["UpdateExpression"]


def _tokens_per_day(limit: float) -> QuotaCounter:
    now = time.time()
    return QuotaCounter("tokens-per-day", "t" + uuid.uuid4().hex[:8], limit, "d", now + 3600, int(now) + 7200)


def _held(runtime, key: str):
    return DynamoQuotaHoldStore(runtime.dynamodb, runtime.table(USAGE)).read_counters([key])[key]


def test_a_flushed_quota_settle_whose_answer_was_lost_counts_once(make_runtime):
    runtime = make_runtime()
    lossy, factory = _lossy(runtime, _settles)
    leases = QuotaLeases(DynamoQuotaHoldStore(factory, runtime.table(USAGE)), runtime.config.quotas)
    quota = _tokens_per_day(1_000_000)
    spent: list[float] = []

    async def serve(count: int) -> None:
        for n in range(count):
            reservation = await leases.reserve(quota, 500.0)
            spent.append(100.0 + n)
            await leases.settle(reservation, spent[-1])  # far from the limit: settled by the next flush

    async def run() -> None:
        await serve(3)
        lossy.lose_answers()
        await leases.flush()  # applied, but the flush saw a timeout
        await serve(2)
        await leases.flush()  # the lost one again (applied already), then the new usage
        lossy.fail()
        await serve(2)
        await leases.flush()  # not applied at all: sent again by the next flush
        await leases.flush(final=True)

    asyncio.run(run())
    counter = _held(runtime, quota.key)
    assert counter.settled == sum(spent)
    assert counter.used == sum(spent)  # every balance handed back: used is what was settled


def test_a_quota_settle_near_the_limit_that_failed_is_sent_again_once(make_runtime):
    runtime = make_runtime()
    lossy, factory = _lossy(runtime, _settles)
    leases = QuotaLeases(DynamoQuotaHoldStore(factory, runtime.table(USAGE)), runtime.config.quotas)
    quota = _tokens_per_day(2_000)  # a block is one request's need: each request settles itself

    async def run() -> None:
        first = await leases.reserve(quota, 400.0)
        second = await leases.reserve(quota, 400.0)
        lossy.lose_answers()
        await leases.settle(first, 150.0)  # applied, answer lost: kept for the next flush
        lossy.fail()
        await leases.settle(second, 250.0)  # the lost one again first: never reaches the table
        await leases.flush()  # both, in order, each once
        third = await leases.reserve(quota, 400.0)
        await leases.settle(third, 50.0)
        await leases.flush(final=True)

    asyncio.run(run())
    counter = _held(runtime, quota.key)
    assert counter.settled == 450.0
    assert counter.used == 450.0


def test_an_answer_cut_short_is_a_storage_failure_not_a_crash(make_runtime):
    """A store killed while answering: a 200 whose body never came reads as an empty answer."""
    runtime = make_runtime()
    lossy, factory = _lossy(runtime, lambda request: True)
    store = DynamoQuotaHoldStore(factory, runtime.table(USAGE))
    expires = int(time.time()) + 600
    lossy.truncate()
    with pytest.raises(StorageUnavailableError):
        store.acquire("q", "a", 100.0, 1000.0, time.time() + 60, expires)  # applied: held, unknown to "a"
    assert store.acquire("q", "a", 100.0, 1000.0, time.time() + 60, expires) == (True, 200.0)
    lossy.truncate()
    with pytest.raises(StorageUnavailableError):
        store.settle("q", "a", 100.0, 60.0, time.time() + 60, expires, WriteBatch("i1", 1))
    assert store.settle("q", "a", 100.0, 60.0, time.time() + 60, expires, WriteBatch("i1", 1)) == 160.0


def test_a_settle_sent_again_tells_applied_from_reclaimed(make_runtime):
    """Both forms of a settle (from a live hold; after the hold was reclaimed) count once, and a
    copy arriving after a newer write of the same writer changes nothing."""
    runtime = make_runtime()
    store = DynamoQuotaHoldStore(runtime.dynamodb, runtime.table(USAGE))
    expires = int(time.time()) + 600
    live = time.time() + 60

    store.acquire("q", "a", 100.0, 1000.0, live, expires)
    assert store.settle("q", "a", 100.0, 70.0, live, expires, WriteBatch("i1", 1)) == 70.0
    store.reclaim_expired("q", live + 1, refund=False)  # the hold (now 0) taken for dead later
    assert store.settle("q", "a", 100.0, 70.0, live, expires, WriteBatch("i1", 1)) == 70.0  # applied: not again

    store.acquire("q", "b", 100.0, 1000.0, 100.0, expires)  # a holder that will be taken for dead
    store.reclaim_expired("q", time.time(), refund=False)  # its 100 forfeited: they count as spent
    assert store.settle("q", "b", 100.0, 130.0, live, expires, WriteBatch("i2", 1)) == 200.0  # only 30 is new
    assert store.settle("q", "b", 100.0, 130.0, live, expires, WriteBatch("i2", 1)) == 200.0
    store.acquire("q", "c", 50.0, 1000.0, live, expires)
    assert store.settle("q", "c", 50.0, 50.0, live, expires, WriteBatch("i2", 2)) == 250.0
    assert store.settle("q", "b", 100.0, 130.0, live, expires, WriteBatch("i2", 1)) == 250.0  # late copy
    counter = store.read_counters(["q"])["q"]
    assert counter.settled == 70.0 + 130.0 + 50.0 and counter.used == 250.0


def _acquires(request: dict) -> bool:
    return request["UpdateExpression"].startswith("ADD used :a, #h")


def _no_holds(counter) -> bool:
    return all(held == 0 for held, _ in (counter.holds or {}).values())


def test_a_quota_lease_whose_answer_was_lost_joins_the_balance(make_runtime):
    runtime = make_runtime()
    lossy, factory = _lossy(runtime, _acquires)
    leases = QuotaLeases(DynamoQuotaHoldStore(factory, runtime.table(USAGE)), runtime.config.quotas)
    lost, failed = _tokens_per_day(1_000_000), _tokens_per_day(1_000_000)

    async def run() -> None:
        lossy.lose_answers()
        with pytest.raises(StorageUnavailableError):
            await leases.reserve(lost, 500.0)  # the block was leased; the request gets the 503
        block = _held(runtime, lost.key).used
        first = await leases.reserve(lost, 500.0)  # the lost lease again: applied already, it is ours
        assert _held(runtime, lost.key).used == block  # no second block
        second = await leases.reserve(lost, 500.0)  # from the balance
        lossy.fail()
        with pytest.raises(StorageUnavailableError):
            await leases.reserve(failed, 500.0)  # never reached the table
        third = await leases.reserve(failed, 500.0)  # the same lease again, applied now
        assert _held(runtime, failed.key).used == block
        await leases.settle(first, 120.0)
        await leases.settle(second, 80.0)
        await leases.settle(third, 300.0)
        await leases.flush(final=True)

    asyncio.run(run())
    for quota, spent in ((lost, 200.0), (failed, 300.0)):
        counter = _held(runtime, quota.key)
        assert counter.settled == counter.used == spent  # nothing stranded in a hold
        assert _no_holds(counter)


def test_a_top_up_whose_answer_was_lost_is_adopted_by_the_flush(make_runtime):
    runtime = make_runtime()
    lossy, factory = _lossy(runtime, _acquires)
    leases = QuotaLeases(DynamoQuotaHoldStore(factory, runtime.table(USAGE)), runtime.config.quotas)
    quota = _tokens_per_day(1_000_000)

    async def run() -> None:
        first = await leases.reserve(quota, 20_000.0)  # a block of 50,000: 30,000 left
        lossy.lose_answers()
        second = await leases.reserve(quota, 10_000.0)  # below half the block: topped up, answer lost
        for _ in range(500):  # the top-up runs in the background
            if not lossy.plan:
                break
            await asyncio.sleep(0.01)
        await leases.settle(first, 15_000.0)
        await leases.settle(second, 5_000.0)
        await leases.flush()  # the lost top-up again: applied already, it joins the balance
        assert leases.stranded()[quota.name] > 30_000.0
        await leases.flush(final=True)

    asyncio.run(run())
    counter = _held(runtime, quota.key)
    assert counter.settled == counter.used == 20_000.0
    assert _no_holds(counter)


def test_a_numbered_acquire_sent_again_counts_once(make_runtime):
    """Acquires are numbered apart from settles: a settle's mark does not pass for an acquire's."""
    runtime = make_runtime()
    store = DynamoQuotaHoldStore(runtime.dynamodb, runtime.table(USAGE))
    expires = int(time.time()) + 600
    live = time.time() + 60

    assert store.acquire("q", "a", 100.0, 1000.0, live, expires, WriteBatch("i1", 1)) == (True, 100.0)
    assert store.settle("q", "a", 100.0, 40.0, live, expires, WriteBatch("i1", 2)) == 40.0
    assert store.acquire("q", "a", 100.0, 1000.0, live, expires, WriteBatch("i1", 1)) == (True, 40.0)  # again
    assert store.acquire("q", "a", 100.0, 1000.0, live, expires, WriteBatch("i1", 3)) == (True, 140.0)
    assert store.acquire("q", "b", 900.0, 1000.0, live, expires, WriteBatch("i2", 1)) == (False, 140.0)  # no room
    counter = store.read_counters(["q"])["q"]
    assert counter.used == 140.0 and counter.holds["a"][0] == 100.0


def _daily_cap(limit_usd: float) -> SpendCap:
    now = time.time()
    return SpendCap("route:chat", "daily", limit_usd, "refuse", "d" + uuid.uuid4().hex[:8], now - 60, now + 3600)


def _spend_leases(runtime) -> tuple[LossyClient, SpendLeases, DynamoCounterStore]:
    lossy, factory = _lossy(runtime, lambda request: "ADD v" in request["UpdateExpression"])
    counters = DynamoCounterStore(factory, runtime.table(USAGE))
    return lossy, SpendLeases(counters, runtime.config.budgets), counters


def test_a_cost_owed_whose_answer_was_lost_is_counted_once(make_runtime):
    runtime = make_runtime()
    lossy, leases, counters = _spend_leases(runtime)
    cap = _daily_cap(1000.0)
    block = runtime.config.budgets.lease_max_usd

    async def run() -> None:
        assert (await leases.reserve(cap, block)).admitted  # the whole block
        lossy.lose_answers()
        await leases.settle(cap, -0.03)  # cost 0.03 above the estimate: added, answer lost
        assert (await leases.reserve(cap, 0.01)).admitted  # the lost one again first (applied already)
        await leases.settle(cap, 0.0)
        await leases.hand_back()

    asyncio.run(run())
    assert counters.read([cap.counter_key])[cap.counter_key] == pytest.approx(block + 0.03 + 0.01, abs=1e-12)


def test_a_spend_block_whose_answer_was_lost_is_not_stranded(make_runtime):
    runtime = make_runtime()
    lossy, leases, counters = _spend_leases(runtime)
    cap = _daily_cap(1000.0)

    async def run() -> None:
        lossy.lose_answers()
        with pytest.raises(StorageUnavailableError):
            await leases.reserve(cap, 0.01)  # the block was added to the cap; the request is refused
        assert (await leases.reserve(cap, 0.01)).admitted  # the lost block again: "applied", it is ours
        await leases.settle(cap, 0.004)  # cost 0.006
        await leases.hand_back()

    asyncio.run(run())
    assert counters.read([cap.counter_key])[cap.counter_key] == pytest.approx(0.006, abs=1e-12)
