"""Presence (spec "Presence"): online / unavailable / offline, status messages, last active.

State lives in ``PresenceStore`` (one row per user on the ``presence`` stream); a change
wakes the user and everyone sharing a room with them. Activity (``PUT .../status`` online,
``/sync?set_presence=online``) bumps ``last_active_ts`` at most once per
``ACTIVE_GRANULARITY_MS``; while the user is ``currently_active`` only the time is
refreshed, without a stream update (spec "Last active ago"), so a client syncing in a loop
does not wake its room-mates. A timer turns users idle for ``IDLE_MS`` "unavailable" (spec
"Idle timeout") and tells their room-mates; reads serve such a row as "unavailable" even
before the timer gets to it. With ``presence.enabled: false`` nothing is stored or
delivered and reads answer "offline", as Synapse does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from dataclasses import replace
from typing import Any

from hs.http.errors import bad_json, forbidden, not_found
from hs.notifier import Notifier
from hs.storage.e2e import E2EStore
from hs.storage.presence import PresenceRow, PresenceStore

logger = logging.getLogger(__name__)
STREAM = "presence"
STATES = ("online", "unavailable", "offline")
#: The spec's example threshold for the automatic "unavailable".
IDLE_MS = 5 * 60_000
#: Activity closer than this to the stored last-active time is not written again.
ACTIVE_GRANULARITY_MS = 60_000
#: How often "online" users are checked for the idle timeout.
IDLE_SWEEP_S = 30.0
#: Users whose latest row is kept in memory (a hot-path read for every /sync request).
_CACHE_MAX = 100_000
MAX_STATUS_MSG = 4096
_UNSET: Any = object()


class PresenceHandler:
    def __init__(self, store: PresenceStore, e2e: E2EStore, notifier: Notifier,
                 clock: Callable[[], int], enabled: bool = True) -> None:
        self.store = store
        self.e2e = e2e
        self.notifier = notifier
        self.clock = clock
        self.enabled = enabled
        self._latest: dict[str, PresenceRow | None] = {}
        self._idle_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def current(self) -> int:
        return self.store.stream.current()

    # -- reads ------------------------------------------------------------------------------

    async def _row(self, user_id: str) -> PresenceRow | None:
        if user_id in self._latest:
            return self._latest[user_id]
        row = await self.store.get(user_id)
        self._remember(user_id, row)
        return row

    def _remember(self, user_id: str, row: PresenceRow | None) -> None:
        if len(self._latest) >= _CACHE_MAX:
            self._latest.clear()
        self._latest[user_id] = row

    def content(self, row: PresenceRow | None) -> dict[str, Any]:
        """The ``m.presence`` content for a row: effective state, ``last_active_ago``."""
        if row is None or not self.enabled:
            return {"presence": "offline"}
        now = self.clock()
        ago = max(now - row.last_active_ts, 0)
        state = row.state
        if state == "online" and ago > IDLE_MS:
            state = "unavailable"
        out: dict[str, Any] = {"presence": state, "last_active_ago": ago}
        if state == "online":
            out["currently_active"] = row.currently_active
        if row.status_msg is not None:
            out["status_msg"] = row.status_msg
        return out

    def event(self, row: PresenceRow) -> dict[str, Any]:
        return {"type": "m.presence", "sender": row.user_id, "content": self.content(row)}

    async def get_status(self, requester: str, user_id: str) -> dict[str, Any]:
        """``GET /presence/{userId}/status``: yourself, or a user you share a room with."""
        if not self.enabled:
            return {"presence": "offline"}
        if requester != user_id and user_id not in await self.e2e.users_sharing_room(requester):
            raise forbidden("You are not allowed to see their presence.")
        row = await self._row(user_id)
        if row is None and requester != user_id:
            raise not_found("Presence state for this user was not found")
        return self.content(row)

    # -- writes -----------------------------------------------------------------------------

    @staticmethod
    def check_state(state: Any) -> str:
        if state not in STATES:
            raise bad_json(f"presence must be one of {', '.join(STATES)}")
        return str(state)

    async def set_status(self, requester: str, user_id: str, state: Any,
                         status_msg: Any = _UNSET) -> None:
        """``PUT /presence/{userId}/status``: explicit state (and message)."""
        if requester != user_id:
            raise forbidden("Cannot set presence state for other users.")
        state = self.check_state(state)
        if status_msg is not _UNSET and status_msg is not None and (
                not isinstance(status_msg, str) or len(status_msg) > MAX_STATUS_MSG):
            raise bad_json(f"status_msg must be a string of at most {MAX_STATUS_MSG} chars")
        if not self.enabled:
            return
        await self._update(user_id, state, status_msg, active=state == "online")

    async def on_sync(self, user_id: str, set_presence: str) -> None:
        """``/sync?set_presence=``: "online" (the default) marks the user active (bounded
        writes), "unavailable" marks them idle, "offline" leaves presence alone (the spec:
        "the client is not marked as being online when it uses this API")."""
        if not self.enabled or set_presence == "offline":
            return
        await self._update(user_id, set_presence, _UNSET, active=set_presence == "online")

    async def _update(self, user_id: str, state: str, status_msg: Any, *,
                      active: bool) -> None:
        row = await self._row(user_id)
        now = self.clock()
        msg = row.status_msg if row is not None and status_msg is _UNSET else (
            None if status_msg is _UNSET else status_msg)
        if row is not None and row.state == state and row.status_msg == msg:
            if not active or now - row.last_active_ts < ACTIVE_GRANULARITY_MS:
                return
            if row.currently_active:
                # Still online and active: refresh the time others read, send nothing.
                await self.store.touch(user_id, now)
                self._remember(user_id, replace(row, last_active_ts=now))
                return
        last_active = now if active else (row.last_active_ts if row else now)
        await self._write(user_id, state, msg, last_active, active)

    async def _write(self, user_id: str, state: str, msg: str | None, last_active: int,
                     active: bool) -> None:
        new = await self.store.set(user_id, state, msg, last_active, active)
        self._remember(user_id, new)
        watchers = await self.e2e.users_sharing_room(user_id)
        watchers.add(user_id)
        self.notifier.notify(STREAM, new.stream_id, users=watchers)
        if state == "online":
            self._arm_idle_timer()

    # -- idle -------------------------------------------------------------------------------

    def _arm_idle_timer(self) -> None:
        if self._idle_timer is not None:
            return
        loop = asyncio.get_running_loop()
        self._idle_timer = loop.call_later(IDLE_SWEEP_S, self._on_idle_timer)

    def _on_idle_timer(self) -> None:
        self._idle_timer = None
        task = asyncio.get_running_loop().create_task(self._sweep_logged())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sweep_logged(self) -> None:
        try:
            if await self.sweep_idle():
                return
        except Exception:
            logger.exception("presence: idle sweep failed")
        self._arm_idle_timer()

    async def sweep_idle(self) -> bool:
        """Turn "online" users idle for ``IDLE_MS`` "unavailable" (spec "Idle timeout"),
        telling those who share a room. True when nobody is left online (the timer is
        then re-armed by the next "online" write)."""
        now = self.clock()
        for row in await self.store.idle_online(now - IDLE_MS):
            await self._write(row.user_id, "unavailable", row.status_msg,
                              row.last_active_ts, False)
        remaining = await self.store.idle_online(now + 1)
        if remaining:
            self._arm_idle_timer()
        return not remaining

    def close(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        for task in self._tasks:
            task.cancel()

    # -- sync -------------------------------------------------------------------------------

    async def for_sync(self, user_id: str, since: int, upto: int,
                       sharing: Collection[str] | None = None) -> list[dict[str, Any]]:
        """``m.presence`` events for ``/sync``: changes in ``(since, upto]`` of the user
        and users sharing a room with them (initial sync: their current presence)."""
        if not self.enabled or since >= upto:
            return []
        if since == 0:
            if sharing is None:
                sharing = await self.e2e.users_sharing_room(user_id)
            found = await self.store.get_many({user_id, *sharing})
            rows = sorted((r for r in found.values() if r.stream_id <= upto),
                          key=lambda r: r.stream_id)
        else:
            rows = await self.store.changed_since(since, upto)
            if not rows:
                return []
            if sharing is None:
                sharing = await self.e2e.users_sharing_room(user_id)
        latest: dict[str, PresenceRow] = {}
        for row in rows:
            if row.user_id == user_id or row.user_id in sharing:
                latest[row.user_id] = row
        return [self.event(r) for r in latest.values()]


__all__ = ["IDLE_MS", "STATES", "PresenceHandler"]
