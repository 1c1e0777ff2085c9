"""Rooms for the read-side tests: events persisted straight through the events store of a
running server (the same path the pipeline ends in), so every read endpoint can be
exercised over HTTP with exact control of the DAG, visibility and transaction IDs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tests.server.harness import SERVER_NAME, Client, running_server
from tests.storage_events.helpers import RoomBuilder

from hs.core.pdu import PDU
from hs.storage.database import DatabaseConfig
from hs.storage.events import EventToPersist, StateAfter, TxnKey

V1 = "/_matrix/client/v1"
V3 = "/_matrix/client/v3"


@dataclass
class User:
    user_id: str
    token: str
    device_id: str


class Room:
    """A room built event by event; ``add`` persists events linearly after the last."""

    def __init__(self, client: Client, room_id: str, version: str = "10") -> None:
        self.client = client
        self.rb = RoomBuilder(room_id, version)
        self.room_id = room_id
        self._last: str | None = None

    async def add(self, *pdus: PDU, txn: tuple[User, str] | None = None,
                  rejected: bool = False) -> list[PDU]:
        batch = []
        prev = self._last
        for pdu in pdus:
            before: Any = StateAfter(prev) if prev else {}
            key = TxnKey(txn[0].user_id, txn[0].device_id, txn[1]) if txn else None
            batch.append(EventToPersist(pdu, state_before=before, txn=key))
            prev = pdu.event_id
        await self.client.services.events.persist_events(batch)
        self._last = prev
        return list(pdus)

    async def create(self, creator: User, *joiners: User, visibility: str | None = None
                     ) -> list[PDU]:
        rb = self.rb
        pdus = [rb.event("m.room.create", creator.user_id,
                         {"room_version": rb.version.identifier}, state_key=""),
                rb.member(creator.user_id)]
        if visibility is not None:
            pdus.append(self.visibility(creator, visibility))
        pdus += [rb.member(u.user_id) for u in joiners]
        return await self.add(*pdus)

    def visibility(self, sender: User, value: str) -> PDU:
        return self.rb.event("m.room.history_visibility", sender.user_id,
                             {"history_visibility": value}, state_key="")

    def msg(self, sender: User, body: str, **content: Any) -> PDU:
        return self.rb.event("m.room.message", sender.user_id,
                             {"msgtype": "m.text", "body": body, **content})

    def member(self, user: User, membership: str, sender: User | None = None,
               **content: Any) -> PDU:
        return self.rb.member(user.user_id, membership,
                              sender=(sender or user).user_id, content=content)

    def relation(self, sender: User, target: str, rel_type: str, body: str = "x",
                 **extra: Any) -> PDU:
        rel = {"rel_type": rel_type, "event_id": target, **extra}
        content: dict[str, Any] = {"msgtype": "m.text", "body": body, "m.relates_to": rel}
        if rel_type == "m.replace":
            content["m.new_content"] = {"msgtype": "m.text", "body": body}
        return self.rb.event("m.room.message", sender.user_id, content)

    def redaction(self, sender: User, target: str) -> PDU:
        return self.rb.redaction(target, sender=sender.user_id)

    def path(self, suffix: str, version: str = V3) -> str:
        return f"{version}/rooms/{quote(self.room_id)}{suffix}"


async def make_user(client: Client, name: str) -> User:
    result = await client.register(name)
    return User(result["user_id"], result["access_token"], result["device_id"])


@asynccontextmanager
async def server_with_users(database_config: DatabaseConfig, *names: str
                            ) -> AsyncIterator[tuple[Client, list[User]]]:
    async with running_server(database_config) as client:
        users = [await make_user(client, n) for n in names]
        yield client, users


def room_id(name: str) -> str:
    return f"!{name}:{SERVER_NAME}"


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["event_id"] for e in events]


def q(value: str) -> str:
    return quote(value, safe="")
