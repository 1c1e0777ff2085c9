"""Helpers shared by the federation room handlers: auth checks over fetched events,
topological order of auth chains, and outlier persistence."""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from hs.core.auth import AuthError, auth_types_for_event, check_auth_rules
from hs.core.dag import auth_difference_async
from hs.core.pdu import PDU, StateKey
from hs.core.room_versions import RoomVersion
from hs.storage.events import EventsStore
from hs.storage.events.types import EventToPersist

CREATE: StateKey = ("m.room.create", "")
MEMBER = "m.room.member"


def create_id_for(room_id: str, rv: RoomVersion) -> str | None:
    """v12+: the create event's ID is the room ID with ``$`` (rooms/v12)."""
    return "$" + room_id[1:] if rv.room_id_from_create_event else None


async def server_in_room(events: EventsStore, room_id: str, server_name: str) -> bool:
    """Whether one of ``server_name``'s users is joined now (the server is resident)."""
    members = await events.get_members(room_id, ["join"])
    return any(u.endswith(":" + server_name) for u in members)


def auth_keys(pdu: PDU) -> list[StateKey]:
    """The state keys authorizing ``pdu`` (plus the create event, which v12 never cites)."""
    keys = auth_types_for_event(pdu.type, pdu.sender, pdu.state_key, pdu.content,
                                pdu.room_version)
    return [CREATE, *keys] if CREATE not in keys else keys


def check_against_auth_events(pdu: PDU, auth: Iterable[PDU], create: PDU | None) -> str | None:
    """Step 4 of "Checks performed on receipt of a PDU": the event against the events it
    cites. Returns the rejection reason, or None when allowed."""
    if pdu.type == "m.room.create":
        try:
            check_auth_rules(pdu, {}, check_auth_event_selection=True)
        except AuthError as exc:
            return exc.reason
        return None
    cited: dict[StateKey, PDU] = {}
    for a in auth:
        if a.rejected_reason is not None:
            return f"auth event {a.event_id} was rejected"
        if not a.is_state():
            return f"auth event {a.event_id} is not a state event"
        cited[a.state_tuple] = a
    if pdu.room_version.room_id_from_create_event and create is not None:
        cited.setdefault(CREATE, create)
    try:
        check_auth_rules(pdu, cited, check_auth_event_selection=True)
    except AuthError as exc:
        return exc.reason
    return None


def check_against_state(pdu: PDU, state: Mapping[StateKey, PDU]) -> str | None:
    """Steps 5 and 6: the event against a state (before it, or the current state)."""
    try:
        check_auth_rules(pdu, state, check_auth_event_selection=False)
    except AuthError as exc:
        return exc.reason
    return None


async def state_pdus(events: EventsStore, state: Mapping[StateKey, str], pdu: PDU
                     ) -> dict[StateKey, PDU]:
    """The events of ``state`` that authorize ``pdu``."""
    ids = {k: state[k] for k in auth_keys(pdu) if k in state}
    found = await events.get_events(list(ids.values()))
    return {k: found[e] for k, e in ids.items() if e in found}


def topological(pdus: Iterable[PDU]) -> list[PDU]:
    """``pdus`` with every event after the events of the batch it cites as auth events
    (depth, then ID, among the ready ones); cycles fall back to depth order.

    Ready events wait in a heap: a room's member joins all become ready together, and
    re-sorting a list per event made a 5,000-member join take seconds here."""
    by_id = {p.event_id: p for p in pdus}
    waiting = {eid: {a for a in p.auth_event_ids() if a in by_id} for eid, p in by_id.items()}
    users: dict[str, list[str]] = {}
    for eid, deps in waiting.items():
        for d in deps:
            users.setdefault(d, []).append(eid)
    ready = [(by_id[e].depth, e) for e, d in waiting.items() if not d]
    heapq.heapify(ready)
    out: list[PDU] = []
    done: set[str] = set()
    while ready:
        _, eid = heapq.heappop(ready)
        out.append(by_id[eid])
        done.add(eid)
        for u in users.get(eid, ()):
            waiting[u].discard(eid)
            if not waiting[u] and u not in done:
                heapq.heappush(ready, (by_id[u].depth, u))
    rest = sorted((p for e, p in by_id.items() if e not in done),
                  key=lambda p: (p.depth, p.event_id))
    return out + rest


async def persist_outliers(events: EventsStore, room_id: str, rv: RoomVersion,
                           pdus: Iterable[PDU]) -> dict[str, PDU]:
    """Auth-check fetched events against their own auth events (in auth order) and store
    them as outliers; rejected ones are stored rejected. Returns every given event by ID
    (with ``rejected_reason`` set where it failed); events of other rooms are dropped."""
    batch = {p.event_id: p for p in pdus if _in_room(p, room_id)}
    if not batch:
        return {}
    stored = await events.get_events_with_meta(list(batch))
    refs = {a for p in batch.values() for a in p.auth_event_ids()} - batch.keys()
    create_id = create_id_for(room_id, rv)
    if create_id is not None:
        refs.add(create_id)
    known = await events.get_events([r for r in refs if r not in batch])
    todo: list[EventToPersist] = []
    for pdu in topological(batch.values()):
        if pdu.event_id in stored:
            batch[pdu.event_id] = stored[pdu.event_id][0]
            continue
        auth: list[PDU] = []
        reason = None
        for a in pdu.auth_event_ids():
            found = batch.get(a) or known.get(a)
            if found is None:
                reason = f"missing auth event {a}"
                break
            auth.append(found)
        if reason is None:
            create = batch.get(create_id) or known.get(create_id) if create_id else None
            reason = check_against_auth_events(pdu, auth, create)
        pdu.rejected_reason = reason
        todo.append(EventToPersist(pdu, outlier=True))
    if todo:
        await events.persist_events(todo)
    return batch


def _in_room(pdu: PDU, room_id: str) -> bool:
    try:
        return pdu.room_id == room_id
    except KeyError:
        return False


class WithEvent:
    """A ``StateResolutionStore`` over the events store plus one event not stored yet
    (resolving the state after a new event, before it is persisted)."""

    def __init__(self, events: EventsStore, pdu: PDU) -> None:
        self.events = events
        self.pdu = pdu

    async def get_events(self, event_ids: Collection[str]) -> dict[str, PDU]:
        eid = self.pdu.event_id
        out: dict[str, PDU] = await self.events.get_events([e for e in event_ids if e != eid])
        if eid in event_ids:
            out[eid] = self.pdu
        return out

    async def get_auth_chain_difference(self, room_id: str,
                                        state_sets: Sequence[Collection[str]]) -> set[str]:
        eid = self.pdu.event_id

        async def fetch(frontier: list[str]) -> dict[str, list[str]]:
            rest = [e for e in frontier if e != eid]
            out = await self.events._fetch_auth(rest) if rest else {}
            if eid in frontier:
                out[eid] = list(self.pdu.auth_event_ids())
            return out

        return await auth_difference_async(list(state_sets), fetch, allow_missing=True)


def pdu_json(pdu: PDU) -> dict[str, Any]:
    """The event as sent over federation (no ``unsigned`` of ours)."""
    return {k: v for k, v in pdu.data.items() if k != "unsigned"}
