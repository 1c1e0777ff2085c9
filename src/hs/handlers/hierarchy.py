"""Space hierarchy: client-server ``GET /rooms/{roomId}/hierarchy`` and the federation
``GET /hierarchy/{roomId}`` answer (client-server "Spaces").

The client walk is depth-first from the root over ``m.space.child`` state events with a
non-empty ``via``, children in the spec's order ("Ordering of children within a space").
A room is listed when the requester may see it (spec: joined, invited, public, knockable,
restricted with a joined allowed room, or world-readable). Rooms this server does not hold
are asked of the servers in the child event's ``via`` (best effort).

Pagination keeps the rest of the walk in memory under a random token (``next_batch``);
a token is only accepted from the same user, for the same room and parameters.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from hs.core.pdu import PDU
from hs.core.room_versions import UnsupportedRoomVersionError, get_room_version
from hs.handlers.directory import room_summary
from hs.http.errors import forbidden, invalid_param, not_found

if TYPE_CHECKING:
    from hs.app import Services

logger = logging.getLogger(__name__)

SPACE_CHILD = "m.space.child"
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
DEFAULT_MAX_DEPTH = 50
MAX_DEPTH = 50
SESSION_TTL_S = 300.0
MAX_SESSIONS = 1000
#: How long summaries other servers gave are reused (seconds).
REMOTE_CACHE_TTL_S = 60.0


@dataclass
class _Session:
    user_id: str
    room_id: str
    suggested_only: bool
    max_depth: int
    #: Rooms still to visit, top last: (room_id, depth, via).
    stack: list[tuple[str, int, list[str]]]
    processed: set[str] = field(default_factory=set)
    created: float = field(default_factory=time.monotonic)


@dataclass
class _Remote:
    """A remote room's summary as another server gave it (``children_state`` included
    only when the room itself was asked for)."""

    summary: dict[str, Any]
    children_state: list[dict[str, Any]] | None
    fetched: float = field(default_factory=time.monotonic)


def _valid_via(content: Any) -> list[str] | None:
    via = content.get("via") if hasattr(content, "get") else None
    if not isinstance(via, list) or not via:
        return None
    servers = [s for s in via if isinstance(s, str) and s]
    return servers or None


def _order_key(event: dict[str, Any]) -> tuple[int, str, int, str]:
    """Spec "Ordering of children within a space"."""
    order = event["content"].get("order")
    valid = (isinstance(order, str) and len(order) <= 50
             and all("\x20" <= ch <= "\x7e" for ch in order))
    ts = event.get("origin_server_ts")
    ts = ts if isinstance(ts, int) else 0
    return (0, order, ts, event["state_key"]) if valid else (1, "", ts, event["state_key"])


def _stripped(pdu: PDU) -> dict[str, Any]:
    return {"type": pdu.type, "state_key": pdu.state_key, "content": dict(pdu.content),
            "sender": pdu.sender, "origin_server_ts": pdu.origin_server_ts}


def _children(children_state: list[dict[str, Any]], suggested_only: bool
              ) -> list[tuple[str, list[str]]]:
    """``(room_id, via)`` of the children to walk, in the spec's order."""
    out = []
    for event in sorted(children_state, key=_order_key):
        via = _valid_via(event.get("content") or {})
        if via is None or not isinstance(event.get("state_key"), str):
            continue
        if suggested_only and event["content"].get("suggested") is not True:
            continue
        out.append((event["state_key"], via))
    return out


@dataclass
class _LocalRoom:
    summary: dict[str, Any]
    children_state: list[dict[str, Any]]
    join_rule: str | None
    allowed_room_ids: list[str]
    world_readable: bool


