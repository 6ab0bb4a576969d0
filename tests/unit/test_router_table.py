"""TableRouter: promoted routes go to reserved, spill when saturated or failing, fall back in order."""

from __future__ import annotations

from functions.core.chat import ChatRequest
from functions.core.context import RequestContext, Tenant
from functions.core.route_table import RouteEntry
from functions.gateway.circuit_breaker import CircuitBreaker
from functions.gateway.route_table_cache import RouteTableCache
from functions.gateway.routing import ProviderRegistry
from functions.gateway.table_router import InFlightCounter, TableRouter
from tests.fakes.promotion_store import InMemoryRouteTable
from tests.fakes.providers import ScriptedProvider
from tests.support import make_config

CONFIG = make_config({"tiers": {"overflow": {"enabled": True}},
                      "policy": {"breaker-failures": 2, "breaker-cooloff-s": 10}})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _ctx(route: str = "chat") -> RequestContext:
    chat = ChatRequest.model_validate({"model": route, "messages": [{"role": "user", "content": "hi"}]})
    return RequestContext(request_id="r", route_name=route, route=CONFIG.routes[route], kind="chat",
                          tenant=Tenant("acme", "pro", CONFIG.plans["pro"]), chat=chat, max_tokens=16)


def _router(entries: dict[str, RouteEntry] | None = None):
    store = InMemoryRouteTable(entries)
    cache = RouteTableCache(store, refresh_s=5)
    assert cache.refresh()
    providers: dict[tuple[str, str], ScriptedProvider] = {}

    def factory(tier, route):
        return providers.setdefault((tier, route), ScriptedProvider(f"{tier}:{route}"))

    clock = Clock()
    router = TableRouter(ProviderRegistry(CONFIG, factory), cache, CONFIG, clock=clock)
    return router, store, cache, clock


def _tiers(targets) -> list[str]:
    return [t.tier for t in targets]


def _promoted(replicas: int = 1, max_in_flight: int = 2) -> dict[str, RouteEntry]:
    return {"chat": RouteEntry("chat", tier="reserved", replicas=replicas, target_replicas=replicas,
                               max_in_flight=max_in_flight)}


def test_unpromoted_route_uses_its_start_tier_then_fallbacks():
    router, *_ = _router()
    assert _tiers(router.targets(_ctx())) == ["serverless", "overflow"]


def test_promoted_route_goes_to_reserved_first():
    router, *_ = _router(_promoted())
    assert _tiers(router.targets(_ctx())) == ["reserved", "serverless", "overflow"]


def test_warming_route_keeps_its_traffic_on_the_start_tier():
    router, *_ = _router({"chat": RouteEntry("chat", target_replicas=2, warming_since_s=1.0)})
    assert _tiers(router.targets(_ctx())) == ["serverless", "overflow"]


def test_saturated_reserved_spills_and_frees_a_slot_when_a_request_ends():
    router, *_ = _router(_promoted(max_in_flight=2))
    first, second = router.targets(_ctx()), router.targets(_ctx())
    assert _tiers(first)[0] == _tiers(second)[0] == "reserved"
    spilled = _ctx()
    assert _tiers(router.targets(spilled)) == ["serverless", "overflow"]
    assert spilled.response_headers["x-tierup-spill"] == "saturated"
    router.report(first[0], ok=True)
    assert _tiers(router.targets(_ctx()))[0] == "reserved"


def test_other_routes_do_not_share_the_in_flight_count():
    entries = {**_promoted(max_in_flight=1),
               "summarize": RouteEntry("summarize", tier="reserved", replicas=1, target_replicas=1,
                                       max_in_flight=1)}
    router, *_ = _router(entries)
    assert _tiers(router.targets(_ctx("chat")))[0] == "reserved"
    assert _tiers(router.targets(_ctx("summarize")))[0] == "reserved"


def test_unreported_requests_stop_counting_after_the_provider_timeout():
    router, _, _, clock = _router(_promoted(max_in_flight=1))
    router.targets(_ctx())  # its client goes away: never reported
    assert _tiers(router.targets(_ctx()))[0] == "serverless"
    clock.now += CONFIG.gateway.provider_timeout_s + 6
    assert _tiers(router.targets(_ctx()))[0] == "reserved"


def test_failing_reserved_opens_the_breaker_then_half_opens_for_one_trial():
    router, _, _, clock = _router(_promoted(max_in_flight=100))
    for _ in range(2):
        router.report(router.targets(_ctx())[0], ok=False)
    spilled = _ctx()
    assert _tiers(router.targets(spilled)) == ["serverless", "overflow"]
    assert spilled.response_headers["x-tierup-spill"] == "reserved-failing"

    clock.now += 10
    trial = router.targets(_ctx())
    assert _tiers(trial)[0] == "reserved"
    assert _tiers(router.targets(_ctx()))[0] == "serverless", "one trial at a time while half-open"
    router.report(trial[0], ok=True)
    assert _tiers(router.targets(_ctx()))[0] == "reserved"


def test_open_fallback_tiers_are_skipped_unless_nothing_is_left():
    router, *_ = _router()
    overflow = router.targets(_ctx())[1]
    router.report(overflow, ok=False)
    router.report(overflow, ok=False)
    assert _tiers(router.targets(_ctx())) == ["serverless"]
    serverless = router.targets(_ctx())[0]
    router.report(serverless, ok=False)
    router.report(serverless, ok=False)
    assert _tiers(router.targets(_ctx())) == ["serverless"], "the start tier is tried rather than nothing"


def test_route_table_changes_reach_the_router_on_refresh_only():
    router, store, cache, _ = _router()
    store.write_route(_promoted()["chat"])
    assert _tiers(router.targets(_ctx()))[0] == "serverless", "no DynamoDB read on the request path"
    cache.refresh()
    assert _tiers(router.targets(_ctx()))[0] == "reserved"


def test_failed_refresh_keeps_the_last_good_table():
    router, store, cache, _ = _router(_promoted())
    store.fail_reads = True
    assert cache.refresh() is False
    assert _tiers(router.targets(_ctx()))[0] == "reserved"


def test_breaker_states():
    clock = Clock()
    breaker = CircuitBreaker(failures_to_open=3, cooloff_s=5, clock=clock)
    breaker.record(False)
    breaker.record(False)
    breaker.record(True)
    breaker.record(False)
    breaker.record(False)
    assert breaker.state == "closed", "only consecutive failures count"
    breaker.record(False)
    assert breaker.state == "open" and not breaker.allow()
    clock.now += 5
    assert breaker.state == "half-open" and breaker.allow() and not breaker.allow()
    breaker.record(False)
    assert breaker.state == "open", "a failed trial re-opens for a full cool-off"
    clock.now += 5
    assert breaker.allow()
    clock.now += 5
    assert breaker.allow(), "a trial never reported frees its slot after a cool-off"


def test_in_flight_counter():
    clock = Clock()
    counter = InFlightCounter(stale_after_s=10, clock=clock)
    counter.start()
    clock.now += 6
    counter.start()
    assert len(counter) == 2
    clock.now += 5
    assert len(counter) == 1
    counter.finish()
    counter.finish()
    assert len(counter) == 0
