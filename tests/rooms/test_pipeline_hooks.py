"""The pipeline wakes readers before its post-persist hooks run; ``hooks_settled`` lets a
reader of what the hooks write (unread counts) wait for exactly the batches it covers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from hs.handlers.rooms.pipeline import EventPipeline
from hs.notifier import Notifier
from hs.storage.events.types import EventToPersist, PersistedEvent


async def test_wake_before_hooks_and_readers_wait() -> None:
    notifier = Notifier()
    pipeline = EventPipeline(None, notifier, "test", lambda: [])  # type: ignore[arg-type]

    async def submit(room_id: str, batch: list[EventToPersist],
                     delta: Mapping[Any, Any] | None = None,
                     expected: frozenset[str] | None = None) -> list[PersistedEvent]:
        return [PersistedEvent("$e", 7, None)]

    pipeline.committer.submit = submit  # type: ignore[method-assign]
    gate = asyncio.Event()
    done: list[str] = []

    async def hook(room_id: str, batch: Sequence[EventToPersist],
                   results: Sequence[PersistedEvent]) -> None:
        await gate.wait()
        done.append(room_id)

    pipeline.on_persisted.append(hook)
    with notifier.watch(rooms=["!r:test"]) as waiter:
        persisting = asyncio.ensure_future(pipeline.persist([], "!r:test"))
        assert await waiter.wait(1)
        assert not done  # woken while the hook still runs
        settled = asyncio.ensure_future(pipeline.hooks_settled(7))
        await asyncio.sleep(0.01)
        assert not settled.done()
        # A reader whose range ends before the batch does not wait for it.
        await asyncio.wait_for(pipeline.hooks_settled(6), 1)
        gate.set()
        await asyncio.wait_for(settled, 1)
        assert done == ["!r:test"]
        assert [r.stream_ordering for r in await persisting] == [7]
    await asyncio.wait_for(pipeline.hooks_settled(100), 1)  # nothing in flight


async def test_failed_persist_releases_readers() -> None:
    pipeline = EventPipeline(None, Notifier(), "test", lambda: [])  # type: ignore[arg-type]

    async def submit(*args: Any) -> list[PersistedEvent]:
        raise RuntimeError("boom")

    pipeline.committer.submit = submit  # type: ignore[method-assign]
    with contextlib.suppress(RuntimeError):
        await pipeline.persist([], "!r:test")
    await asyncio.wait_for(pipeline.hooks_settled(1), 1)
