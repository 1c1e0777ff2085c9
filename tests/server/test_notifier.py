"""The notifier wakes exactly the waiters watching the notified rooms and users."""

from __future__ import annotations

import asyncio

from hs.notifier import Notifier


async def test_wakes_only_matching_waiters() -> None:
    notifier = Notifier()
    with notifier.watch(rooms=["!a:x"]) as in_a, notifier.watch(rooms=["!b:x"]) as in_b, \
            notifier.watch(users=["@u:x"]) as user:
        assert notifier.waiter_count() == 3
        assert notifier.notify("events", 5, rooms=["!a:x"]) == 1
        assert in_a.woken and not in_b.woken and not user.woken
        assert in_a.woken_by == {"events"}
        assert notifier.notify("to_device", 2, users=["@u:x"]) == 1
        assert user.woken and not in_b.woken
        assert not await in_b.wait(0.01)
    assert notifier.waiter_count() == 0
    assert notifier.positions == {"events": 5, "to_device": 2}


async def test_notification_between_check_and_wait_is_not_lost() -> None:
    notifier = Notifier()
    with notifier.watch(rooms=["!a:x"]) as waiter:
        notifier.notify("events", 1, rooms=["!a:x"])  # lands before the wait starts
        assert await waiter.wait(5)


async def test_wait_returns_when_notified_later() -> None:
    notifier = Notifier()

    async def send_later() -> None:
        await asyncio.sleep(0.01)
        notifier.notify("receipts", 3, rooms=["!a:x"], users=["@v:x"])

    with notifier.watch(rooms=["!a:x"]) as waiter:
        task = asyncio.create_task(send_later())
        assert await waiter.wait(5)
        await task
    assert notifier.positions["receipts"] == 3
