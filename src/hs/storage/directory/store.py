"""Published-room listing: filter, order and page in SQL, then one batched read of the
page's summary state.

Rooms are ordered by joined members (most first), then room ID, and paged by keyset
(``PageKey``): stable under concurrent changes and cheap at any depth. Search reads the
state events' JSON: SQLite through ``json_extract``, PostgreSQL through ``json #>`` kept as
JSON text (``->>`` would fail on a ``\\u0000`` escape, and one odd room must not break the
directory for everyone), so search terms and room types are JSON-encoded there.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from hs.storage.database import Database
from hs.storage.events._util import chunks, qmarks

#: State events a published-room entry is built from (all with state key "").
SUMMARY_TYPES = ("m.room.create", "m.room.name", "m.room.topic", "m.room.avatar",
                 "m.room.canonical_alias", "m.room.join_rules", "m.room.history_visibility",
                 "m.room.guest_access")
_SEARCH_FIELDS = (("m.room.name", "name"), ("m.room.topic", "topic"),
                  ("m.room.canonical_alias", "alias"))


@dataclass(frozen=True, slots=True, order=True)
class PageKey:
    """Position of a room in the listing: (joined members, room ID)."""

    joined: int
    room_id: str


@dataclass(frozen=True, slots=True)
class SummaryEvent:
    """A summary state event's JSON as stored, with what redaction needs."""

    json: str
    room_version: str
    redacted: bool


