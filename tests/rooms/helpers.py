"""Shared helpers of the room tests: a user session on the real app and state lookups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tests.server.harness import Client

from hs.core.pdu import PDU

V3 = "/_matrix/client/v3"


@dataclass
class User:
    hs: Client
    user_id: str
    token: str
    device_id: str

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return await self.hs.request(method, V3 + path, body, token=self.token)

    async def create_room(self, **body: Any) -> str:
        status, resp = await self.call("POST", "/createRoom", body)
        assert status == 200, resp
        return str(resp["room_id"])

    async def send(self, room_id: str, txn: str, content: dict[str, Any] | None = None,
                   event_type: str = "m.room.message") -> tuple[int, Any]:
        return await self.call("PUT", f"/rooms/{q(room_id)}/send/{event_type}/{txn}",
                               content or {"msgtype": "m.text", "body": "hello"})

    async def put_state(self, room_id: str, event_type: str, content: dict[str, Any],
                        state_key: str = "") -> tuple[int, Any]:
        return await self.call("PUT", f"/rooms/{q(room_id)}/state/{event_type}/{q(state_key)}",
                               content)

    async def member_op(self, op: str, room_id: str, body: dict[str, Any] | None = None
                        ) -> tuple[int, Any]:
        return await self.call("POST", f"/rooms/{q(room_id)}/{op}", body or {})

    async def join(self, room: str) -> tuple[int, Any]:
        return await self.call("POST", f"/join/{q(room)}", {})


def q(value: str) -> str:
    return quote(value, safe="")


async def new_user(hs: Client, name: str) -> User:
    reg = await hs.register(name)
    return User(hs, reg["user_id"], reg["access_token"], reg["device_id"])


async def state_event(hs: Client, room_id: str, event_type: str, state_key: str = ""
                      ) -> PDU | None:
    ids = await hs.services.events.get_current_state_ids(room_id, [(event_type, state_key)])
    eid = ids.get((event_type, state_key))
    return None if eid is None else await hs.services.events.get_event(eid)


async def membership(hs: Client, room_id: str, user_id: str) -> str | None:
    pdu = await state_event(hs, room_id, "m.room.member", user_id)
    return None if pdu is None else pdu.membership


async def pair_in_public_room(hs: Client) -> tuple[User, User, str]:
    """alice, bob and a public room of alice's that bob joined."""
    alice, bob = await new_user(hs, "alice"), await new_user(hs, "bob")
    room_id = await alice.create_room(preset="public_chat")
    assert (await bob.join(room_id))[0] == 200
    return alice, bob, room_id
