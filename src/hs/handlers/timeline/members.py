"""Room state and membership reads: ``/state``, ``/members``, ``/joined_members``,
``/joined_rooms``. A user who left sees the state as of their leave (Synapse's rule)."""

from __future__ import annotations

from typing import Any

from hs.handlers.auth import Requester
from hs.handlers.timeline.access import MEMBER, RoomAccess
from hs.handlers.timeline.base import TimelineBase, parse_token
from hs.http.errors import forbidden
from hs.storage.events import StateMap


class MembersMixin(TimelineBase):
    async def _state_for(self, access: RoomAccess, types: Any = None) -> StateMap:
        if access.cap_event is not None:
            return await self.events.get_state_ids_at(access.cap_event, types) or {}
        return await self.events.get_current_state_ids(access.room_id, types)

    async def room_state(self, requester: Requester, room_id: str) -> list[dict[str, Any]]:
        access = await self.access(room_id, requester.user_id)
        state = await self._state_for(access)
        found = await self.events.get_events(list(state.values()))
        return await self.serialize_state(
            [found[e] for e in state.values() if e in found], requester)

    async def members(
        self, requester: Requester, room_id: str, *, at: str | None,
        membership: str | None, not_membership: str | None,
    ) -> list[dict[str, Any]]:
        access = await self.access(room_id, requester.user_id)
        types = [(MEMBER, None)]
        state: StateMap
        if at is not None:
            pos = parse_token(at, "at").stream
            if access.cap_event is not None:
                cap = (await self.events.get_event_meta([access.cap_event]))[access.cap_event]
                pos = min(pos, cap.stream_ordering)
            last = await self.reads.last_event_at(room_id, pos)
            state = (await self.events.get_state_ids_at(last, types) or {}) if last else {}
        else:
            state = await self._state_for(access, types)
        rows = await self.events.rooms.get_memberships_by_event_ids(list(state.values()))
        wanted = [
            eid for eid in state.values()
            if eid in rows and _membership_ok(rows[eid].membership, membership, not_membership)
        ]
        found = await self.events.get_events(wanted)
        return await self.serialize_state([found[e] for e in wanted if e in found], requester)

    async def joined_members(self, requester: Requester, room_id: str) -> dict[str, Any]:
        """Current joined members with their profile as set in the room."""
        access = await self.access(room_id, requester.user_id, allow_left=False)
        if not access.joined and access.membership is not None:
            raise forbidden(f"User {requester.user_id} is not in room {room_id}")
        members = await self.events.get_members(room_id, ["join"])
        return {"joined": {
            uid: {"display_name": m.displayname, "avatar_url": m.avatar_url}
            for uid, m in members.items()
        }}

    async def joined_rooms(self, requester: Requester) -> list[str]:
        rooms = await self.events.get_rooms_for_user(requester.user_id, ("join",))
        return [r.room_id for r in rooms]


def _membership_ok(value: str, membership: str | None, not_membership: str | None) -> bool:
    if membership is not None and value != membership:
        return False
    return not_membership is None or value != not_membership


__all__ = ["MembersMixin"]
