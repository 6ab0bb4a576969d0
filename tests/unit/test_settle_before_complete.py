"""What a request owes is written just before its response's last message, and a store that
stops answering delays the response by a bounded time only."""

from __future__ import annotations

import asyncio

from functions.gateway.app import SettleBeforeComplete
from functions.quotas import wiring
from functions.quotas.wiring import Flusher


def test_hooks_run_once_just_before_the_last_message():
    events: list[str] = []

    async def send(message):
        events.append(f"{message['type']}:{message.get('body', b'').decode()}:{message.get('more_body', False)}")

    async def hook():
        events.append("hook")

    async def respond():
        settling = SettleBeforeComplete(send, [hook])
        await settling({"type": "http.response.start", "status": 200, "headers": []})
        await settling({"type": "http.response.body", "body": b"a", "more_body": True})
        assert not settling.completed
        await settling({"type": "http.response.body", "body": b"[DONE]"})
        return settling.completed

    assert asyncio.run(respond())
    assert events == ["http.response.start::False", "http.response.body:a:True", "hook",
                      "http.response.body:[DONE]:False"]


class _StuckLedger:
    def __init__(self) -> None:
        self.finished = asyncio.Event()

    async def flush(self) -> None:
        await asyncio.sleep(0.5)
        self.finished.set()


def test_a_stuck_store_delays_the_response_by_the_deadline_only(monkeypatch):
    monkeypatch.setattr(wiring, "SETTLE_DEADLINE_S", 0.05)

    async def run():
        ledger = _StuckLedger()
        flusher = Flusher(3600, None, ledger)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await flusher.settle_owed()
        waited = loop.time() - started
        await asyncio.wait_for(ledger.finished.wait(), 2)  # the write went on, not abandoned
        return waited

    assert asyncio.run(run()) < 0.4
