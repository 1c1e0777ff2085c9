"""``cancel_and_wait`` ends a task even when a library swallows its cancellation."""

from __future__ import annotations

import asyncio

from hs.tasks import cancel_and_wait


async def test_task_that_swallows_a_cancellation_is_still_stopped() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1  # e.g. turned into a connection error and retried

    task = asyncio.get_running_loop().create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(task), timeout=5)
    assert task.cancelled() and swallowed == 1


async def test_finished_failed_and_missing_tasks() -> None:
    async def fail() -> None:
        raise ValueError("boom")

    failed = asyncio.get_running_loop().create_task(fail())
    await asyncio.sleep(0)
    await cancel_and_wait(failed)  # its error is retrieved, not raised
    assert isinstance(failed.exception(), ValueError)
    await cancel_and_wait(None)
