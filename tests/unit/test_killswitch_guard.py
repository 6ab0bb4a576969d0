"""The kill-switch stage: flags read from the state store at most every flag-refresh-s, honoured
within that, refused with a 503 naming the budget and when it resets."""

from __future__ import annotations

import asyncio

import pytest

from functions.core.chat import ChatRequest
from functions.core.context import RequestContext, Tenant
from functions.core.errors import BudgetExceededError
from functions.core.killswitch import KillSwitchFlag
from functions.guardrails.kill_switch_guard import KillSwitchGuard
from tests.fakes.guardrails import FakeGuardrailStore
from tests.support import make_config

CONFIG = make_config()
NOW = 1_795_000_000.0


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _ctx(route="chat", tenant="acme") -> RequestContext:
    chat = ChatRequest.model_validate({"model": route, "messages": [{"role": "user", "content": "hi"}]})
    return RequestContext(request_id="r", route_name=route, route=CONFIG.routes[route], kind="chat",
                          tenant=Tenant(tenant, "pro", CONFIG.plans["pro"]), chat=chat, max_tokens=8)


def _flag(scope, until=None):
    return KillSwitchFlag(scope=scope, action="refuse", reason="$40.00 committed", budget=f"{scope} daily cap of $40.00",
                          source="gateway", engaged_at=NOW, until=until)


def test_flag_is_honoured_within_the_refresh_interval_without_a_read_per_request():
    store, mono = FakeGuardrailStore(), Clock()
    guard = KillSwitchGuard(store, refresh_s=3.0, clock=lambda: NOW, monotonic=mono)

    async def run():
        for _ in range(100):
            await guard.admit(_ctx())
        assert store.flag_reads == 1
        store.put_flag(_flag("route:chat", until=NOW + 3600))
        mono.t += 2.9
        await guard.admit(_ctx())  # still the old copy: not yet refreshed
        mono.t += 0.1
        with pytest.raises(BudgetExceededError) as caught:
            await guard.admit(_ctx())
        await guard.admit(_ctx("summarize"))  # other routes still served
        return caught.value

    error = asyncio.run(run())
    assert store.flag_reads == 2
    assert error.status == 503 and error.code == "budget_exceeded"
    assert "route:chat daily cap of $40.00" in error.message and "resets at" in error.message
    assert "tierup killswitch release --scope route:chat" in error.message
    assert error.headers["retry-after"] == "3600"


@pytest.mark.parametrize("scope", ["global", "route:chat", "tenant:acme"])
def test_every_scope_of_the_request_is_checked(scope):
    store = FakeGuardrailStore()
    store.put_flag(_flag(scope))
    guard = KillSwitchGuard(store, refresh_s=3.0, clock=lambda: NOW)
    with pytest.raises(BudgetExceededError) as caught:
        asyncio.run(guard.admit(_ctx()))
    assert "until an operator releases it" in caught.value.message
    assert "retry-after" not in caught.value.headers


def test_flag_past_its_period_no_longer_refuses():
    store = FakeGuardrailStore()
    store.put_flag(_flag("global", until=NOW - 1))
    asyncio.run(KillSwitchGuard(store, refresh_s=3.0, clock=lambda: NOW).admit(_ctx()))


def test_failed_reread_keeps_the_last_copy():
    class FlakyStore(FakeGuardrailStore):
        fail = False

        def flags(self):
            if self.fail:
                raise ConnectionError("dynamodb unreachable")
            return super().flags()

    store, mono = FlakyStore(), Clock()
    store.put_flag(_flag("global"))
    guard = KillSwitchGuard(store, refresh_s=3.0, clock=lambda: NOW, monotonic=mono)
    with pytest.raises(BudgetExceededError):
        asyncio.run(guard.admit(_ctx()))
    store.fail = True
    mono.t += 10
    with pytest.raises(BudgetExceededError):
        asyncio.run(guard.admit(_ctx()))
