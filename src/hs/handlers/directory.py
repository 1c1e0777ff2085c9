"""Room aliases and the published room directory (client-server "Room aliases",
"Published room directory").

Permissions follow Synapse, which Element users expect:

* creating an alias needs our server's domain and (for non-admins) membership of the room;
* deleting one needs to be its creator, a server admin, or someone with the power to send
  ``m.room.canonical_alias`` in the room;
* publishing a room needs that same power, or server admin.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from hs.core.events import redact
from hs.core.power_levels import get_event_power_level, user_power_level
from hs.core.room_versions import get_room_version
from hs.federation.client import (
    FederationClient,
    FederationRequestError,
    HttpResponseError,
)
from hs.handlers.auth import Requester
from hs.http.errors import MatrixError, forbidden, invalid_param, not_found
from hs.storage.directory import DirectoryQueries, PageKey, SummaryEvent
from hs.storage.events import EventsStore

if TYPE_CHECKING:
    from hs.handlers.rooms import RoomHandler

logger = logging.getLogger(__name__)

#: Appendices "Room Aliases": at most 255 bytes including sigil and domain.
MAX_ALIAS_BYTES = 255
CANONICAL_ALIAS = "m.room.canonical_alias"
#: Rooms per /publicRooms page when the client asks for none (or for more).
MAX_PUBLIC_ROOMS_LIMIT = 500
#: How long the ordered, unfiltered /publicRooms listing is reused (seconds).
LISTING_TTL_S = 10.0


def parse_alias(alias: str) -> tuple[str, str]:
    """``(localpart, domain)`` of ``#localpart:domain``; 400 M_INVALID_PARAM otherwise.

    The localpart may hold any codepoint but ``:`` and NUL; the domain is a server name.
    """
    if (
        not alias.startswith("#")
        or len(alias.encode("utf-8", "surrogatepass")) > MAX_ALIAS_BYTES
        or "\x00" in alias
    ):
        raise invalid_param("Room alias invalid")
    localpart, sep, domain = alias[1:].partition(":")
    if not sep or not localpart or not domain or not _valid_server_name(domain):
        raise invalid_param("Room alias invalid")
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in localpart):
        raise invalid_param("Room alias invalid")
    return localpart, domain


def _valid_server_name(name: str) -> bool:
    """Appendices "Server Name": hostname (DNS name, IPv4, [IPv6]) with optional port."""
    host, port = name, ""
    if name.startswith("["):
        end = name.find("]")
        if end < 0:
            return False
        host, rest = name[: end + 1], name[end + 1:]
        if rest and not rest.startswith(":"):
            return False
        port = rest[1:]
        if not all(c in "0123456789abcdefABCDEF:." for c in host[1:-1]):
            return False
    elif ":" in name:
        host, _, port = name.rpartition(":")
    if port and (not port.isdigit() or len(port) > 5):
        return False
    if ":" in name and not port:
        return False
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")
    return bool(host) and (host.startswith("[") or set(host) <= allowed)


def _encode_token(direction: str, key: PageKey) -> str:
    raw = orjson.dumps([key.joined, key.room_id])
    return direction + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[str, PageKey]:
    """``("n"|"p", key)`` of a next/prev batch token; 400 M_INVALID_PARAM when garbled."""
    try:
        direction, body = token[0], token[1:]
        if direction not in "np":
            raise ValueError(direction)
        joined, room_id = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        if not isinstance(joined, int) or not isinstance(room_id, str):
            raise ValueError(token)
    except (IndexError, ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise invalid_param("Invalid 'since' token") from None
    return direction, PageKey(joined, room_id)


def _content(event: SummaryEvent | None) -> dict[str, Any]:
    """The event's content as served (redaction applied)."""
    if event is None:
        return {}
    data = orjson.loads(event.json)
    if event.redacted:
        data = redact(data, get_room_version(event.room_version))
    content = data.get("content")
    return content if isinstance(content, dict) else {}


def _plain_topic(content: dict[str, Any]) -> str | None:
    topic = content.get("topic")
    if isinstance(topic, str) and topic:
        return topic
    blocks = content.get("m.topic")
    texts = blocks.get("m.text") if isinstance(blocks, dict) else None
    for block in texts if isinstance(texts, list) else ():
        if (isinstance(block, dict) and block.get("mimetype", "text/plain") == "text/plain"
                and isinstance(block.get("body"), str)):
            return str(block["body"])
    return None


