"""Server ACLs (server-server API "Server Access Control Lists (ACLs)").

``m.room.server_acl`` names the servers that may take part in a room: ``deny`` globs win
over ``allow`` globs, IP literals are refused unless ``allow_ip_literals`` (default true),
and the port is ignored. A denied server's PDUs are dropped and its requests about the room
get 403 M_FORBIDDEN.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Mapping
from typing import Any

from hs.http.errors import MatrixError
from hs.storage.events import EventsStore

SERVER_ACL = ("m.room.server_acl", "")


def _host(server_name: str) -> str:
    if server_name.startswith("["):
        return server_name[1:].partition("]")[0]
    return server_name.rpartition(":")[0] if server_name.count(":") == 1 else server_name


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _globs(content: Mapping[str, Any], key: str) -> list[str]:
    value = content.get(key)
    return [g for g in value if isinstance(g, str)] if isinstance(value, list) else []


def server_allowed(server_name: str, content: Mapping[str, Any]) -> bool:
    """Whether ``content`` (an m.room.server_acl event's) admits ``server_name``."""
    host = _host(server_name).lower()
    if content.get("allow_ip_literals", True) is False and _is_ip_literal(host):
        return False
    if any(fnmatch.fnmatchcase(host, g.lower()) for g in _globs(content, "deny")):
        return False
    return any(fnmatch.fnmatchcase(host, g.lower()) for g in _globs(content, "allow"))


async def is_server_allowed(events: EventsStore, room_id: str, server_name: str) -> bool:
    """The room's current ACL admits ``server_name`` (no ACL: everyone)."""
    ids = await events.get_current_state_ids(room_id, [SERVER_ACL])
    eid = ids.get(SERVER_ACL)
    if eid is None:
        return True
    pdu = await events.get_event(eid)
    return pdu is None or server_allowed(server_name, pdu.content)


async def require_server_allowed(events: EventsStore, room_id: str, server_name: str) -> None:
    if not await is_server_allowed(events, room_id, server_name):
        raise MatrixError(403, "M_FORBIDDEN", "Server is banned from this room")


async def filter_edus(events: EventsStore, origin: str, edus: list[Any]) -> list[Any]:
    """Drop the room-scoped parts of EDUs from a server the room's ACL denies (spec: ACLs
    apply to typing notifications and read receipts as well as PDUs)."""
    cache: dict[str, bool] = {}

    async def allowed(room_id: Any) -> bool:
        if not isinstance(room_id, str):
            return True  # malformed: the EDU handler rejects it
        if room_id not in cache:
            cache[room_id] = await is_server_allowed(events, room_id, origin)
        return cache[room_id]

    out: list[Any] = []
    for edu in edus:
        content = edu.get("content") if isinstance(edu, dict) else None
        kind = edu.get("edu_type") if isinstance(edu, dict) else None
        if kind == "m.typing" and isinstance(content, dict):
            if not await allowed(content.get("room_id")):
                continue
        elif kind == "m.receipt" and isinstance(content, dict):
            kept = {r: v for r, v in content.items() if await allowed(r)}
            if not kept:
                continue
            edu = {**edu, "content": kept}
        out.append(edu)
    return out
