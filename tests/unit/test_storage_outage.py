"""What each stage does when its store cannot answer: kill switches fail closed, a key not in the
cache is a 503 (not a 401), the response cache is a miss, the ledger retries a failed batch as
it was; all of it logged once per interval, and ``/health`` says which store stopped answering."""

from __future__ import annotations

import asyncio
import logging
import threading

import orjson
import pytest

from functions.core.chat import ChatRequest, Completion, Usage
from functions.core.context import RequestContext, Tenant
from functions.core.dependency_health import DependencyHealth
from functions.core.errors import AuthenticationError, BudgetExceededError, StorageUnavailableError
from functions.core.keys import ApiKeyRecord, hash_api_key
from functions.core.killswitch import KillSwitchFlag
from functions.core.rate_limited_log import RateLimitedLog
from functions.gateway.auth import Authenticator
from functions.gateway.health import HealthCheck
from functions.gateway.response_cache import TieredResponseCache
from functions.guardrails.kill_switch_guard import KillSwitchGuard
from functions.quotas.ledger import UsageLedger
from tests.fakes.cache_store import InMemoryCacheStore
from tests.fakes.guardrails import FakeGuardrailStore
from tests.support import make_config


pytestmark = pytest.mark.usefixtures("no_fail_fast_window")  # stores come back at once here

CONFIG = make_config({"routes": {"chat": {"cache": {"exact": True, "semantic": False, "ttl-s": 100}}}})


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _ctx(route="chat", tenant="acme", question="hi") -> RequestContext:
    chat = ChatRequest.model_validate({"model": route, "temperature": 0,
                                       "messages": [{"role": "user", "content": question}]})
    return RequestContext(request_id="r", route_name=route, route=CONFIG.routes[route], kind="chat",
                          tenant=Tenant(tenant, "pro", CONFIG.plans["pro"]), chat=chat, max_tokens=8)


class Outage:
    """A store's switch: ``down`` raises as the adapters do; ``frozen`` blocks until released."""

    def __init__(self) -> None:
        self.down = False
        self.release = threading.Event()
        self.frozen = False
        self.calls = 0

    def check(self) -> None:
        self.calls += 1
        if self.frozen:
            self.release.wait(10)
        if self.down:
            raise StorageUnavailableError("the gateway's test store is unavailable; try again shortly")


# -- kill switch: fails closed ----------------------------------------------------------------


class FlakyGuardrails(FakeGuardrailStore):
    def __init__(self, outage: Outage) -> None:
        super().__init__()
        self.outage = outage

    def flags(self):
        self.outage.check()
        return super().flags()


def test_kill_switch_fails_closed_once_its_copy_is_too_old_and_recovers():
    outage, mono = Outage(), Clock()
    guard = KillSwitchGuard(FlakyGuardrails(outage), refresh_s=1.0, monotonic=mono)

    async def run():
        await guard.admit(_ctx())  # first read
        outage.down = True
        mono.t += 1.5  # stale: the re-read fails, the copy is still trusted
        await guard.admit(_ctx())
        reads = outage.calls
        mono.t += 0.6  # over twice flag-refresh-s old, and the failed re-read waits a second
        with pytest.raises(StorageUnavailableError) as refused:
            await guard.admit(_ctx())
        for _ in range(50):  # refused at once, without a store call per request
            with pytest.raises(StorageUnavailableError):
                await guard.admit(_ctx())
        assert outage.calls == reads
        outage.down = False
        mono.t += 1.0
        await guard.admit(_ctx())
        return refused.value

    error = asyncio.run(run())
    assert error.status == 503 and error.code == "storage_unavailable"
    assert error.headers["retry-after"] == "2"


def test_kill_switch_that_never_read_its_flags_refuses():
    outage = Outage()
    outage.down = True
    with pytest.raises(StorageUnavailableError):
        asyncio.run(KillSwitchGuard(FlakyGuardrails(outage), refresh_s=3.0).admit(_ctx()))


