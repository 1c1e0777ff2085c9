"""Rooms for the directory and ephemeral tests, persisted straight into the running
server's event store (v10 events built by ``RoomBuilder``), plus small HTTP helpers."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.server.harness import Client
from tests.storage_events.helpers import RoomBuilder

from hs.core.pdu import PDU
from hs.storage.events import EventToPersist, StateAfter

V3 = "/_matrix/client/v3"


def q(value: str) -> str:
    """A path segment (aliases hold ``#`` and ``:``, event IDs ``$``)."""
    return quote(value, safe="")


class TestRoom:
    """One room whose events go through ``EventsStore.persist_events``."""

    __test__ = False  # not a pytest class

    def __init__(self, hs: Client, room_id: str, creator: str) -> None:
        self.hs = hs
        self.room_id = room_id
        self.creator = creator
        self.rb = RoomBuilder(room_id)
        self._last: str | None = None

    async def add(self, *pdus: PDU) -> list[PDU]:
        """Persist ``pdus`` (built on ``self.rb``) in order, each on the state after the
        previous one."""
        batch = []
        for pdu in pdus:
            before: Any = StateAfter(self._last) if self._last else {}
            batch.append(EventToPersist(pdu, state_before=before))
            self._last = pdu.event_id
        await self.hs.services.events.persist_events(batch)
        return list(pdus)

    async def state(self, etype: str, content: dict[str, Any], sender: str | None = None,
                    state_key: str = "") -> PDU:
        return (await self.add(self.rb.event(etype, sender or self.creator, content,
                                             state_key=state_key)))[0]

    async def join(self, user_id: str) -> PDU:
        return (await self.add(self.rb.member(user_id)))[0]

    async def leave(self, user_id: str) -> PDU:
        return (await self.add(self.rb.member(user_id, "leave")))[0]

    async def message(self, body: str, sender: str | None = None,
                      content: dict[str, Any] | None = None) -> PDU:
        data = {"msgtype": "m.text", "body": body, **(content or {})}
        return (await self.add(self.rb.event("m.room.message", sender or self.creator,
                                             data)))[0]


async def make_room(hs: Client, room_id: str, creator: str, *members: str,
                    name: str | None = None, topic: str | None = None,
                    room_type: str | None = None, alias_power: int = 50,
                    history_visibility: str = "shared", public: bool = False) -> TestRoom:
    """Create event, creator join, power levels (creator 100; canonical alias needs
    ``alias_power``), join rules, history visibility, optional name/topic, joins of
    ``members``; optionally published in the directory."""
    room = TestRoom(hs, room_id, creator)
    create_content: dict[str, Any] = {"creator": creator, "room_version": "10"}
    if room_type is not None:
        create_content["type"] = room_type
    rb = room.rb
    pdus = [
        rb.event("m.room.create", creator, create_content, state_key=""),
        rb.member(creator),
        rb.event("m.room.power_levels", creator, {
            "users": {creator: 100}, "users_default": 0, "state_default": 50,
            "events_default": 0, "events": {"m.room.canonical_alias": alias_power},
        }, state_key=""),
        rb.event("m.room.join_rules", creator, {"join_rule": "public"}, state_key=""),
        rb.event("m.room.history_visibility", creator,
                 {"history_visibility": history_visibility}, state_key=""),
    ]
    if name is not None:
        pdus.append(rb.event("m.room.name", creator, {"name": name}, state_key=""))
    if topic is not None:
        pdus.append(rb.event("m.room.topic", creator, {"topic": topic}, state_key=""))
    pdus += [rb.member(m) for m in members]
    await room.add(*pdus)
    if public:
        await hs.services.events.rooms.set_room_public(room_id, True)
    return room


async def user(hs: Client, name: str) -> tuple[str, str]:
    """Register ``name``; ``(user_id, access_token)``."""
    reg = await hs.register(name)
    return reg["user_id"], reg["access_token"]