def _like_escape(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class DirectoryQueries:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._pg = db.dialect == "postgres"

    # -- helpers for dialect-specific JSON --------------------------------------------------

    def _content(self, column: str, key: str) -> str:
        if self._pg:
            return f"(({column})::json #> '{{content,{key}}}')::text"
        return f"json_extract({column}, '$.content.{key}')"

    def _encode(self, value: str) -> str:
        """A string as ``_content`` yields it (JSON-quoted on PostgreSQL)."""
        return orjson.dumps(value).decode() if self._pg else value

    def _filter_sql(
        self, search: str | None, room_types: Sequence[str | None] | None
    ) -> tuple[str, list[Any]]:
        sql = (
            "SELECT r.room_id, (SELECT COUNT(*) FROM current_state m WHERE m.room_id = r.room_id"
            " AND m.type = 'm.room.member' AND m.membership = 'join') AS joined FROM rooms r"
        )
        where = ["r.is_public"]
        args: list[Any] = []
        if room_types is not None:
            sql += (" LEFT JOIN current_state cc ON cc.room_id = r.room_id"
                    " AND cc.type = 'm.room.create' AND cc.state_key = ''"
                    " LEFT JOIN events ce ON ce.event_id = cc.event_id")
            rtype = self._content("ce.json", "type")
            named = [t for t in room_types if t is not None]
            alternatives = []
            if named:
                alternatives.append(f"{rtype} IN ({qmarks(named)})")
                args += [self._encode(t) for t in named]
            if None in room_types:
                alternatives.append(f"{rtype} IS NULL")
            where.append("(" + (" OR ".join(alternatives) or "FALSE") + ")")
        if search:
            encoded = self._encode(search.lower())
            if self._pg:
                encoded = encoded[1:-1]  # the term matches inside the quoted JSON string
            pattern = "%" + _like_escape(encoded) + "%"
            cases = " ".join(f"WHEN '{etype}' THEN {self._content('e.json', key)}"
                             for etype, key in _SEARCH_FIELDS)
            types = ", ".join(f"'{etype}'" for etype, _ in _SEARCH_FIELDS)
            where.append(
                "(EXISTS (SELECT 1 FROM current_state c JOIN events e ON e.event_id = c.event_id"
                f" WHERE c.room_id = r.room_id AND c.type IN ({types}) AND c.state_key = ''"
                f" AND NOT e.redacted AND LOWER(CASE c.type {cases} END) LIKE ? ESCAPE '\\')"
                " OR EXISTS (SELECT 1 FROM room_aliases a WHERE a.room_id = r.room_id"
                " AND LOWER(a.alias) LIKE ? ESCAPE '\\'))"
            )
            args += [pattern, "%" + _like_escape(search.lower()) + "%"]
        return f"{sql} WHERE {' AND '.join(where)}", args

    # -- listing ----------------------------------------------------------------------------

    async def public_rooms_page(
        self,
        limit: int,
        *,
        search: str | None = None,
        room_types: Sequence[str | None] | None = None,
        after: PageKey | None = None,
        before: PageKey | None = None,
    ) -> list[PageKey]:
        """Up to ``limit`` published rooms in listing order, strictly after ``after`` or
        (the ones closest to it) strictly before ``before``."""
        inner, args = self._filter_sql(search, room_types)
        # Code-point order on both dialects (PostgreSQL's default collation is not), so
        # the order matches Python's and ``all_public_rooms``.
        rid = 'room_id COLLATE "C"' if self._pg else "room_id"
        if before is not None:
            rows = await self.db.fetchall(
                f"SELECT room_id, joined FROM ({inner}) p"
                f" WHERE joined > ? OR (joined = ? AND {rid} < ?)"
                f" ORDER BY joined ASC, {rid} DESC LIMIT ?",
                *args, before.joined, before.joined, before.room_id, limit,
            )
            rows.reverse()
        elif after is not None:
            rows = await self.db.fetchall(
                f"SELECT room_id, joined FROM ({inner}) p"
                f" WHERE joined < ? OR (joined = ? AND {rid} > ?)"
                f" ORDER BY joined DESC, {rid} ASC LIMIT ?",
                *args, after.joined, after.joined, after.room_id, limit,
            )
        else:
            rows = await self.db.fetchall(
                f"SELECT room_id, joined FROM ({inner}) p ORDER BY joined DESC, {rid} ASC"
                " LIMIT ?",
                *args, limit,
            )
        return [PageKey(int(r[1]), r[0]) for r in rows]

    async def all_public_rooms(self) -> list[PageKey]:
        """Every published room with its joined members, unordered (for a cached
        listing; see ``DirectoryHandler``)."""
        inner, args = self._filter_sql(None, None)
        return [PageKey(int(r[1]), r[0]) for r in await self.db.fetchall(inner, *args)]

    async def public_room_ids(self) -> set[str]:
        """IDs of the published rooms (an index-only read)."""
        return {r[0] for r in await self.db.fetchall(
            "SELECT room_id FROM rooms WHERE is_public")}

    async def joined_counts(self, room_ids: Collection[str]) -> dict[str, int]:
        """Joined members per room, in one grouped query per 500 rooms."""
        out = dict.fromkeys(room_ids, 0)
        for part in chunks(list(room_ids)):
            rows = await self.db.fetchall(
                "SELECT room_id, COUNT(*) FROM current_state"
                f" WHERE room_id IN ({qmarks(part)}) AND type = 'm.room.member'"
                " AND membership = 'join' GROUP BY room_id",
                *part,
            )
            out.update({r[0]: int(r[1]) for r in rows})
        return out

    async def count_public_rooms(
        self, *, search: str | None = None, room_types: Sequence[str | None] | None = None
    ) -> int:
        inner, args = self._filter_sql(search, room_types)
        return int(await self.db.fetchval(f"SELECT COUNT(*) FROM ({inner}) p", *args))

    async def summary_events(
        self, room_ids: Collection[str]
    ) -> dict[str, dict[str, SummaryEvent]]:
        """``{room_id: {event type: event}}`` of the summary state of these rooms, in one
        query per 500 rooms."""
        out: dict[str, dict[str, SummaryEvent]] = {r: {} for r in room_ids}
        types = ", ".join(f"'{t}'" for t in SUMMARY_TYPES)
        for part in chunks(list(room_ids)):
            rows = await self.db.fetchall(
                "SELECT c.room_id, c.type, e.json, e.room_version, e.redacted"
                " FROM current_state c JOIN events e ON e.event_id = c.event_id"
                f" WHERE c.room_id IN ({qmarks(part)}) AND c.type IN ({types})"
                " AND c.state_key = ''",
                *part,
            )
            for room_id, etype, raw, version, redacted in rows:
                out[room_id][etype] = SummaryEvent(raw, version, bool(redacted))
        return out

    # -- membership and permissions ---------------------------------------------------------

    async def get_state_event_ids(self, room_id: str, types: Sequence[str]) -> dict[str, str]:
        """Current state event IDs of these types with state key "" (one indexed read,
        unlike loading the room's whole state)."""
        rows = await self.db.fetchall(
            "SELECT type, event_id FROM current_state"
            f" WHERE room_id = ? AND type IN ({qmarks(types)}) AND state_key = ''",
            room_id, *types,
        )
        return {r[0]: r[1] for r in rows}

    async def joined_user_ids(self, room_id: str) -> list[str]:
        """Users currently joined to the room (no membership rows read)."""
        rows = await self.db.fetchall(
            "SELECT state_key FROM current_state"
            " WHERE room_id = ? AND type = 'm.room.member' AND membership = 'join'",
            room_id,
        )
        return [r[0] for r in rows]

    async def get_membership(self, room_id: str, user_id: str) -> str | None:
        """The user's current membership in the room (None: never had one)."""
        value = await self.db.fetchval(
            "SELECT membership FROM current_state"
            " WHERE room_id = ? AND type = 'm.room.member' AND state_key = ?",
            room_id, user_id,
        )
        return None if value is None else str(value)


__all__ = ["DirectoryQueries", "PageKey", "SummaryEvent"]
