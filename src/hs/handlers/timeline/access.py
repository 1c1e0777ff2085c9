"""Who may read what: room access for the read endpoints and per-event history visibility.

Room access (as Synapse): a joined user reads the room; a user who left or was banned
reads it up to their membership change (``RoomAccess.cap_event``); anyone reads a room
whose current history visibility is ``world_readable``; everyone else gets M_FORBIDDEN.

Event visibility follows client-server "Room History Visibility", server behaviour,
evaluated on the state *after* each event (which holds the event's own state change), with
the before-or-after rule for ``m.room.history_visibility`` events and the user's own
membership events checked against the state before as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hs.core.pdu import PDU, StateKey
from hs.handlers.client_events import StateEntryLookup
from hs.http.errors import forbidden
from hs.storage.events import EventsStore
from hs.storage.filters import ClientReadStore

MEMBER = "m.room.member"
HISTORY_VISIBILITY = "m.room.history_visibility"
_KNOWN_VISIBILITY = frozenset({"world_readable", "shared", "invited", "joined"})


@dataclass(frozen=True, slots=True)
class RoomAccess:
    room_id: str
    user_id: str
    #: The user's current membership (None: never a member).
    membership: str | None
    #: For a user who left or was banned: the event that ended their membership.
    cap_event: str | None

    @property
    def joined(self) -> bool:
        return self.membership == "join"


def _visibility_of(pdu: PDU | None) -> str:
    if pdu is None:
        return "shared"
    value = pdu.content.get("history_visibility")
    return value if value in _KNOWN_VISIBILITY else "shared"


async def check_room_access(store: EventsStore, reads: ClientReadStore, room_id: str,
                            user_id: str, *, allow_left: bool = True) -> RoomAccess:
    """M_FORBIDDEN unless the user may read the room (see the module docstring)."""
    membership, event_id = await reads.current_membership(room_id, user_id)
    if membership == "join":
        return RoomAccess(room_id, user_id, membership, None)
    if (allow_left and membership in ("leave", "ban") and event_id is not None
            and not await store.rooms.is_forgotten(user_id, room_id)):
        # Spec /forget: once forgotten, the room's history is no longer readable.
        # A user who was never joined (rejected invite) has nothing to read: their
        # visibility check below still hides everything they may not see.
        return RoomAccess(room_id, user_id, membership, event_id)
    hv = await store.get_current_state_ids(room_id, [(HISTORY_VISIBILITY, "")])
    hv_id = hv.get((HISTORY_VISIBILITY, ""))
    if hv_id is not None:
        hv_event = await store.get_event(hv_id)
        if _visibility_of(hv_event) == "world_readable":
            return RoomAccess(room_id, user_id, membership, None)
    raise forbidden(f"User {user_id} is not in room {room_id}, and room previews are disabled")


def _allowed(visibility: str, membership: str | None, position: int,
             last_join: int | None) -> bool:
    if visibility == "world_readable" or membership == "join":
        return True
    if visibility == "shared":
        # "... and the user joined the room at any point after the event was sent".
        return last_join is not None and last_join > position
    return visibility == "invited" and membership == "invite"


async def filter_visible(store: EventsStore, lookup: StateEntryLookup,
                         events: Sequence[PDU], user_id: str) -> list[PDU]:
    """The events of ``events`` the user may see, in order. Batched per page: one lookup
    of the events' state groups, their two deciding entries (cached), those events."""
    if not events:
        return []
    ids = [e.event_id for e in events]
    groups = await store.state.get_state_groups_for_events(ids)
    special = {e.event_id for e in events
               if e.type == HISTORY_VISIBILITY or (e.type == MEMBER and e.state_key == user_id)}
    wanted = {g[0] for g in groups.values()}
    wanted |= {groups[e][1] for e in special if e in groups}
    keys: tuple[StateKey, StateKey] = ((HISTORY_VISIBILITY, ""), (MEMBER, user_id))
    entries = await lookup.get({(g, k) for g in wanted for k in keys})
    found = await store.get_events(set(entries.values()))
    metas = await store.get_event_meta(ids)
    # The room from the metadata: a v12 create event has no ``room_id`` field.
    room_of = {e: m.room_id for e, m in metas.items()}

    known: dict[int, tuple[str, str | None]] = {}

    def facts(group: int) -> tuple[str, str | None]:
        # Messages do not change state, so a page's events share few groups.
        hit = known.get(group)
        if hit is None:
            hv_id = entries.get((group, keys[0]))
            mem_id = entries.get((group, keys[1]))
            member = found.get(mem_id) if mem_id else None
            hit = known[group] = (_visibility_of(found.get(hv_id) if hv_id else None),
                                  member.membership if member else None)
        return hit

    def needs_join(group: int) -> bool:
        visibility, membership = facts(group)
        return visibility == "shared" and membership != "join"

    # The user's join positions are only read for rooms where "shared" history decides
    # (for a joined member the state alone does, which is the common case of /sync).
    pairs = {e.event_id: groups[e.event_id] for e in events if e.event_id in groups}
    deciding = {room_of.get(eid, "") for eid, (after, before) in pairs.items()
                if needs_join(after) or (eid in special and needs_join(before))}
    last_join = (await _last_join_positions(store, deciding - {""}, user_id)
                 if deciding else {})

    def allowed_by(group: int, event: PDU) -> bool:
        visibility, membership = facts(group)
        return _allowed(visibility, membership,
                        metas[event.event_id].stream_ordering if event.event_id in metas else 0,
                        last_join.get(room_of.get(event.event_id, "")))

    out = []
    for event in events:
        pair = pairs.get(event.event_id)
        if pair is None:
            continue
        if allowed_by(pair[0], event) or (
            event.event_id in special and allowed_by(pair[1], event)
        ):
            out.append(event)
    return out


async def _last_join_positions(store: EventsStore, room_ids: set[str], user_id: str
                               ) -> dict[str, int]:
    """Per room, the stream position of the user's latest join (for ``shared``): one
    read for all the rooms of a page or sync."""
    return await store.rooms.last_join_positions(user_id, room_ids)