def test_an_engaged_flag_still_refuses_with_its_budget_while_the_store_is_down():
    outage, mono = Outage(), Clock()
    store = FlakyGuardrails(outage)
    store.put_flag(KillSwitchFlag(scope="global", action="refuse", reason="r", budget="global cap", source="s",
                                  engaged_at=0.0))
    guard = KillSwitchGuard(store, refresh_s=1.0, monotonic=mono)
    with pytest.raises(BudgetExceededError):
        asyncio.run(guard.admit(_ctx()))
    outage.down = True
    mono.t += 10
    with pytest.raises(BudgetExceededError):
        asyncio.run(guard.admit(_ctx()))


def test_a_frozen_flag_store_costs_a_request_one_deadline_not_a_hang(monkeypatch):
    import functions.guardrails.kill_switch_guard as module
    from functions.adapters import store_calls

    async def short_deadline(function, *args, store, deadline_s=0.2):
        return await original(function, *args, store=store, deadline_s=deadline_s)

    original = store_calls.call_store
    monkeypatch.setattr(module, "call_store", short_deadline)
    outage = Outage()
    outage.frozen = True
    guard = KillSwitchGuard(FlakyGuardrails(outage), refresh_s=1.0)

    async def run():
        results = await asyncio.gather(*(guard.admit(_ctx()) for _ in range(8)), return_exceptions=True)
        outage.release.set()
        return results

    results = asyncio.run(run())
    assert all(isinstance(r, StorageUnavailableError) for r in results)
    assert outage.calls == 1  # one re-read for all of them


# -- auth: 503, never a cached 401 ------------------------------------------------------------


class FlakyKeys:
    def __init__(self, outage: Outage) -> None:
        self.outage = outage
        self.records = {}

    def get(self, key_hash):
        self.outage.check()
        return self.records.get(key_hash)


def test_an_uncached_key_is_503_while_the_key_store_is_down_and_works_after():
    outage = Outage()
    keys = FlakyKeys(outage)
    keys.records[hash_api_key("tu-good")] = ApiKeyRecord(key_hash=hash_api_key("tu-good"), tenant_id="acme",
                                                         plan="pro", created_at=1)
    auth = Authenticator(keys, CONFIG)
    outage.down = True
    with pytest.raises(StorageUnavailableError):
        asyncio.run(auth.authenticate("Bearer tu-good"))
    outage.down = False
    assert asyncio.run(auth.authenticate("Bearer tu-good")).tenant_id == "acme"
    outage.down = True
    assert asyncio.run(auth.authenticate("Bearer tu-good")).tenant_id == "acme"  # cached
    with pytest.raises(StorageUnavailableError):
        asyncio.run(auth.authenticate("Bearer tu-other"))
    outage.down = False
    with pytest.raises(AuthenticationError):
        asyncio.run(auth.authenticate("Bearer tu-other"))


# -- response cache: a miss, and then no waiting on a store that just failed --------------------


class FlakyCacheStore(InMemoryCacheStore):
    def __init__(self, outage: Outage) -> None:
        super().__init__()
        self.outage = outage

    def get_answer(self, entry_key):
        self.outage.check()
        return super().get_answer(entry_key)

    def put_answer(self, *args, **kwargs):
        self.outage.check()
        return super().put_answer(*args, **kwargs)


def test_a_cache_store_outage_is_a_miss_and_the_store_is_skipped_for_a_while():
    from functions.gateway.response_cache import OUTAGE_SKIP_S

    outage, mono = Outage(), Clock()
    cache = TieredResponseCache(CONFIG, FlakyCacheStore(outage), monotonic=mono)
    outage.down = True
    first = _ctx(question="first")
    assert asyncio.run(cache.lookup(first)) is None and first.cache_status == "miss"
    calls = outage.calls
    second = _ctx(question="second")
    assert asyncio.run(cache.lookup(second)) is None
    asyncio.run(cache.store(second, Completion(text="a", finish_reason="stop", usage=Usage(1, 1), model="m")))
    assert outage.calls == calls  # skipped: no second wait on a store that just failed
    outage.down = False
    mono.t += OUTAGE_SKIP_S
    third = _ctx(question="third")
    assert asyncio.run(cache.lookup(third)) is None
    assert outage.calls == calls + 1


