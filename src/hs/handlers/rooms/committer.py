"""Group commit: the batches of different rooms that are ready at the same time are
persisted in ONE transaction.

Each room's writer (``linearizer``) folds the sends queued for its room into one batch,
which helps a busy room but not many quiet ones: with one sender per room every batch is
a single event and pays a whole transaction of its own (stream position allocation,
BEGIN, a dozen statements, COMMIT). The committer is one queue in front of
``EventsStore.persist_events``: whatever batches were submitted while the previous commit
ran are persisted together by the next one, so the fixed cost is shared by every room
that had something ready.

Why this stays correct:

* A room's writer submits its next batch only after the previous one resolved, and a
  group never holds two batches of the same room (a second one waits for the next
  group), so each room's events still commit in order, each batch after its predecessor.
  That also keeps the per-room ``current_state`` deltas apart: the persister applies a
  room's delta instead of that room's default, which two batches of one room in one call
  would get wrong.
* The persister already handles batches spanning rooms: per-room locks taken in sorted
  order, extremities and current state per room, one result per input event in order.
* A failed group is retried batch by batch, so an error (a bad batch, a constraint) fails
  only the batch that causes it and the others still commit.
* A batch is acknowledged only after the transaction holding it committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from hs.core.pdu import StateKey
from hs.storage.events.types import EventToPersist, PersistedEvent

logger = logging.getLogger(__name__)

#: ``persist(batch, current_state, expected_extremities) -> one result per event``
#: (``EventsStore.persist_events``).
Persist = Callable[
    [list[EventToPersist], Mapping[str, Mapping[StateKey, str | None]] | None,
     Mapping[str, frozenset[str]] | None],
    Awaitable[list[PersistedEvent]],
]

#: A group stops growing at this many events (bounds one transaction's size).
MAX_GROUP_EVENTS = 1000


@dataclass(slots=True)
class _Pending:
    room_id: str
    batch: list[EventToPersist]
    current_delta: Mapping[StateKey, str | None] | None
    expected: frozenset[str] | None
    future: asyncio.Future[list[PersistedEvent]]


def _consume(fut: asyncio.Future[object]) -> None:
    """Mark a failure as seen: the submitting writer may have been cancelled."""
    if not fut.cancelled():
        fut.exception()


class GroupCommitter:
    """See the module docstring."""

    def __init__(self, persist: Persist, *, max_events: int = MAX_GROUP_EVENTS) -> None:
        self._persist = persist
        self._max_events = max_events
        self._queue: deque[_Pending] = deque()
        self._task: asyncio.Task[None] | None = None
        #: Transactions committed (a group of several rooms' batches counts once).
        self.commits = 0
        #: Batches persisted through those transactions.
        self.batches = 0

    async def submit(self, room_id: str, batch: list[EventToPersist],
                     current_delta: Mapping[StateKey, str | None] | None = None,
                     expected_extremities: frozenset[str] | None = None
                     ) -> list[PersistedEvent]:
        """Persist ``batch`` (events of ``room_id`` only) in the next group; one result
        per event, in order. Raises what persisting this batch raised (e.g.
        ``StaleExtremitiesError`` when ``expected_extremities`` no longer hold)."""
        fut: asyncio.Future[list[PersistedEvent]] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(_consume)
        self._queue.append(_Pending(room_id, batch, current_delta, expected_extremities,
                                    fut))
        if self._task is None:
            self._task = asyncio.create_task(self._drain())
        # Shielded: a cancelled writer must not cancel a commit other rooms share.
        return await asyncio.shield(fut)

    def _take(self) -> list[_Pending]:
        """The next group: queued batches in order, one per room, up to the size cap."""
        group: list[_Pending] = []
        rooms: set[str] = set()
        events = 0
        rest: deque[_Pending] = deque()
        while self._queue:
            item = self._queue.popleft()
            if item.room_id in rooms or (group and events + len(item.batch) > self._max_events):
                rest.append(item)
                continue
            group.append(item)
            rooms.add(item.room_id)
            events += len(item.batch)
        self._queue = rest
        return group

    async def _drain(self) -> None:
        try:
            while self._queue:
                # Let the other writers of this loop iteration join the group.
                await asyncio.sleep(0)
                await self._commit(self._take())
        finally:
            self._task = None
            while self._queue:  # cancelled (shutdown) with work left: fail, don't hang
                item = self._queue.popleft()
                if not item.future.done():
                    item.future.set_exception(RuntimeError("event committer stopped"))

    async def _commit(self, group: list[_Pending]) -> None:
        if len(group) == 1:
            await self._commit_one(group[0])
            return
        batch = [e for item in group for e in item.batch]
        deltas = {i.room_id: i.current_delta for i in group if i.current_delta is not None}
        expected = {i.room_id: i.expected for i in group if i.expected is not None}
        try:
            results = await self._persist(batch, deltas or None, expected or None)
        except asyncio.CancelledError:
            for item in group:
                if not item.future.done():
                    item.future.set_exception(RuntimeError("event committer stopped"))
            raise
        except Exception:
            # Nothing of the group was written: find the culprit by committing alone.
            logger.info("group commit of %d batches failed; retrying them one by one",
                        len(group), exc_info=True)
            for item in group:
                await self._commit_one(item)
            return
        self.commits += 1
        self.batches += len(group)
        start = 0
        for item in group:
            end = start + len(item.batch)
            if not item.future.done():
                item.future.set_result(results[start:end])
            start = end

    async def _commit_one(self, item: _Pending) -> None:
        try:
            results = await self._persist(
                item.batch,
                None if item.current_delta is None else {item.room_id: item.current_delta},
                None if item.expected is None else {item.room_id: item.expected})
        except asyncio.CancelledError:
            if not item.future.done():
                item.future.set_exception(RuntimeError("event committer stopped"))
            raise
        except Exception as exc:
            if not item.future.done():
                item.future.set_exception(exc)
            return
        self.commits += 1
        self.batches += 1
        if not item.future.done():
            item.future.set_result(results)

    async def close(self) -> None:
        """Stop the drain task (shutdown); queued batches fail."""
        task = self._task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


__all__ = ["MAX_GROUP_EVENTS", "GroupCommitter", "Persist"]

