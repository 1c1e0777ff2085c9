"""``/messages``, ``/context`` and ``/event``: topological reads of one room.

Pages come from ``EventsStore.paginate_messages`` with the filter's simple conditions in
SQL; what SQL cannot decide (``contains_url``, inner globs) and history visibility are
applied to each page, and a short page is topped up from where it stopped (a few rounds at
most: the spec lets a chunk be short as long as ``end`` continues).
"""

from __future__ import annotations

from typing import Any, Literal

from hs.core.pdu import PDU
from hs.handlers.auth import Requester
from hs.handlers.filters import RoomEventFilter
from hs.handlers.timeline.access import MEMBER, RoomAccess
from hs.handlers.timeline.base import TimelineBase, parse_token
from hs.http.errors import not_found
from hs.storage.events import RoomToken

#: Pages fetched for one /messages request before returning a short chunk.
_MAX_ROUNDS = 5


class MessagesMixin(TimelineBase):
    async def messages(
        self, requester: Requester, room_id: str, *, direction: Literal["b", "f"],
        from_token: str | None, to_token: str | None, limit: int, flt: RoomEventFilter,
    ) -> dict[str, Any]:
        user_id = requester.user_id
        access = await self.access(room_id, user_id)
        start: RoomToken | None = parse_token(from_token) if from_token else None
        stop: RoomToken | None = parse_token(to_token, "to") if to_token else None
        if access.cap_event is not None:
            # A user who left reads up to their leave: start there rather than paging
            # through events they cannot see.
            cap = await self.token_at(access.cap_event)
            if direction == "b" and start is None:
                start = cap
            elif direction == "f" and stop is None:
                stop = cap
        chunk: list[PDU] = []
        first_start: str | None = None
        end: str | None = None
        token: RoomToken | str | None = start
        if limit > 0 and flt.allows_room(room_id):
            sql_filter = flt.storage_filter()
            for _ in range(_MAX_ROUNDS):
                page = await self.events.paginate_messages(
                    room_id, token, direction=direction, limit=limit - len(chunk),
                    to_token=stop, flt=sql_filter)
                first_start = first_start or page.start
                events = [e for e in page.events if flt.matches(e)] if flt.needs_python \
                    else page.events
                chunk += await self.visible(events, user_id)
                end = page.end
                if end is None or len(chunk) >= limit:
                    break
                token = end
        if from_token is not None:
            start_str = from_token
        elif first_start is not None:
            start_str = first_start
        else:
            start_str = str(start or await self.events.topological_token(
                room_id, self.events.max_stream_ordering()))
        body: dict[str, Any] = {
            "chunk": await self.serialize(chunk, requester),
            "start": start_str,
        }
        if end is not None:
            body["end"] = end
        if flt.lazy_load_members and chunk:
            # Omitted when empty, as Synapse does.
            state = await self._member_state(chunk, requester)
            if state:
                body["state"] = state
        return body

    async def _member_state(self, chunk: list[PDU], requester: Requester,
                            at_event: str | None = None) -> list[dict[str, Any]]:
        """Lazy-loading: the senders' membership events in the state at ``at_event``
        (default the chunk's first event). Without tracking what each client already
        has, every membership is sent (as with ``include_redundant_members``)."""
        senders = sorted({e.sender for e in chunk})
        state = await self.events.get_state_ids_at(
            at_event or chunk[0].event_id, [(MEMBER, s) for s in senders])
        if not state:
            return []
        found = await self.events.get_events(list(state.values()))
        members = [found[e] for e in state.values() if e in found]
        return await self.serialize_state(members, requester)

    async def get_event(self, requester: Requester, room_id: str, event_id: str
                        ) -> dict[str, Any]:
        """``GET /rooms/{roomId}/event/{eventId}``: 404 when unknown *or* not visible
        (the spec's "not found or you do not have permission")."""
        pdu = await self.visible_event(room_id, event_id, requester.user_id)
        if pdu is None:
            raise not_found("Event not found")
        return (await self.serialize([pdu], requester))[0]

    async def context(
        self, requester: Requester, room_id: str, event_id: str, *, limit: int,
        flt: RoomEventFilter,
    ) -> dict[str, Any]:
        """``GET /rooms/{roomId}/context/{eventId}``: the event, ``limit`` events split
        around it (Synapse's half before, half after), tokens, and the state at the last
        event returned (only the senders' memberships when lazy-loading)."""
        user_id = requester.user_id
        access: RoomAccess = await self.access(room_id, user_id)
        event = await self.visible_event(room_id, event_id, user_id)
        if event is None:
            raise not_found("Event not found")
        before_n = limit // 2
        ctx = await self.events.get_event_context(
            event_id, before_n, limit - before_n, flt.storage_filter())
        if ctx is None:
            raise not_found("Event not found")
        before = [e for e in ctx.before if flt.matches(e)]
        after = [e for e in ctx.after if flt.matches(e)]
        before = await self.visible(before, user_id)
        after = await self.visible(after, user_id)
        if access.cap_event is not None:
            cap = await self.token_at(access.cap_event)
            metas = await self.events.get_event_meta([e.event_id for e in after])
            after = [e for e in after if cap is None or (
                metas[e.event_id].depth, metas[e.event_id].stream_ordering)
                <= (cap.depth, cap.stream)]
        last = after[-1] if after else event
        everything = [*before, event, *after]
        if flt.lazy_load_members:
            state = await self._member_state(everything, requester, last.event_id)
        else:
            state_ids = await self.events.get_state_ids_at(last.event_id) or {}
            found = await self.events.get_events(list(state_ids.values()))
            state = await self.serialize_state(
                [found[e] for e in state_ids.values() if e in found], requester)
        served = await self.serialize(everything, requester)
        by_id = {e["event_id"]: e for e in served}
        return {
            "event": by_id[event.event_id],
            "events_before": [by_id[e.event_id] for e in before if e.event_id in by_id],
            "events_after": [by_id[e.event_id] for e in after if e.event_id in by_id],
            "start": ctx.start,
            "end": ctx.end,
            "state": state,
        }
