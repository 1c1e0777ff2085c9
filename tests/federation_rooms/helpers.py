"""Shared steps of the federation room tests."""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import quote

from tests.federation_rooms.harness import Server

from hs.core.pdu import PDU
from hs.handlers.rooms.pipeline import Draft

CS = "/_matrix/client/v3"
FED = "/_matrix/federation/v1"
_TXNS = itertools.count()


async def public_room(server: Server, token: str, alias: str | None = None,
                      **extra: Any) -> str:
    body: dict[str, Any] = {"preset": "public_chat", "name": "fed room", **extra}
    if alias:
        body["room_alias_name"] = alias
    status, resp = await server.call("POST", CS + "/createRoom", body, token=token)
    assert status == 200, resp
    return str(resp["room_id"])


async def send_text(server: Server, token: str, room_id: str, text: str) -> str:
    status, resp = await server.call(
        "PUT", f"{CS}/rooms/{quote(room_id)}/send/m.room.message/t{next(_TXNS)}",
        {"msgtype": "m.text", "body": text}, token=token)
    assert status == 200, resp
    return str(resp["event_id"])


async def join_remote(server: Server, token: str, room_id: str, via: str) -> None:
    status, resp = await server.call(
        "POST", f"{CS}/join/{quote(room_id)}?server_name={quote(via)}", {}, token=token)
    assert status == 200, resp


async def has_event(server: Server, event_id: str) -> bool:
    meta = (await server.services.events.get_event_meta([event_id])).get(event_id)
    return meta is not None and not meta.outlier and meta.rejected_reason is None


async def membership(server: Server, room_id: str, user_id: str) -> str | None:
    state = await server.services.rooms.current_state(room_id, [("m.room.member", user_id)])
    pdu = state.get(("m.room.member", user_id))
    return pdu.membership if pdu is not None else None


async def build_unsent(server: Server, room_id: str, sender: str, content: dict[str, Any],
                       event_type: str = "m.room.message") -> PDU:
    """An event signed by ``server`` on its room tip, never persisted or sent."""
    draft = Draft(event_type, sender, content)
    builder, _ = await server.services.rooms.pipeline._tip(room_id, [draft])
    return builder.build(draft)


async def push(origin: Server, dest: Server, pdus: list[dict[str, Any]]) -> dict[str, Any]:
    """A transaction from ``origin`` to ``dest`` carrying ``pdus``; the per-PDU results."""
    resp = await origin.services.federation.client.put_json(
        dest.name, f"{FED}/send/manual{next(_TXNS)}",
        {"origin": origin.name, "origin_server_ts": 0, "pdus": pdus, "edus": []})
    return dict(resp["pdus"])
