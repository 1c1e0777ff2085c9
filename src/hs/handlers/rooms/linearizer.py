"""One writer per room: a per-key queue drained in batches by a single task.

Every local event of a room is built on the previous one (prev_events, depth, state), so
the sends of one room must be serialized. Rather than take a lock per send and commit
one transaction per event, each room gets a queue; the room's drain task takes what has
piled up (up to ``max_batch``) and hands it to ``process`` in one call, which persists
the whole batch in one transaction. Under load a busy room therefore commits far fewer
transactions than it receives events, while an idle room costs nothing (its task ends
when its queue is empty, so memory is bounded by the rooms with pending work).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

#: ``process(key, items) -> one result or exception per item``, in order.
Processor = Callable[[str, Sequence[T]], Awaitable[Sequence["R | BaseException"]]]


def _consume(fut: asyncio.Future[object]) -> None:
    """Mark a failure as seen: the caller may have gone away (disconnected client)."""
    if not fut.cancelled():
        fut.exception()


class BatchingLinearizer(Generic[T, R]):
    """Serializes work per key and batches whatever queued up meanwhile."""

    def __init__(self, process: Processor[T, R], *, max_batch: int = 100) -> None:
        self._process = process
        self._max_batch = max_batch
        self._queues: dict[str, deque[tuple[T, asyncio.Future[R]]]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        #: Batches handed to ``process`` so far (observability and tests).
        self.batches = 0
        #: Items processed so far.
        self.items = 0

    async def submit(self, key: str, item: T) -> R:
        """Queue ``item`` for ``key`` and wait for its result.

        The work is shielded: a client that disconnects does not cancel a send that is
        already queued (its transaction ID must still end up naming the event).
        """
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(_consume)
        self._queues.setdefault(key, deque()).append((item, fut))
        if key not in self._tasks:
            self._tasks[key] = asyncio.create_task(self._drain(key))
        return await asyncio.shield(fut)

    def pending(self, key: str) -> int:
        return len(self._queues.get(key, ()))

    async def _drain(self, key: str) -> None:
        try:
            while True:
                queue = self._queues.get(key)
                if not queue:
                    break
                # Let the other sends of this loop iteration join the batch.
                await asyncio.sleep(0)
                work = [queue.popleft() for _ in range(min(len(queue), self._max_batch))]
                items = [item for item, _ in work]
                self.batches += 1
                self.items += len(items)
                try:
                    results: Sequence[R | BaseException] = await self._process(key, items)
                except Exception as exc:  # the whole batch failed (e.g. database error)
                    logger.exception("batch for %s failed", key)
                    results = [exc] * len(work)
                for (_, fut), result in zip(work, results, strict=True):
                    if fut.done():
                        continue
                    if isinstance(result, BaseException):
                        fut.set_exception(result)
                    else:
                        fut.set_result(result)
        finally:
            self._tasks.pop(key, None)
            queue = self._queues.get(key)
            if queue:  # cancelled with work left: fail it rather than hang the callers
                while queue:
                    _, fut = queue.popleft()
                    if not fut.done():
                        fut.set_exception(RuntimeError("room writer stopped"))
            self._queues.pop(key, None)

    async def close(self) -> None:
        """Cancel the drain tasks (shutdown)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