# -- ledger: a failed batch is retried as it was -----------------------------------------------


class BatchAggregates:
    def __init__(self) -> None:
        self.fail = 0
        self.calls = []

    def add(self, rows, batch=None) -> None:
        self.calls.append((batch, sum(r.requests for r in rows if r.scope == "route:chat")))
        if self.fail:
            self.fail -= 1
            raise StorageUnavailableError("the gateway's usage store is unavailable; try again shortly")


def _served(n: int):
    from tests.unit.test_usage_ledger import entry

    return [entry(i) for i in range(n)]


def test_a_failed_batch_is_retried_under_its_own_id_before_new_entries(caplog, monkeypatch):
    from functions.quotas import ledger as ledger_module

    # a fresh once-per-interval log: another test's failure must not have used this interval up
    monkeypatch.setattr(ledger_module, "_failures", RateLimitedLog(ledger_module.log))
    aggregates = BatchAggregates()
    ledger = UsageLedger(aggregates, writer="w1")

    async def run():
        aggregates.fail = 3
        ledger._buffer.extend(_served(2))
        await ledger.flush()  # batch 1 fails
        ledger._buffer.extend(_served(3))
        await ledger.flush()  # batch 1 again (fails), batch 2 waits
        ledger._buffer.extend(_served(4))
        await ledger.flush()  # batch 1 again (fails); the new entries join batch 2, never tried
        await ledger.flush()  # batch 1, then batch 2
        await ledger.flush()  # nothing left

    with caplog.at_level(logging.WARNING, logger="tierup.ledger"):
        asyncio.run(run())
    ids = [(batch.writer, batch.seq) for batch, _ in aggregates.calls]
    assert ids == [("w1", 1), ("w1", 1), ("w1", 1), ("w1", 1), ("w1", 2)]
    assert [count for _, count in aggregates.calls] == [2, 2, 2, 2, 7]
    assert len([r for r in caplog.records if r.name == "tierup.ledger"]) == 1  # once per interval
    assert not any(r.exc_info for r in caplog.records)


# -- logging and health -------------------------------------------------------------------------


def test_a_recurring_failure_is_logged_once_per_interval(caplog):
    mono = Clock()
    limited = RateLimitedLog(logging.getLogger("tierup.test"), 10.0, monotonic=mono)
    with caplog.at_level(logging.WARNING, logger="tierup.test"):
        for _ in range(500):
            limited.warning("dynamodb", "store down: %s", "refused")
        mono.t += 10
        limited.warning("dynamodb", "store down: %s", "refused")
        limited.warning("other", "another kind")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["store down: refused", "store down: refused (and 499 more like it in the last 10s)",
                        "another kind"]


def test_health_reports_a_store_that_stopped_answering_and_its_recovery():
    health, mono, outage = DependencyHealth(), Clock(), Outage()

    def probe():
        try:
            outage.check()
        except StorageUnavailableError:
            health.failed("dynamodb", "EndpointConnectionError")
            raise
        health.succeeded("dynamodb")

    check = HealthCheck(health, probe, monotonic=mono)
    assert asyncio.run(check.report())[0] == 200 and outage.calls == 0  # nothing known: no probe
    health.succeeded("dynamodb")
    status, body = asyncio.run(check.report())
    assert status == 200 and orjson.loads(body) == {"status": "ok", "dependencies": {"dynamodb": "ok"}}
    outage.down = True
    health.failed("dynamodb", "ReadTimeoutError: read timeout")
    status, body = asyncio.run(check.report())
    report = orjson.loads(body)
    assert status == 503 and report["status"] == "degraded"
    assert report["dependencies"]["dynamodb"]["status"] == "unavailable"
    assert asyncio.run(check.report())[0] == 503
    assert outage.calls == 1  # probed at most every PROBE_EVERY_S
    outage.down = False
    mono.t += 5
    assert asyncio.run(check.report())[0] == 200
