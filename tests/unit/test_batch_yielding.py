"""InteractiveFirst: batch lines wait their turn while the gateway serves users, and go on when it is idle."""

from __future__ import annotations

import asyncio

from functions.batch.yielding import BatchAdmission, InteractiveFirst


class Slots:
    name = "admission"

    def __init__(self) -> None:
        self.in_flight = 0

    async def admit(self, ctx) -> None:
        self.in_flight += 1

    async def release(self, ctx) -> None:
        self.in_flight -= 1


def test_batch_admission_tells_users_from_lines():
    slots = Slots()
    counted = BatchAdmission(slots)
    asyncio.run(slots.admit(None))  # a user's request
    asyncio.run(counted.admit(None))  # a batch line, through the worker's pipeline
    assert (slots.in_flight, counted.interactive()) == (2, 1)
    asyncio.run(counted.release(None))
    asyncio.run(slots.release(None))
    assert counted.interactive() == 0


def test_a_second_line_waits_while_users_are_served_and_runs_once_they_are_gone():
    users = [1]
    pacer = InteractiveFirst(lambda: users[0])
    started: list[int] = []

    async def line(n: int, hold: asyncio.Event) -> None:
        async with pacer.turn(4):
            started.append(n)
            await hold.wait()

    async def scenario() -> None:
        hold = asyncio.Event()
        tasks = [asyncio.create_task(line(n, hold)) for n in range(3)]
        await asyncio.sleep(0.1)
        assert started == [0]  # one line at a time while a user's request is in flight
        users[0] = 0
        for _ in range(100):  # the waiting lines look again within MAX_WAIT_S
            if len(started) == 3:
                break
            await asyncio.sleep(0.05)
        assert sorted(started) == [0, 1, 2]  # idle: up to line-concurrency
        hold.set()
        await asyncio.gather(*tasks)

    asyncio.run(scenario())
