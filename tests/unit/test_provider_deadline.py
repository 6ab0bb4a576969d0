"""``ProviderDeadline``: one timer bounds many waits; it interrupts only a wait on the provider and
never mistakes someone else's cancellation (the client leaving, shutdown) for its own."""

from __future__ import annotations

import asyncio

import pytest

from functions.gateway.deadline import ProviderDeadline


class Expired(Exception):
    pass


def test_waits_share_one_deadline():
    async def main():
        deadline = ProviderDeadline(0.2, Expired)
        done = 0
        with pytest.raises(Expired):
            while True:  # each wait is short; together they outlive the deadline
                await deadline.wait(asyncio.sleep(0.03))
                done += 1
        deadline.close()
        return done

    assert 2 <= asyncio.run(main()) <= 7


def test_time_spent_outside_a_wait_is_never_interrupted_the_next_wait_fails_at_once():
    async def main():
        deadline = ProviderDeadline(0.05, Expired)
        await deadline.wait(asyncio.sleep(0))
        await asyncio.sleep(0.15)  # relaying to the client: the deadline passes here, untouched
        with pytest.raises(Expired):
            await deadline.wait(asyncio.sleep(10))
        assert asyncio.current_task().cancelling() == 0

    asyncio.run(asyncio.wait_for(main(), 5))


def test_someone_elses_cancellation_stays_a_cancellation():
    async def waiter(deadline):
        await deadline.wait(asyncio.sleep(10))

    async def main():
        deadline = ProviderDeadline(5.0, Expired)
        task = asyncio.create_task(waiter(deadline))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        deadline.close()

    asyncio.run(main())


def test_a_deadline_that_fires_leaves_the_task_uncancelled():
    async def main():
        deadline = ProviderDeadline(0.05, Expired)
        with pytest.raises(Expired):
            await deadline.wait(asyncio.sleep(10))
        assert asyncio.current_task().cancelling() == 0
        await asyncio.sleep(0.01)  # the task goes on normally

    asyncio.run(main())
