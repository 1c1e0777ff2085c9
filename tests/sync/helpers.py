"""A logged-in user talking to the real server over HTTP, with /sync helpers."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tests.server.harness import Client

V3 = "/_matrix/client/v3"
_txn = itertools.count()


@dataclass
class User:
    hs: Client
    user_id: str
    device_id: str
    token: str

    async def req(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return await self.hs.request(method, V3 + path, body, token=self.token)

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, result = await self.req(method, path, body)
        assert status == 200, (method, path, status, result)
        return result

    async def create_room(self, **body: Any) -> str:
        body.setdefault("preset", "public_chat")
        return str((await self.ok("POST", "/createRoom", body))["room_id"])

    async def send(self, room_id: str, body: str = "hi", event_type: str = "m.room.message",
                   **content: Any) -> str:
        txn = f"t{next(_txn)}"
        result = await self.ok("PUT", f"/rooms/{quote(room_id)}/send/{event_type}/{txn}",
                               {"msgtype": "m.text", "body": body, **content})
        return str(result["event_id"])

    async def join(self, room_id: str) -> None:
        await self.ok("POST", f"/rooms/{quote(room_id)}/join", {})

    async def invite(self, room_id: str, user_id: str) -> None:
        await self.ok("POST", f"/rooms/{quote(room_id)}/invite", {"user_id": user_id})

    async def leave(self, room_id: str) -> None:
        await self.ok("POST", f"/rooms/{quote(room_id)}/leave", {})

    async def sync(self, since: str | None = None, *, timeout: int = 0,
                   flt: Any = None, **params: str) -> dict[str, Any]:
        status, body = await self.sync_raw(since, timeout=timeout, flt=flt, **params)
        assert status == 200, body
        return body  # type: ignore[no-any-return]

    async def sync_raw(self, since: str | None = None, *, timeout: int = 0,
                       flt: Any = None, **params: str) -> tuple[int, Any]:
        query = {"timeout": str(timeout), **params}
        if since is not None:
            query["since"] = since
        if flt is not None:
            query["filter"] = flt if isinstance(flt, str) else json.dumps(flt)
        qs = "&".join(f"{k}={quote(v)}" for k, v in query.items())
        return await self.req("GET", f"/sync?{qs}")


async def new_user(hs: Client, name: str) -> User:
    result = await hs.register(name)
    return User(hs, result["user_id"], result["device_id"], result["access_token"])


async def bob_in_alices_room(hs: Client) -> tuple[User, User, str, str]:
    """alice, bob, a room of alice's that bob joined, and bob's sync token after it."""
    alice = await new_user(hs, "alice")
    bob = await new_user(hs, "bob")
    room = await alice.create_room()
    await bob.join(room)
    return alice, bob, room, (await bob.sync())["next_batch"]


async def login_again(hs: Client, user: User, name: str) -> User:
    status, result = await hs.login(name)
    assert status == 200, result
    return User(hs, result["user_id"], result["device_id"], result["access_token"])


def timeline(body: dict[str, Any], room_id: str) -> list[dict[str, Any]]:
    return list(body["rooms"]["join"][room_id]["timeline"]["events"])


def bodies(body: dict[str, Any], room_id: str) -> list[str]:
    return [e["content"]["body"] for e in timeline(body, room_id)
            if e["type"] == "m.room.message"]
