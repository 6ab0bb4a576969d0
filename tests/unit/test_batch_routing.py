"""BatchRouter: batch lines take a promoted route's reserved GPUs only while they are mostly idle,
wait while users keep them busy, and go to the other tiers when the batch's deadline is near."""

from __future__ import annotations

import pytest

from functions.batch.routing import DEADLINE, BatchRouter
from functions.core.errors import OverloadedError

from .test_router_table import _ctx, _promoted, _router, _tiers


def batch_router(inner, now: float = 0.0) -> BatchRouter:
    return BatchRouter(inner, reserved_share=0.5, deadline_margin_s=3600, clock=lambda: now)


def line(deadline: float = 86_400):
    ctx = _ctx()
    ctx.state[DEADLINE] = deadline
    return ctx


def test_unpromoted_route_runs_on_its_interactive_tiers():
    inner, *_ = _router()
    assert _tiers(batch_router(inner).targets(line())) == ["serverless", "overflow"]


def test_idle_reserved_takes_batch_lines_up_to_its_share_then_they_wait():
    inner, *_ = _router(_promoted(max_in_flight=4))
    router = batch_router(inner)
    first, second = router.targets(line()), router.targets(line())
    assert _tiers(first)[0] == _tiers(second)[0] == "reserved"
    with pytest.raises(OverloadedError):  # half the slots in use: the rest is the users'
        router.targets(line())
    assert _tiers(inner.targets(_ctx()))[0] == "reserved"  # a user still gets reserved


def test_users_keeping_reserved_busy_hold_batch_lines_back():
    inner, *_ = _router(_promoted(max_in_flight=2))
    inner.targets(_ctx())  # one user request in flight: half of two slots
    with pytest.raises(OverloadedError):
        batch_router(inner).targets(line())


def test_near_the_deadline_a_line_runs_even_when_reserved_is_busy():
    inner, *_ = _router(_promoted(max_in_flight=2))
    inner.targets(_ctx())
    inner.targets(_ctx())  # reserved full
    router = batch_router(inner, now=86_400 - 1800)  # half an hour before the window ends
    assert _tiers(router.targets(line()))[0] == "serverless"
