"""``GET /rooms/{roomId}/timestamp_to_event`` (v1): the visible event closest to a time.

Local events only: we do not ask other servers when our copy of the room has a gap
there (the spec allows it: "the server may").
"""

from __future__ import annotations

from typing import Any, Literal

from hs.handlers.auth import Requester
from hs.handlers.timeline.base import TimelineBase
from hs.http.errors import not_found

#: Candidates examined per request (visibility may hide the nearest ones).
_CANDIDATES = 50


class TimestampMixin(TimelineBase):
    async def timestamp_to_event(
        self, requester: Requester, room_id: str, ts: int, direction: Literal["b", "f"]
    ) -> dict[str, Any]:
        await self.access(room_id, requester.user_id)
        candidates = await self.reads.events_near_ts(
            room_id, ts, direction, _CANDIDATES, self.events.max_stream_ordering())
        pdus = await self.events.get_events([c[0] for c in candidates])
        visible = await self.visible(
            [pdus[c[0]] for c in candidates if c[0] in pdus], requester.user_id)
        if not visible:
            raise not_found(f"Unable to find event from {ts} in direction {direction}")
        first = visible[0]
        return {"event_id": first.event_id, "origin_server_ts": first.origin_server_ts}