class HierarchyHandler:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.server_name = services.config.server_name
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._remote: dict[str, _Remote] = {}

    # -- local rooms ------------------------------------------------------------------------

    async def _local_room(self, room_id: str) -> _LocalRoom | None:
        """The room's summary and valid child events, None when this server has no state
        for it."""
        events = self.services.events
        version_id = await events.get_room_version(room_id)
        if version_id is None:
            return None
        state = await events.get_current_state_ids(
            room_id, [(SPACE_CHILD, None), ("m.room.join_rules", ""),
                      ("m.room.encryption", ""), ("m.room.create", "")])
        if ("m.room.create", "") not in state:
            return None
        pdus = await events.get_events(list(state.values()))
        queries = self.services.directory.queries
        joined = (await queries.joined_counts([room_id]))[room_id]
        summary = room_summary(room_id, joined, (await queries.summary_events([room_id]))[room_id])
        summary["room_version"] = version_id
        children_state = []
        for (etype, _), eid in state.items():
            pdu = pdus.get(eid)
            if etype == SPACE_CHILD and pdu is not None and _valid_via(pdu.content):
                children_state.append(_stripped(pdu))
        enc = pdus.get(state.get(("m.room.encryption", ""), ""))
        if enc is not None and isinstance(enc.content.get("algorithm"), str):
            summary["encryption"] = enc.content["algorithm"]
        rules = pdus.get(state.get(("m.room.join_rules", ""), ""))
        allowed: list[str] = []
        if rules is not None and isinstance(rules.content.get("allow"), list):
            allowed = [a["room_id"] for a in rules.content["allow"]
                       if isinstance(a, dict) and a.get("type") == "m.room_membership"
                       and isinstance(a.get("room_id"), str)]
        join_rule = summary.get("join_rule")
        if join_rule in ("restricted", "knock_restricted"):
            summary["allowed_room_ids"] = allowed
        return _LocalRoom(summary, children_state, join_rule, allowed,
                          bool(summary.get("world_readable")))

    def _rule_allowed(self, version_id: str | None, join_rule: str | None) -> bool:
        """Public, or knockable in a room version that has knocking."""
        if join_rule == "public":
            return True
        if join_rule not in ("knock", "knock_restricted") or version_id is None:
            return False
        try:
            version = get_room_version(version_id)
        except UnsupportedRoomVersionError:
            return False
        return version.knock if join_rule == "knock" else version.knock_restricted_join_rule

    async def _user_may_see(self, user_id: str, room_id: str, room: _LocalRoom) -> bool:
        queries = self.services.directory.queries
        membership = await queries.get_membership(room_id, user_id)
        if membership in ("join", "invite"):
            return True
        if membership == "ban":
            return False
        return await self._user_may_see_summary(user_id, room.summary, room.allowed_room_ids)

    async def _user_may_see_summary(self, user_id: str, summary: dict[str, Any],
                                    allowed: list[str]) -> bool:
        if summary.get("world_readable") is True:
            return True
        join_rule = summary.get("join_rule")
        if self._rule_allowed(summary.get("room_version") or "10", join_rule):
            return True
        if join_rule in ("restricted", "knock_restricted"):
            queries = self.services.directory.queries
            for allowed_id in allowed:
                if await queries.get_membership(allowed_id, user_id) == "join":
                    return True
        return False

    # -- remote rooms -----------------------------------------------------------------------

    async def _fetch_remote(self, room_id: str, via: list[str], suggested_only: bool
                            ) -> _Remote | None:
        cached = self._remote.get(room_id)
        # A child summary from a parent's answer will do unless the room is a space
        # (whose own children_state is then needed).
        if (cached is not None and time.monotonic() - cached.fetched < REMOTE_CACHE_TTL_S
                and (cached.children_state is not None
                     or cached.summary.get("room_type") != "m.space")):
            return cached
        client = self.services.federation.client
        path = f"/_matrix/federation/v1/hierarchy/{quote(room_id, safe='')}"
        for server in via:
            if server == self.server_name:
                continue
            try:
                body = await client.get_json(
                    server, path, {"suggested_only": "true" if suggested_only else "false"})
            except Exception as exc:  # best effort: errors skip to the next server
                logger.info("hierarchy of %s from %s failed: %s", room_id, server, exc)
                continue
            room = body.get("room") if isinstance(body, dict) else None
            if not isinstance(room, dict) or room.get("room_id") != room_id:
                continue
            state = room.get("children_state")
            state_list = [e for e in state if isinstance(e, dict)
                          and e.get("type") == SPACE_CHILD
                          and isinstance(e.get("state_key"), str)
                          and isinstance(e.get("content"), dict)
                          ] if isinstance(state, list) else []
            summary = {k: v for k, v in room.items() if k != "children_state"}
            result = _Remote(summary, state_list)
            self._remote[room_id] = result
            children = body.get("children")
            for child in children if isinstance(children, list) else ():
                if (isinstance(child, dict) and isinstance(child.get("room_id"), str)
                        and child["room_id"] not in self._remote):
                    self._remote[child["room_id"]] = _Remote(
                        {k: v for k, v in child.items() if k != "children_state"}, None)
            if len(self._remote) > 10_000:
                self._remote.clear()
            return result
        return None

    # -- client walk ------------------------------------------------------------------------

    def _take_session(self, token: str, user_id: str, room_id: str, suggested_only: bool,
                      max_depth: int) -> _Session:
        self._expire()
        session = self._sessions.get(token)
        if session is None or session.user_id != user_id or session.room_id != room_id:
            raise invalid_param("Unknown or expired pagination token")
        if session.suggested_only != suggested_only or session.max_depth != max_depth:
            raise invalid_param("suggested_only and max_depth cannot change on paginated "
                                "requests")
        del self._sessions[token]
        return session

    def _expire(self) -> None:
        now = time.monotonic()
        while self._sessions:
            token, oldest = next(iter(self._sessions.items()))
            if now - oldest.created < SESSION_TTL_S and len(self._sessions) <= MAX_SESSIONS:
                break
            del self._sessions[token]

    async def get_hierarchy(self, user_id: str, room_id: str, *, suggested_only: bool = False,
                            limit: int | None = None, max_depth: int | None = None,
                            from_token: str | None = None) -> dict[str, Any]:
        if limit is not None and limit <= 0:
            raise invalid_param("limit must be greater than zero")
        if max_depth is not None and max_depth < 0:
            raise invalid_param("max_depth must not be negative")
        size = min(limit or DEFAULT_LIMIT, MAX_LIMIT)
        depth_limit = min(DEFAULT_MAX_DEPTH if max_depth is None else max_depth, MAX_DEPTH)
        root = await self._local_room(room_id)
        if root is None or not await self._user_may_see(user_id, room_id, root):
            raise forbidden("You are not allowed to view this room.")
        if from_token is not None:
            session = self._take_session(from_token, user_id, room_id, suggested_only,
                                         depth_limit)
        else:
            session = _Session(user_id, room_id, suggested_only, depth_limit,
                               [(room_id, 0, [])])
        rooms: list[dict[str, Any]] = []
        while session.stack and len(rooms) < size:
            current, depth, via = session.stack.pop()
            if current in session.processed:
                continue
            session.processed.add(current)
            entry = await self._visit(user_id, current, via, suggested_only)
            if entry is None:
                continue
            rooms.append(entry)
            if depth < depth_limit:
                children = _children(entry["children_state"], suggested_only)
                for child_id, child_via in reversed(children):
                    if child_id not in session.processed:
                        session.stack.append((child_id, depth + 1, child_via))
        result: dict[str, Any] = {"rooms": rooms}
        if session.stack:
            token = secrets.token_urlsafe(24)
            session.created = time.monotonic()
            self._sessions[token] = session
            self._expire()
            result["next_batch"] = token
        return result

    async def _visit(self, user_id: str, room_id: str, via: list[str],
                     suggested_only: bool) -> dict[str, Any] | None:
        """The room's entry for the user, or None when hidden or unreachable."""
        local = await self._local_room(room_id)
        if local is not None:
            if not await self._user_may_see(user_id, room_id, local):
                return None
            return {**local.summary, "children_state": local.children_state}
        remote = await self._fetch_remote(room_id, via, suggested_only)
        if remote is None:
            return None
        allowed = remote.summary.get("allowed_room_ids")
        allowed_ids = [a for a in allowed if isinstance(a, str)] if isinstance(
            allowed, list) else []
        if not await self._user_may_see_summary(user_id, remote.summary, allowed_ids):
            return None
        return {**remote.summary, "children_state": remote.children_state or []}

    # -- federation answer ------------------------------------------------------------------

    async def _server_may_see(self, origin: str, room_id: str, room: _LocalRoom) -> bool:
        if room.world_readable or self._rule_allowed(room.summary.get("room_version"),
                                                      room.join_rule):
            return True
        queries = self.services.directory.queries
        suffix = ":" + origin

        async def has_member(rid: str) -> bool:
            return any(u.endswith(suffix) for u in await queries.joined_user_ids(rid))

        if await has_member(room_id):
            return True
        if room.join_rule in ("restricted", "knock_restricted"):
            for allowed_id in room.allowed_room_ids:
                if await has_member(allowed_id):
                    return True
        return False

    async def federation_hierarchy(self, origin: str, room_id: str, *,
                                   suggested_only: bool = False) -> dict[str, Any]:
        root = await self._local_room(room_id)
        if root is None or not await self._server_may_see(origin, room_id, root):
            raise not_found("Room not found or not accessible")
        children: list[dict[str, Any]] = []
        inaccessible: list[str] = []
        for child_id, _ in _children(root.children_state, suggested_only):
            child = await self._local_room(child_id)
            if child is None:
                continue
            if await self._server_may_see(origin, child_id, child):
                children.append(child.summary)
            else:
                inaccessible.append(child_id)
        return {"room": {**root.summary, "children_state": root.children_state},
                "children": children, "inaccessible_children": inaccessible}



__all__ = ["HierarchyHandler"]
