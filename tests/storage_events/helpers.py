"""Building rooms of PDUs for the event-store tests, and opening a store on either dialect."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from hs.core.pdu import PDU
from hs.core.room_versions import get_room_version
from hs.storage.database import DatabaseConfig, open_database
from hs.storage.events import EventsStore, EventToPersist, StateAfter

_ts = itertools.count(1_700_000_000_000)


@asynccontextmanager
async def open_store(config: DatabaseConfig, **kwargs: Any) -> AsyncIterator[EventsStore]:
    db = await open_database(config)
    try:
        yield await EventsStore.create(db, **kwargs)
    finally:
        await db.close()


class RoomBuilder:
    """Makes the events of one room (v10 IDs: reference hashes), tracking depth and the
    latest event so ``next()`` appends linearly unless ``prev`` says otherwise."""

    def __init__(self, room_id: str = "!room:test", version: str = "10") -> None:
        self.room_id = room_id
        self.version = get_room_version(version)
        self.events: dict[str, PDU] = {}
        self.last: str | None = None
        self.create_id: str | None = None

    def event(
        self,
        etype: str,
        sender: str = "@alice:test",
        content: dict[str, Any] | None = None,
        *,
        state_key: str | None = None,
        prev: Sequence[str] | None = None,
        auth: Sequence[str] | None = None,
        rejected: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> PDU:
        prevs = list(prev) if prev is not None else ([self.last] if self.last else [])
        depth = max((self.events[p].depth for p in prevs if p in self.events), default=0) + 1
        if auth is None:
            auth = [self.create_id] if self.create_id else []
        data: dict[str, Any] = {
            "type": etype,
            "room_id": self.room_id,
            "sender": sender,
            "content": content if content is not None else {},
            "prev_events": prevs,
            "auth_events": list(auth),
            "depth": depth,
            "origin_server_ts": next(_ts),
            "hashes": {"sha256": "x"},
            "signatures": {},
        }
        if state_key is not None:
            data["state_key"] = state_key
        data.update(extra or {})
        pdu = PDU(data, self.version, rejected_reason=rejected)
        self.events[pdu.event_id] = pdu
        if prev is None:
            self.last = pdu.event_id
        if etype == "m.room.create":
            self.create_id = pdu.event_id
        return pdu

    def create(self, creator: str = "@alice:test") -> PDU:
        return self.event("m.room.create", creator, {"room_version": "10"}, state_key="")

    def member(self, user: str, membership: str = "join", **kw: Any) -> PDU:
        content = {"membership": membership, **kw.pop("content", {})}
        return self.event("m.room.member", kw.pop("sender", user), content, state_key=user, **kw)

    def redaction(self, target: str, **kw: Any) -> PDU:
        """Where ``redacts`` goes depends on the room version (content from v11)."""
        if self.version.redacts_in_content:
            return self.event("m.room.redaction", content={"redacts": target}, **kw)
        return self.event("m.room.redaction", content={}, extra={"redacts": target}, **kw)

    def message(self, body: str, sender: str = "@alice:test", **kw: Any) -> PDU:
        return self.event("m.room.message", sender, {"msgtype": "m.text", "body": body}, **kw)


def chain(pdus: Sequence[PDU], first_state: Any = None) -> list[EventToPersist]:
    """A linear batch: the first event's state before is ``first_state`` (default empty),
    each later one's is the state after its predecessor."""
    out = []
    for i, pdu in enumerate(pdus):
        before = (first_state if first_state is not None else {}) if i == 0 else None
        if i > 0:
            before = StateAfter(pdus[i - 1].event_id)
        out.append(EventToPersist(pdu, state_before=before))
    return out


async def new_room(store: EventsStore, rb: RoomBuilder, *users: str) -> list[PDU]:
    """Create, creator join, and joins of ``users``: persisted as one batch."""
    pdus = [rb.create(), rb.member("@alice:test")]
    pdus += [rb.member(u) for u in users]
    await store.persist_events(chain(pdus))
    return pdus
