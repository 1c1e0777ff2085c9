"""Device-list tracking (spec "Tracking the device list for a user").

A change to a user's devices or keys (new device keys, deleted device, new cross-signing
keys or signatures) is a row on the "device_lists" stream. Clients learn about it through
``/sync``'s ``device_lists.changed``/``left`` and ``GET /keys/changes``, both computed by
``device_list_changes_since``: the users that changed *and* share a room with the caller,
plus - when the caller gives the events-stream range too - users who started or stopped
sharing a room with it (their device lists must be fetched or may be forgotten).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

from hs.http.errors import MatrixError
from hs.notifier import Notifier
from hs.storage.e2e import E2EStore
from hs.storage.events.cache import Coalescer, LruCache
from hs.storage.streams import StreamIdGenerator

logger = logging.getLogger(__name__)

STREAM = "device_lists"
#: (device_lists position, events position or None) from a sync token.
TokenPositions = tuple[int, int | None]


class InvalidSyncToken(MatrixError):
    def __init__(self, token: str) -> None:
        super().__init__(400, "M_INVALID_PARAM", f"Invalid sync token {token!r}")


def parse_sync_token(token: str) -> TokenPositions:
    """Positions in a sync token: a bare integer is a device_lists position; a Synapse-
    style ``s<events>_<presence>_<typing>_<receipts>_<account_data>_<to_device>_<device_lists>``
    token gives both. ``/sync`` may install its own parser (``DeviceListHandler.token_parser``)."""
    text = token.strip()
    if text.isdigit():
        return int(text), None
    if text.startswith("s"):
        parts = text[1:].split("_")
        if len(parts) >= 7 and all(p.isdigit() for p in parts[:7]):
            return int(parts[6]), int(parts[0])
    raise InvalidSyncToken(token)


class DeviceListHandler:
    def __init__(self, store: E2EStore, stream: StreamIdGenerator, notifier: Notifier) -> None:
        self.store = store
        self.stream = stream
        self.notifier = notifier
        #: (from, to) events range -> whether any membership changed in it. A completed
        #: range never changes; the requests one message wakes all ask about the same
        #: range, and a message-only range lets each skip its per-user query.
        self._any_member_change: LruCache[tuple[int, int], bool] = LruCache(256)
        self._member_reads: Coalescer[tuple[int, int], bool] = Coalescer()
        #: Turns a ``/sync`` ``next_batch`` into stream positions (replaceable by /sync).
        self.token_parser: Callable[[str], TokenPositions] = parse_sync_token

    async def record_change(self, user_id: str, device_ids: Collection[str], *,
                            observer: str | None = None) -> int:
        """Put a change of ``user_id``'s devices on the stream and wake the users who care:
        everyone sharing a room with ``user_id`` (and itself), or only ``observer``."""
        async with self.stream.next() as position:
            await self.store.add_device_list_changes(
                position, [(user_id, d, observer) for d in sorted(set(device_ids)) or [""]])
        if observer is not None:
            users: set[str] = {observer}
        else:
            users = await self.store.users_sharing_room(user_id)
            users.add(user_id)
        self.notifier.notify(STREAM, position, users=users)
        return position

    def current(self) -> int:
        return self.stream.current()

    async def device_list_changes_since(
        self, user_id: str, from_pos: int, to_pos: int | None = None, *,
        events_from: int | None = None, events_to: int | None = None,
    ) -> tuple[set[str], set[str]]:
        """``(changed, left)`` for ``user_id`` between two device_lists positions.

        ``changed``: users sharing a room with ``user_id`` (or itself) whose device list
        changed in ``(from_pos, to_pos]``. With ``events_from``/``events_to`` (events stream
        orderings of the same two sync tokens) also users who newly share a room with it
        (``changed``) and users who no longer share any room with it (``left``).
        """
        top = self.stream.current() if to_pos is None else min(to_pos, self.stream.current())
        changed = await self.store.changed_users(user_id, from_pos, top)
        left: set[str] = set()
        if events_from is None or events_to is None or events_to <= events_from:
            return changed, left
        if not await self._members_changed(events_from, events_to):
            return changed, left
        latest: dict[tuple[str, str], str | None] = {}
        for change in await self.store.membership_changes(user_id, events_from, events_to):
            latest[(change.room_id, change.user_id)] = change.membership
        if not latest:
            return changed, left
        joined_rooms = await self.store.joined_rooms(user_id)
        newly_joined = {room for (room, u), m in latest.items()
                        if u == user_id and m == "join" and room in joined_rooms}
        rooms_left = {room for (room, u), m in latest.items() if u == user_id and m != "join"}
        came = {u for (room, u), m in latest.items()
                if u != user_id and m == "join" and room in joined_rooms}
        went = {u for (room, u), m in latest.items() if u != user_id and m != "join"}
        if newly_joined:
            came |= await self.store.joined_members(newly_joined)
        if rooms_left:
            went |= await self.store.joined_members(rooms_left)
        sharing = await self.store.users_sharing_room(user_id)
        changed |= (came & sharing) - {user_id}
        left = went - sharing - {user_id}
        return changed - left, left

    async def _members_changed(self, events_from: int, events_to: int) -> bool:
        """Whether any room's membership changed in ``(events_from, events_to]``."""
        key = (events_from, events_to)
        known = self._any_member_change.get(key)
        if known is None:
            known = await self._member_reads.run(
                key, lambda: self.store.any_membership_change(events_from, events_to))
            self._any_member_change.set(key, known)
        return known

    async def changes_between_tokens(self, user_id: str, from_token: str, to_token: str
                                     ) -> tuple[set[str], set[str]]:
        """``GET /keys/changes``: both tokens are ``/sync`` ``next_batch`` values."""
        from_pos, from_events = self.token_parser(from_token)
        to_pos, to_events = self.token_parser(to_token)
        return await self.device_list_changes_since(
            user_id, from_pos, to_pos, events_from=from_events, events_to=to_events)


__all__ = ["DeviceListHandler", "InvalidSyncToken", "parse_sync_token"]
