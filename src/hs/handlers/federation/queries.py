"""Read endpoints other servers call: events, state, auth chains, backfill, missing
events, timestamp lookup, profile and alias queries.

Server-server API "Retrieving events", "Backfilling and retrieving missing events",
"Querying for information". Who may read what (the spec defers to the history visibility
rules, client-server "History visibility", applied per server): a server sees an event
when the room is ``world_readable``, when one of its users is joined in the state at the
event, when one is invited there and visibility is ``invited``, or, for ``shared``, when
one of its users is joined now. State, backfill and missing events also need the server
to be in the room now (it has a joined member). Server ACLs apply to every room read.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from hs.core.pdu import PDU
from hs.handlers.federation.acl import require_server_allowed
from hs.handlers.federation.common import MEMBER, create_id_for, pdu_json
from hs.http.errors import MatrixError, forbidden, invalid_param, not_found
from hs.storage.events import EventsStore

HISTORY = ("m.room.history_visibility", "")
#: Bounds on what one request may return.
MAX_BACKFILL = 100
MAX_MISSING = 100


def domain(user_id: str) -> str:
    return user_id.partition(":")[2]


class FederationQueries:
    """See the module docstring."""

    def __init__(self, server_name: str, events: EventsStore, clock: Any) -> None:
        self.server_name = server_name
        self.events = events
        self.clock = clock

    def _envelope(self, pdus: Iterable[PDU]) -> dict[str, Any]:
        return {"origin": self.server_name, "origin_server_ts": self.clock(),
                "pdus": [pdu_json(p) for p in pdus]}

    # -- who may see what ---------------------------------------------------------------

    async def host_in_room(self, room_id: str, server: str) -> bool:
        members = await self.events.get_members(room_id, ["join"])
        return any(domain(u) == server for u in members)

    async def require_in_room(self, room_id: str, origin: str) -> None:
        if await self.events.get_room_version(room_id) is None:
            raise not_found(f"Unknown room {room_id}")
        await require_server_allowed(self.events, room_id, origin)
        if not await self.host_in_room(room_id, origin):
            raise forbidden(f"Server {origin} is not in room {room_id}")

    async def visible(self, pdus: list[PDU], origin: str) -> list[PDU]:
        """``pdus`` that ``origin`` may see (history visibility per server)."""
        out = []
        joined_now: dict[str, bool] = {}
        for pdu in pdus:
            if pdu.rejected_reason is not None:
                continue
            state = await self.events.get_state_ids_at(pdu.event_id)
            if state is None:
                # An outlier (state or auth event we got with a join): servers in the room
                # may fetch it, as they fetch auth chains.
                room_id = pdu.room_id
                if room_id not in joined_now:
                    joined_now[room_id] = await self.host_in_room(room_id, origin)
                if joined_now[room_id]:
                    out.append(pdu)
                continue
            hv_id = state.get(HISTORY)
            hv_event = await self.events.get_event(hv_id) if hv_id else None
            visibility = hv_event.content.get("history_visibility") if hv_event else "shared"
            if visibility == "world_readable":
                out.append(pdu)
                continue
            member_ids = [e for (t, k), e in state.items() if t == MEMBER and
                          domain(k) == origin]
            rows = await self.events.rooms.get_memberships_by_event_ids(member_ids)
            memberships = {m.membership for m in rows.values()}
            if "join" in memberships or (visibility == "invited" and "invite" in memberships):
                out.append(pdu)
                continue
            if visibility == "shared":
                room_id = pdu.room_id
                if room_id not in joined_now:
                    joined_now[room_id] = await self.host_in_room(room_id, origin)
                if joined_now[room_id]:
                    out.append(pdu)
        return out

    # -- endpoints ----------------------------------------------------------------------

    async def get_event(self, origin: str, event_id: str) -> dict[str, Any]:
        pdu = await self.events.get_event(event_id)
        if pdu is None:
            raise not_found("Event not found")
        await require_server_allowed(self.events, pdu.room_id, origin)
        if not await self.visible([pdu], origin):
            raise not_found("Event not found")
        return self._envelope([pdu])

    async def _event_in_room(self, room_id: str, event_id: str) -> PDU:
        pdu: PDU | None = await self.events.get_event(event_id)
        if pdu is None or pdu.room_id != room_id:
            raise not_found("Event not found in this room")
        return pdu

    async def state_ids(self, origin: str, room_id: str, event_id: str
                        ) -> tuple[list[str], list[str]]:
        """The state before ``event_id`` (it is not included) and its auth chain."""
        await self.require_in_room(room_id, origin)
        await self._event_in_room(room_id, event_id)
        state = await self.events.get_state_ids_at(event_id, before=True)
        if state is None:
            raise not_found("No state known at this event")
        ids = list(state.values())
        chain = await self.events.auth_chain_ids(ids, allow_missing=True)
        return ids, sorted(chain)

    async def state(self, origin: str, room_id: str, event_id: str) -> dict[str, Any]:
        ids, chain = await self.state_ids(origin, room_id, event_id)
        found = await self.events.get_events([*ids, *chain])
        return {"pdus": [pdu_json(found[e]) for e in ids if e in found],
                "auth_chain": [pdu_json(found[e]) for e in chain if e in found]}

    async def event_auth(self, origin: str, room_id: str, event_id: str) -> dict[str, Any]:
        await self.require_in_room(room_id, origin)
        pdu = await self._event_in_room(room_id, event_id)
        if not await self.visible([pdu], origin):
            raise not_found("Event not found in this room")
        chain = await self.events.auth_chain_ids(pdu.auth_event_ids(), allow_missing=True)
        chain.update(pdu.auth_event_ids())
        create_id = create_id_for(room_id, pdu.room_version)
        if create_id is not None:
            chain.add(create_id)  # v12 events never cite it; receivers still need it
        chain.discard(pdu.event_id)
        found = await self.events.get_events(chain)
        ordered = sorted(found.values(), key=lambda p: (p.depth, p.event_id))
        return {"auth_chain": [pdu_json(p) for p in ordered]}

    async def backfill(self, origin: str, room_id: str, from_ids: list[str], limit: int
                       ) -> dict[str, Any]:
        """Up to ``limit`` events preceding (and including) ``from_ids``, breadth first
        along ``prev_events``, newest (deepest) first."""
        await self.require_in_room(room_id, origin)
        if not from_ids:
            raise invalid_param("'v' is required")
        limit = max(0, min(limit, MAX_BACKFILL))
        found = await self._walk_back(room_id, from_ids, limit, stop=set())
        return self._envelope(await self.visible(found, origin))

    async def get_missing_events(self, origin: str, room_id: str, body: dict[str, Any]
                                 ) -> dict[str, Any]:
        await self.require_in_room(room_id, origin)
        earliest, latest = body.get("earliest_events", []), body.get("latest_events")
        limit, min_depth = body.get("limit", 10), body.get("min_depth", 0)
        if not (isinstance(earliest, list) and all(isinstance(e, str) for e in earliest)
                and isinstance(latest, list) and all(isinstance(e, str) for e in latest)
                and type(limit) is int and type(min_depth) is int):
            raise MatrixError(400, "M_BAD_JSON", "Invalid get_missing_events body")
        limit = max(0, min(limit, MAX_MISSING))
        # Start from the latest events' prev events: the latest ones themselves are known.
        starts = await self.events.get_prev_and_auth_ids(latest)
        prevs = [p for eid in latest if eid in starts for p in starts[eid][0]]
        found = await self._walk_back(room_id, prevs, limit, stop=set(earliest),
                                      min_depth=min_depth)
        visible = await self.visible(found, origin)
        return {"events": [pdu_json(p) for p in sorted(visible,
                                                       key=lambda p: (p.depth, p.event_id))]}

    async def _walk_back(self, room_id: str, start: list[str], limit: int, *,
                         stop: set[str], min_depth: int = 0) -> list[PDU]:
        seen: set[str] = set(stop)
        queue = deque(e for e in dict.fromkeys(start) if e not in seen)
        seen.update(queue)
        out: list[PDU] = []
        while queue and len(out) < limit:
            batch = [queue.popleft() for _ in range(min(len(queue), limit - len(out)))]
            found = await self.events.get_events(batch)
            for eid in batch:
                pdu = found.get(eid)
                if pdu is None or pdu.room_id != room_id or pdu.depth < min_depth:
                    continue
                out.append(pdu)
                for prev in pdu.prev_event_ids():
                    if prev not in seen:
                        seen.add(prev)
                        queue.append(prev)
        return out

    async def timestamp_to_event(self, origin: str, room_id: str, ts: int, direction: str
                                 ) -> dict[str, Any]:
        await self.require_in_room(room_id, origin)
        if direction == "f":
            sql = ("SELECT event_id, origin_server_ts FROM events WHERE room_id = ?"
                   " AND in_timeline AND origin_server_ts >= ?"
                   " ORDER BY origin_server_ts, stream_ordering LIMIT 20")
        else:
            sql = ("SELECT event_id, origin_server_ts FROM events WHERE room_id = ?"
                   " AND in_timeline AND origin_server_ts <= ?"
                   " ORDER BY origin_server_ts DESC, stream_ordering DESC LIMIT 20")
        rows = await self.events.db.fetchall(sql, room_id, ts)
        found = await self.events.get_events([r[0] for r in rows])
        visible = {p.event_id for p in await self.visible(list(found.values()), origin)}
        for eid, when in rows:
            if eid in visible:
                return {"event_id": eid, "origin_server_ts": int(when)}
        raise not_found(f"No event found from {ts} in direction {direction}")
