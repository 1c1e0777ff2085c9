"""One room's part of a ``/sync`` response: joined, invited, knocked and left rooms.

Spec (client-server "Syncing", sync.yaml): ``timeline`` holds the newest events of the range
(``limited`` when older ones were skipped, ``prev_batch`` to page back with /messages);
``state`` is the state *at the start of the timeline*: the whole of it for an initial sync,
``full_state`` or a newly joined room, otherwise only the keys that changed between the
``since`` token and the start of the timeline (nothing when the timeline is not limited,
since every change is then in the timeline). With ``lazy_load_members`` the member events in
``state`` are only those of the timeline's senders (and the user's own), and unless
``include_redundant_members`` each is sent once per device.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from hs.core.pdu import PDU
from hs.handlers.client_events import Viewer
from hs.handlers.filters import Filter, RoomEventFilter
from hs.handlers.sync.caches import RecentTimelines
from hs.handlers.sync.queries import timeline_ids
from hs.storage.events.cache import LruCache

if TYPE_CHECKING:
    from hs.app import Services

MEMBER = "m.room.member"
#: Synapse's default timeline limit when the filter sets none.
DEFAULT_TIMELINE_LIMIT = 10
#: State shown to invitees and knockers (spec "Stripped state", recommended events).
STRIPPED_TYPES = ("m.room.create", "m.room.name", "m.room.avatar", "m.room.topic",
                  "m.room.join_rules", "m.room.canonical_alias", "m.room.encryption")
MAX_HEROES = 5
#: Rooms whose reads run at once (bounds the concurrent database work of one sync).
PARALLEL_ROOMS = 8
T = TypeVar("T")

StateKey = tuple[str, str]


@dataclass
class SyncRequest:
    """Everything about one ``/sync`` computation that the room builders share."""

    user_id: str
    device_id: str
    flt: Filter
    #: Events position of the ``since`` token; None for an initial / full-state sync.
    since: int | None
    upto: int
    #: ``full_state=true``: whole state for every room, timelines still incremental.
    full_state: bool = False
    viewer: Viewer = field(init=False)
    #: room -> room account data (type -> content) changed in the range.
    account_data: dict[str, dict[str, Any]] = field(default_factory=dict)
    typing: dict[str, list[str]] = field(default_factory=dict)
    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.viewer = Viewer(self.user_id, self.device_id)

    @property
    def timeline_limit(self) -> int:
        return self.flt.room.timeline.limit_or(DEFAULT_TIMELINE_LIMIT)


def _strip_room_id(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sync serves ClientEventWithoutRoomID."""
    for e in events:
        e.pop("room_id", None)
    return events


def stripped(pdu: PDU) -> dict[str, Any]:
    return {"type": pdu.type, "state_key": pdu.state_key, "content": dict(pdu.content),
            "sender": pdu.sender}


def apply_unread(entry: dict[str, Any], unread: dict[str, Any], split: bool) -> None:
    """Put the push service's counts on a joined room entry. Spec (threads): with
    ``unread_thread_notifications`` the room counts cover the main timeline only and each
    thread is counted apart in ``unread_thread_notifications``."""
    counts = unread.get("main", unread) if split else unread
    entry["unread_notifications"] = {
        "notification_count": counts.get("notification_count", 0),
        "highlight_count": counts.get("highlight_count", 0)}
    if split:
        entry["unread_thread_notifications"] = unread.get("threads") or {}


