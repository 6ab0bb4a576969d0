"""The garbage collector is held off while the gateway starts and left as it was afterwards: start-up
allocates what lives as long as the process, and collections during it only walk that again
(cold-start CPU, ten times longer on a small Lambda's share of a vCPU)."""

from __future__ import annotations

import asyncio
import gc

import pytest

from functions.core.config import load_config
from functions.gateway.app import GatewayApp
from functions.gateway.start_up_gc import collections_paused
from tests.support import EXAMPLE_CONFIG


@pytest.fixture(autouse=True)
def collector_enabled():
    was_enabled = gc.isenabled()
    gc.enable()
    yield
    if not was_enabled:
        gc.disable()


def test_collections_wait_inside_the_block_and_resume_after_it():
    with collections_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collections_paused():
        raise RuntimeError("a start-up step failed")
    assert gc.isenabled()


def test_a_collector_already_off_stays_off():
    gc.disable()
    with collections_paused():
        pass
    assert not gc.isenabled()


def _start(hooks) -> list[dict]:
    app = GatewayApp(config=load_config(EXAMPLE_CONFIG), auth=None, pipeline=None, on_startup=hooks)
    sent: list[dict] = []

    async def receive():
        return {"type": "lifespan.startup"} if not sent else {"type": "lifespan.shutdown"}

    async def send(message):
        sent.append(message)

    asyncio.run(app({"type": "lifespan"}, receive, send))
    return sent


def test_start_up_hooks_run_without_collections_and_the_collector_is_back_once_started():
    seen = []

    async def hook():
        seen.append(gc.isenabled())

    sent = _start([hook])
    assert seen == [False]
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert gc.isenabled()


def test_a_failed_start_up_still_gives_the_collector_back():
    async def failing_hook():
        raise RuntimeError("no table")

    sent = _start([failing_hook])
    assert sent == [{"type": "lifespan.startup.failed", "message": "no table"}]
    assert gc.isenabled()