def room_summary(room_id: str, joined: int, events: dict[str, SummaryEvent]) -> dict[str, Any]:
    """A ``PublishedRoomsChunk`` built from the room's current summary state."""
    entry: dict[str, Any] = {
        "room_id": room_id,
        "num_joined_members": joined,
        "world_readable": _content(events.get("m.room.history_visibility")).get(
            "history_visibility") == "world_readable",
        "guest_can_join": _content(events.get("m.room.guest_access")).get(
            "guest_access") == "can_join",
    }
    optional = (
        ("name", _content(events.get("m.room.name")).get("name")),
        ("topic", _plain_topic(_content(events.get("m.room.topic")))),
        ("avatar_url", _content(events.get("m.room.avatar")).get("url")),
        ("canonical_alias", _content(events.get(CANONICAL_ALIAS)).get("alias")),
        ("join_rule", _content(events.get("m.room.join_rules")).get("join_rule")),
        ("room_type", _content(events.get("m.room.create")).get("type")),
    )
    for key, value in optional:
        if isinstance(value, str) and value:
            entry[key] = value
    return entry


class DirectoryHandler:
    def __init__(self, server_name: str, events: EventsStore, queries: DirectoryQueries,
                 federation: FederationClient | None = None,
                 rooms: RoomHandler | None = None) -> None:
        self.server_name = server_name
        self.events = events
        self.queries = queries
        self.federation = federation
        #: Sends the updated ``m.room.canonical_alias`` when a published alias is deleted.
        self.rooms = rooms
        #: (built at, ordered listing, its sort keys): see ``_listing``.
        self._listing_cache: tuple[float, list[PageKey], list[tuple[int, str]]] | None = None
        self._listing_lock = asyncio.Lock()

    # -- shared checks ----------------------------------------------------------------------

    async def require_joined(self, room_id: str, user_id: str) -> None:
        """403 unless the user is currently joined to the room."""
        if await self.queries.get_membership(room_id, user_id) != "join":
            raise forbidden(f"User {user_id} is not in room {room_id}")

    async def has_state_power(self, room_id: str, user_id: str, event_type: str) -> bool:
        """Whether the user's power level in the room's current state allows sending the
        state event ``event_type`` (state key "")."""
        ids = await self.queries.get_state_event_ids(
            room_id, ("m.room.create", "m.room.power_levels"))
        pdus = await self.events.get_events(list(ids.values()))
        create = pdus.get(ids.get("m.room.create", ""))
        levels = pdus.get(ids.get("m.room.power_levels", ""))
        needed = get_event_power_level(event_type, "", None if levels is None else levels.content)
        return user_power_level(user_id, create, levels) >= needed

    async def _require_room(self, room_id: str) -> None:
        if await self.events.rooms.get_room_version(room_id) is None:
            raise not_found("Room not found")

    # -- aliases ----------------------------------------------------------------------------

    async def create_alias(self, requester: Requester, alias: str, room_id: str) -> None:
        _, domain = parse_alias(alias)
        if domain != self.server_name:
            raise invalid_param("Room alias must be on this server's domain")
        if not room_id.startswith("!"):
            raise invalid_param("room_id must be a room ID")
        await self._require_room(room_id)
        if not requester.admin:
            await self.require_joined(room_id, requester.user_id)
        if not await self.events.rooms.create_alias(alias, room_id, requester.user_id):
            raise MatrixError(409, "M_ROOM_IN_USE", f"Room alias {alias} already exists")

    async def resolve_alias(self, alias: str) -> dict[str, Any]:
        """``{room_id, servers}``; other servers' aliases are asked over federation."""
        _, domain = parse_alias(alias)
        if domain != self.server_name:
            return await self._resolve_remote(alias, domain)
        found = await self.events.rooms.get_alias(alias)
        if found is None:
            raise not_found(f"Room alias {alias} not found")
        room_id = found[0]
        servers = {self.server_name}
        servers.update(u.partition(":")[2] for u in await self.queries.joined_user_ids(room_id))
        ordered = [self.server_name, *sorted(servers - {self.server_name})]
        return {"room_id": room_id, "servers": ordered}

    async def _resolve_remote(self, alias: str, domain: str) -> dict[str, Any]:
        if self.federation is None:
            raise not_found(f"Room alias {alias} not found")
        try:
            body = await self.federation.get_json(
                domain, "/_matrix/federation/v1/query/directory", {"room_alias": alias})
        except HttpResponseError as exc:
            if exc.status == 404:
                raise not_found(f"Room alias {alias} not found") from None
            raise MatrixError(502, "M_UNKNOWN", f"Could not resolve alias: {exc}") from None
        except FederationRequestError as exc:
            raise MatrixError(502, "M_UNKNOWN", f"Could not resolve alias: {exc}") from None
        room_id = body.get("room_id") if isinstance(body, dict) else None
        servers = body.get("servers") if isinstance(body, dict) else None
        if not isinstance(room_id, str) or not isinstance(servers, list):
            raise MatrixError(502, "M_UNKNOWN", "Invalid alias response from remote server")
        return {"room_id": room_id, "servers": [s for s in servers if isinstance(s, str)]}

    async def delete_alias(self, requester: Requester, alias: str) -> None:
        _, domain = parse_alias(alias)
        found = (await self.events.rooms.get_alias(alias)
                 if domain == self.server_name else None)
        if found is None:
            raise not_found(f"Room alias {alias} not found")
        room_id, creator = found
        if not (requester.admin or requester.user_id == creator
                or await self.has_state_power(room_id, requester.user_id, CANONICAL_ALIAS)):
            raise forbidden("You don't have permission to delete the alias")
        if await self.events.rooms.delete_alias(alias) is None:
            raise not_found(f"Room alias {alias} not found")
        await self._drop_from_canonical_alias(requester, room_id, alias)

    async def _drop_from_canonical_alias(self, requester: Requester, room_id: str,
                                         alias: str) -> None:
        """Remove a deleted alias from the room's ``m.room.canonical_alias`` (as Synapse
        does; the spec allows it). Done as the requester, and skipped quietly when they
        may not send it: the deletion itself has succeeded either way (spec: "Servers
        which choose to update the canonical alias event are recommended to ... delete
        the alias and return a successful response")."""
        if self.rooms is None:
            return
        event = (await self.queries.summary_events([room_id]))[room_id].get(CANONICAL_ALIAS)
        if event is None:
            return
        current = _content(event)
        alt = current.get("alt_aliases")
        alt_list = [a for a in alt if isinstance(a, str)] if isinstance(alt, list) else []
        if current.get("alias") != alias and alias not in alt_list:
            return
        content = {k: v for k, v in current.items() if k not in ("alias", "alt_aliases")}
        if current.get("alias") not in (None, alias):
            content["alias"] = current["alias"]
        remaining = [a for a in alt_list if a != alias]
        if remaining:
            content["alt_aliases"] = remaining
        try:
            await self.rooms.send_event(requester, room_id, CANONICAL_ALIAS, content,
                                        state_key="", ratelimit=False)
        except MatrixError as exc:
            logger.info("Not updating %s in %s after deleting %s: %s", CANONICAL_ALIAS,
                        room_id, alias, exc.error)

    async def get_local_aliases(self, requester: Requester, room_id: str) -> list[str]:
        """Members (and admins) only, unless the room is world-readable."""
        await self._require_room(room_id)
        if not requester.admin and await self.queries.get_membership(
                room_id, requester.user_id) != "join":
            summary = await self.queries.summary_events([room_id])
            visibility = _content(summary[room_id].get("m.room.history_visibility"))
            if visibility.get("history_visibility") != "world_readable":
                raise forbidden("You are not a member of the room")
        aliases: list[str] = await self.events.rooms.get_aliases_for_room(room_id)
        return aliases

    # -- directory visibility ---------------------------------------------------------------

    async def get_visibility(self, room_id: str) -> str:
        room = await self.events.rooms.get_room(room_id)
        if room is None:
            raise not_found("Room not found")
        return "public" if room.is_public else "private"

    async def set_visibility(self, requester: Requester, room_id: str, visibility: str) -> None:
        if visibility not in ("public", "private"):
            raise invalid_param("visibility must be 'public' or 'private'")
        if await self.events.rooms.get_room(room_id) is None:
            raise not_found("Room not found")
        if not requester.admin and (
            await self.queries.get_membership(room_id, requester.user_id) != "join"
            or not await self.has_state_power(room_id, requester.user_id, CANONICAL_ALIAS)
        ):
            raise forbidden("You don't have permission to change the room's directory listing")
        await self.events.rooms.set_room_public(room_id, visibility == "public")
        self._listing_cache = None

    # -- listing ----------------------------------------------------------------------------

    async def public_rooms(
        self,
        *,
        limit: int | None = None,
        since: str | None = None,
        search: str | None = None,
        room_types: Sequence[str | None] | None = None,
        server: str | None = None,
        remote_body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One page of the published room directory (see ``DirectoryQueries``)."""
        if server is not None and server != self.server_name:
            return await self._remote_public_rooms(server, remote_body or {})
        if limit is not None and limit < 0:
            raise invalid_param("limit must not be negative")
        size = min(limit or MAX_PUBLIC_ROOMS_LIMIT, MAX_PUBLIC_ROOMS_LIMIT)
        search = search.strip() if search else None
        direction, key = _decode_token(since) if since else ("n", None)
        if search or room_types is not None:
            page, more_before, more_after, total = await self._filtered_page(
                size, search, room_types, direction, key)
            joined = {k.room_id: k.joined for k in page}
        else:
            page, more_before, more_after, total = await self._listing_page(
                size, direction, key)
            joined = await self.queries.joined_counts([k.room_id for k in page])
        summaries = await self.queries.summary_events([k.room_id for k in page])
        result: dict[str, Any] = {
            "chunk": [room_summary(k.room_id, joined[k.room_id], summaries[k.room_id])
                      for k in page],
            "total_room_count_estimate": total,
        }
        if page and more_after:
            result["next_batch"] = _encode_token("n", page[-1])
        if page and more_before:
            result["prev_batch"] = _encode_token("p", page[0])
        return result

    async def _filtered_page(
        self, size: int, search: str | None, room_types: Sequence[str | None] | None,
        direction: str, key: PageKey | None,
    ) -> tuple[list[PageKey], bool, bool, int]:
        """A searched/filtered page, filtered, ordered and cut in SQL."""
        if direction == "p":
            page = await self.queries.public_rooms_page(
                size + 1, search=search, room_types=room_types, before=key)
            more_before = len(page) > size
            page = page[-size:] if more_before else page
            more_after = True
        else:
            page = await self.queries.public_rooms_page(
                size + 1, search=search, room_types=room_types, after=key)
            more_after = len(page) > size
            page = page[:size]
            more_before = key is not None
        total = await self.queries.count_public_rooms(search=search, room_types=room_types)
        return page, more_before, more_after, total

    async def _listing_page(
        self, size: int, direction: str, key: PageKey | None
    ) -> tuple[list[PageKey], bool, bool, int]:
        """A page of the unfiltered listing (what a directory shows when opened), cut from
        the cached ordered list; the page's member counts are re-read by the caller."""
        listing, sort_keys = await self._listing()
        if direction == "p" and key is not None:
            end = bisect.bisect_left(sort_keys, (-key.joined, key.room_id))
            start = max(end - size, 0)
            return listing[start:end], start > 0, True, len(listing)
        start = 0 if key is None else bisect.bisect_right(sort_keys, (-key.joined, key.room_id))
        return (listing[start:start + size], key is not None, start + size < len(listing),
                len(listing))

    async def _listing(self) -> tuple[list[PageKey], list[tuple[int, str]]]:
        """All published rooms, most members first. Counting every public room's members
        on each request would not scale, so the order is reused for ``LISTING_TTL_S``
        unless the set of published rooms changed (checked on each request with a cheap
        index read, so rooms published by createRoom, the admin API or another process show
        at once). Only the order can be a few seconds old; counts shown are re-read."""
        async with self._listing_lock:
            cached = self._listing_cache
            if cached is not None and time.monotonic() - cached[0] < LISTING_TTL_S:
                current = await self.queries.public_room_ids()
                if len(current) == len(cached[1]) and all(
                        k.room_id in current for k in cached[1]):
                    return cached[1], cached[2]
            keys = sorted(await self.queries.all_public_rooms(),
                          key=lambda k: (-k.joined, k.room_id))
            sort_keys = [(-k.joined, k.room_id) for k in keys]
            self._listing_cache = (time.monotonic(), keys, sort_keys)
            return keys, sort_keys

    async def _remote_public_rooms(self, server: str, body: dict[str, Any]) -> dict[str, Any]:
        """Another server's directory, over federation (POST carries the filter)."""
        if self.federation is None:
            raise MatrixError(502, "M_UNKNOWN", "Federation is not available")
        path = "/_matrix/federation/v1/publicRooms"
        try:
            result = await self.federation.post_json(server, path, body)
        except FederationRequestError as exc:
            raise MatrixError(502, "M_UNKNOWN", f"Failed to fetch room directory: {exc}"
                              ) from None
        if not isinstance(result, dict) or not isinstance(result.get("chunk"), list):
            raise MatrixError(502, "M_UNKNOWN", "Invalid room directory from remote server")
        return result


__all__ = ["DirectoryHandler", "parse_alias", "room_summary"]
