"""Stopping background tasks for certain.

``task.cancel()`` only asks: a library that catches the ``CancelledError`` mid-operation
and raises something else (aiohttp's connector does this when a cancellation lands in a
DNS lookup) leaves a retry loop running, and an ``await task`` after it waits forever.
"""

from __future__ import annotations

import asyncio
import logging

logger = logging.getLogger(__name__)

#: How long to wait for a cancelled task before asking again.
_RECANCEL_S = 0.05


async def cancel_and_wait(task: asyncio.Task[object] | None) -> None:
    """Cancel ``task`` until it has ended; its result or error is discarded (logged when
    it failed with something other than the cancellation)."""
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=_RECANCEL_S)
    if not task.cancelled():
        exc = task.exception()  # retrieved, so asyncio does not log it as never seen
        if exc is not None:
            logger.debug("task %s ended with %r while being stopped", task.get_name(), exc)


__all__ = ["cancel_and_wait"]
