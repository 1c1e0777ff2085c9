"""``/relations`` (child events of an event) and ``/threads`` (a room's thread roots).

Both page by stream ordering with ``s<stream>`` tokens. ``recurse`` is accepted and
answered with ``recursion_depth: 1`` (the spec lets servers not recurse).
"""

from __future__ import annotations

from typing import Any, Literal

from hs.core.pdu import PDU
from hs.handlers.auth import Requester
from hs.handlers.timeline.base import TimelineBase, parse_token
from hs.http.errors import not_found
from hs.storage.events import RoomToken

#: Rounds of thread-root fetching when visibility hides some roots.
_MAX_ROUNDS = 5


class RelationsMixin(TimelineBase):
    async def relations(
        self, requester: Requester, room_id: str, event_id: str, *,
        rel_type: str | None, event_type: str | None, from_token: str | None,
        to_token: str | None, limit: int, direction: Literal["b", "f"], recurse: bool,
    ) -> dict[str, Any]:
        user_id = requester.user_id
        await self.access(room_id, user_id)
        if await self.visible_event(room_id, event_id, user_id) is None:
            raise not_found("Event not found")
        start = str(parse_token(from_token)) if from_token else None
        stop = parse_token(to_token, "to").stream if to_token else None
        page = await self.events.get_relations(
            event_id, rel_type=rel_type, event_type=event_type, limit=limit,
            from_token=start, direction=direction)
        events = page.events
        end = page.end
        if stop is not None:
            metas = await self.events.get_event_meta([e.event_id for e in events])
            keep = [e for e in events if e.event_id in metas and (
                metas[e.event_id].stream_ordering > stop if direction == "b"
                else metas[e.event_id].stream_ordering <= stop)]
            if len(keep) < len(events):
                end = None
            events = keep
        events = await self.visible(events, user_id)
        body: dict[str, Any] = {"chunk": await self.serialize(events, requester)}
        if end is not None:
            body["next_batch"] = end
        if from_token is not None:
            body["prev_batch"] = from_token
        if recurse:
            body["recursion_depth"] = 1
        return body

    async def threads(
        self, requester: Requester, room_id: str, *, include: Literal["all", "participated"],
        from_token: str | None, limit: int,
    ) -> dict[str, Any]:
        """Thread roots by latest reply, newest first, each with its ``m.thread``
        summary bundled (client-server "Threading", ``GET /rooms/{roomId}/threads``)."""
        user_id = requester.user_id
        await self.access(room_id, user_id)
        before = parse_token(from_token).stream if from_token else None
        participant = user_id if include == "participated" else None
        upto = self.events.max_stream_ordering()
        roots: list[PDU] = []
        limit = max(limit, 1)
        next_batch: str | None = None
        for _ in range(_MAX_ROUNDS):
            want = limit - len(roots)
            found = await self.reads.list_threads(
                room_id, before=before, limit=want, participant=participant, upto=upto)
            pdus = await self.events.get_events([r.event_id for r in found])
            ordered = [pdus[r.event_id] for r in found if r.event_id in pdus]
            roots += await self.visible(ordered, user_id)
            if len(found) < want:
                next_batch = None
                break
            before = found[-1].latest
            next_batch = str(RoomToken(None, before))
            if len(roots) >= limit:
                break
        body: dict[str, Any] = {"chunk": await self.serialize(roots, requester)}
        if next_batch is not None:
            body["next_batch"] = next_batch
        return body