class RoomBuilder:
    """Builds room entries; holds the caches that outlive one request."""

    def __init__(self, services: Services, timelines: RecentTimelines) -> None:
        self.services = services
        self.events = services.events
        self.timelines = timelines
        #: (user, device, room) -> member event IDs already sent (lazy loading).
        self._sent_members: LruCache[tuple[str, str, str], set[str]] = LruCache(20_000)

    # -- timeline ---------------------------------------------------------------------------

    async def _timeline_items(self, req: SyncRequest, room_id: str, since: int, upto: int
                              ) -> tuple[list[PDU], bool, int]:
        """Timeline events of ``(since, upto]`` before history visibility, ``limited``, and
        the position just before the first one (``prev_batch``)."""
        flt: RoomEventFilter = req.flt.room.timeline
        limit = req.timeline_limit
        if not flt.allows_room(room_id):
            return [], False, upto
        sql_filter = flt.storage_filter()
        if sql_filter is None and not flt.needs_python:
            items, limited = await self.timelines.window(room_id, since, upto, limit)
        else:
            pdus, _ = await self.events.paginate_stream(
                room_id, upto, direction="b", limit=limit + 1, to_pos=since, flt=sql_filter)
            limited = len(pdus) > limit
            pdus = [p for p in pdus[:limit] if flt.matches(p)]
            metas = await self.events.get_event_meta([p.event_id for p in pdus])
            items = [(metas[p.event_id].stream_ordering, p) for p in reversed(pdus)
                     if p.event_id in metas]
        start = items[0][0] - 1 if items else upto
        return [p for _, p in items], limited, start

    async def _timeline(self, req: SyncRequest, room_id: str, since: int, upto: int
                        ) -> tuple[list[PDU], bool, int]:
        """Visible timeline events of ``(since, upto]``, ``limited`` and ``prev_batch``."""
        pdus, limited, start = await self._timeline_items(req, room_id, since, upto)
        return await self.services.timeline.visible(pdus, req.user_id), limited, start

    # -- state ------------------------------------------------------------------------------

    async def _state_before(self, room_id: str, first: PDU | None, upto: int
                            ) -> dict[StateKey, str]:
        """The state just before ``first`` (or at ``upto`` when the timeline is empty)."""
        if first is not None:
            found = await self.events.get_state_ids_at(first.event_id, before=True)
            if found is not None:
                return dict(found)
        last = await timeline_ids(self.events.db, room_id, 0, upto, 1)
        if last:
            found = await self.events.get_state_ids_at(last[0][1])
            if found is not None:
                return dict(found)
        return dict(await self.events.get_current_state_ids(room_id))

    async def _state(self, req: SyncRequest, room_id: str, timeline: list[PDU], limited: bool,
                     since: int | None, start: int, upto: int) -> list[PDU]:
        flt = req.flt.room.state
        if not flt.allows_room(room_id):
            return []
        lazy = flt.lazy_load_members
        full = since is None or req.full_state
        if not full and not limited and not lazy:
            return []
        before = await self._state_before(room_id, timeline[0] if timeline else None, upto)
        wanted: dict[StateKey, str] = {}
        if full:
            wanted = before
        elif limited and since is not None:
            deltas = await self.events.rooms.get_current_state_deltas(since, start, [room_id])
            for d in deltas:
                key = (d.type, d.state_key)
                if key in before:
                    wanted[key] = before[key]
        in_timeline = {p.event_id for p in timeline}
        if lazy:
            senders = {p.sender for p in timeline} | {req.user_id}
            wanted = {k: v for k, v in wanted.items() if k[0] != MEMBER}
            for s in senders:
                eid = before.get((MEMBER, s))
                if eid is not None:
                    wanted[(MEMBER, s)] = eid
            if not flt.include_redundant_members and not full:
                sent = self._sent_members.get((req.user_id, req.device_id, room_id)) or set()
                wanted = {k: v for k, v in wanted.items() if k[0] != MEMBER or v not in sent}
        ids = [eid for eid in wanted.values() if eid not in in_timeline]
        found = await self.events.get_events(ids)
        pdus = [found[e] for e in ids if e in found]
        pdus = [p for p in pdus if flt.matches(p)]
        if lazy:
            device_key = (req.user_id, req.device_id, room_id)
            sent = set() if full else (self._sent_members.get(device_key) or set())
            sent.update(p.event_id for p in (*pdus, *timeline) if p.type == MEMBER)
            self._sent_members.set(device_key, sent)
        return pdus

    # -- summary ----------------------------------------------------------------------------

    async def summary(self, room_id: str, user_id: str) -> dict[str, Any]:
        """``m.heroes`` (others, joined or invited, by user ID) and the member counts."""
        return (await self.summaries([room_id], user_id))[room_id]

    async def summaries(self, room_ids: list[str], user_id: str) -> dict[str, dict[str, Any]]:
        """``summary`` of each room, from the rooms' remembered member counts."""
        counts = await self.events.rooms.get_member_counts(room_ids)
        out: dict[str, dict[str, Any]] = {}
        for room_id in room_ids:
            found = counts.get(room_id)
            heroes = [] if found is None else [u for u in found.first if u != user_id]
            if not heroes:
                left = await self.events.get_members(room_id, ("leave", "ban"))
                heroes = sorted(u for u in left if u != user_id)
            out[room_id] = {"m.heroes": heroes[:MAX_HEROES],
                            "m.joined_member_count": found.joined if found else 0,
                            "m.invited_member_count": found.invited if found else 0}
        return out

    # -- sections ---------------------------------------------------------------------------

    async def _serialize(self, req: SyncRequest, pdus: Iterable[PDU], *, state: bool
                         ) -> list[dict[str, Any]]:
        return [e for _, e in await self._serialize_pairs(req, pdus, state=state)]

    async def _serialize_pairs(self, req: SyncRequest, pdus: Iterable[PDU], *, state: bool
                               ) -> list[tuple[str, dict[str, Any]]]:
        flt = req.flt
        pairs = await self.services.timeline.serializer.serialize_pairs(
            list(pdus), req.viewer, bundle=not state, state_facts=not state,
            event_fields=flt.event_fields, event_format=flt.event_format)
        # The federation format is the PDU itself, room_id included.
        if flt.event_format == "client":
            _strip_room_id([e for _, e in pairs])
        return pairs

    def _room_account_data(self, req: SyncRequest, room_id: str) -> list[dict[str, Any]]:
        flt = req.flt.room.account_data
        data = req.account_data.get(room_id, {})
        return [{"type": t, "content": c} for t, c in data.items()
                if flt.matches({"type": t, "room_id": room_id})]

    def _ephemeral(self, req: SyncRequest, room_id: str) -> list[dict[str, Any]]:
        flt = req.flt.room.ephemeral
        out: list[dict[str, Any]] = []
        if room_id in req.typing:
            out.append({"type": "m.typing", "content": {"user_ids": req.typing[room_id]}})
        if room_id in req.receipts:
            out.append({"type": "m.receipt", "content": req.receipts[room_id]})
        return [e for e in out if flt.matches({**e, "room_id": room_id})]

    async def joined(self, req: SyncRequest, room_id: str, since: int | None
                     ) -> dict[str, Any] | None:
        """A ``rooms.join`` entry; None when an incremental sync has nothing for it.
        ``since`` None: the whole room (initial sync, full_state, newly joined)."""
        return (await self.joined_many(req, [(room_id, since)])).get(room_id)

    async def joined_many(self, req: SyncRequest, rooms: list[tuple[str, int | None]]
                          ) -> dict[str, dict[str, Any]]:
        """``rooms.join`` entries of many rooms, built in phases so each kind of read is
        one batch for all of them (history visibility, event serialization with its
        relations and transaction IDs, summaries) instead of one per room: an initial
        sync of a user in hundreds of rooms costs a handful of queries per phase."""
        sem = asyncio.Semaphore(PARALLEL_ROOMS)

        async def bounded(job: Awaitable[T]) -> T:
            async with sem:
                return await job

        raw = await asyncio.gather(*(bounded(self._timeline_items(req, r, since or 0, req.upto))
                                     for r, since in rooms))
        visible = {p.event_id for p in await self.services.timeline.visible(
            [p for pdus, _, _ in raw for p in pdus], req.user_id)}
        timelines = [([p for p in pdus if p.event_id in visible], limited, start)
                     for pdus, limited, start in raw]
        states = await asyncio.gather(*(
            bounded(self._state(req, room_id, tl, limited, since, start, req.upto))
            for (room_id, since), (tl, limited, start) in zip(rooms, timelines, strict=True)))

        drafts: list[tuple[str, list[PDU], bool, int, list[PDU], list[dict[str, Any]],
                           list[dict[str, Any]], bool]] = []
        for (room_id, since), (tl, limited, start), state in zip(rooms, timelines, states,
                                                                 strict=True):
            ephemeral = self._ephemeral(req, room_id)
            account_data = self._room_account_data(req, room_id)
            if since is not None and not req.full_state and not (
                    tl or state or ephemeral or account_data or limited):
                continue
            summary = since is None or req.full_state or any(
                p.type == MEMBER for p in (*tl, *state))
            drafts.append((room_id, tl, limited, start, state, ephemeral, account_data,
                           summary))
        if not drafts:
            return {}
        served_tl, served_state, summaries = await asyncio.gather(
            self._serialize_pairs(req, [p for d in drafts for p in d[1]], state=False),
            self._serialize_pairs(req, [p for d in drafts for p in d[4]], state=True),
            self.summaries([d[0] for d in drafts if d[7]], req.user_id))
        by_id = dict(served_tl)
        by_id.update(served_state)
        out: dict[str, dict[str, Any]] = {}
        for room_id, tl, limited, start, state, ephemeral, account_data, summary in drafts:
            entry: dict[str, Any] = {
                "timeline": {"events": [by_id[p.event_id] for p in tl if p.event_id in by_id],
                             "limited": limited, "prev_batch": f"s{start}"},
                "state": {"events": [by_id[p.event_id] for p in state
                                     if p.event_id in by_id]},
                "ephemeral": {"events": ephemeral},
                "account_data": {"events": account_data},
            }
            if summary:
                entry["summary"] = summaries[room_id]
            out[room_id] = entry
        return out

    async def left(self, req: SyncRequest, room_id: str, since: int | None, leave_pos: int
                   ) -> dict[str, Any]:
        """A ``rooms.leave`` entry: the timeline up to and including the leave."""
        upto = min(leave_pos, req.upto)
        timeline, limited, start = await self._timeline(req, room_id, since or 0, upto)
        state = await self._state(req, room_id, timeline, limited, since, start, upto)
        return {
            "timeline": {"events": await self._serialize(req, timeline, state=False),
                         "limited": limited, "prev_batch": f"s{start}"},
            "state": {"events": await self._serialize(req, state, state=True)},
            "account_data": {"events": self._room_account_data(req, room_id)},
        }

    async def _stripped_state(self, room_id: str, member_event_id: str) -> list[dict[str, Any]]:
        """Stripped state for an invite or knock: what the event carries (federation) or
        the room's current state (local rooms), and the membership event itself."""
        member = await self.events.get_event(member_event_id)
        out: list[dict[str, Any]] = []
        if member is not None:
            unsigned = member.data.get("unsigned")
            carried = None
            if isinstance(unsigned, dict):
                carried = unsigned.get("invite_room_state") or unsigned.get("knock_room_state")
            if isinstance(carried, list):
                out = [e for e in carried if isinstance(e, dict)]
        if not out:
            # The recommended events plus the sender's membership (its display name
            # is what clients show as "X invited you", as with Synapse).
            keys = [(t, "") for t in STRIPPED_TYPES]
            if member is not None and member.sender != member.state_key:
                keys.append((MEMBER, member.sender))
            current = await self.events.get_current_state_ids(room_id, keys)
            found = await self.events.get_events(list(current.values()))
            out = [stripped(p) for p in found.values()]
        if member is not None:
            out.append(stripped(member))
        return out

    async def invited(self, room_id: str, event_id: str, ignored: set[str]
                      ) -> dict[str, Any] | None:
        """A ``rooms.invite`` entry; None for an invite from an ignored user."""
        if ignored:
            member = await self.events.get_event(event_id)
            if member is not None and member.sender in ignored:
                return None
        return {"invite_state": {"events": await self._stripped_state(room_id, event_id)}}

    async def knocked(self, room_id: str, event_id: str) -> dict[str, Any]:
        return {"knock_state": {"events": await self._stripped_state(room_id, event_id)}}


__all__ = ["RoomBuilder", "SyncRequest", "apply_unread"]
