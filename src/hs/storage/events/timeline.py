"""Timeline reads: stream and topological pagination, event context, relations, redactions.

Only timeline events (``in_timeline``: not outliers, rejected or soft-failed) are returned,
through the partial indexes on ``(room_id, stream_ordering)`` and
``(room_id, depth, stream_ordering)``. Token semantics are in ``tokens.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from hs.core.pdu import PDU
from hs.storage.database import Database
from hs.storage.events._util import chunks, qmarks
from hs.storage.events.tokens import RoomToken
from hs.storage.events.types import EventFilter, Page, ThreadSummary

if TYPE_CHECKING:
    from hs.storage.streams import StreamIdGenerator

Direction = Literal["b", "f"]

#: A relation counts only within the target's room (the target's ID is the next argument).
_SAME_ROOM = "r.room_id = (SELECT o.room_id FROM events o WHERE o.event_id = ?)"
_SAME_ROOM_CORRELATED = (
    "r.room_id = (SELECT o.room_id FROM events o WHERE o.event_id = r.relates_to)"
)


@dataclass(frozen=True, slots=True)
class EventContext:
    """An event with up to N events either side (topological order) and the tokens to
    continue backwards from ``start`` and forwards from ``end``."""

    event: PDU
    before: list[PDU]  # newest first
    after: list[PDU]  # oldest first
    start: str
    end: str


def _like_escape(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def filter_sql(flt: EventFilter | None, alias: str = "") -> tuple[str, list[Any]]:
    """`` AND ...`` conditions (and their arguments) for a timeline filter."""
    if flt is None:
        return "", []
    col = f"{alias}." if alias else ""
    parts: list[str] = []
    args: list[Any] = []

    def type_match(types: Iterable[str]) -> str:
        terms = []
        for t in types:
            if t.endswith("*"):
                terms.append(f"{col}type LIKE ? ESCAPE '\\'")
                args.append(_like_escape(t[:-1]))
            else:
                terms.append(f"{col}type = ?")
                args.append(t)
        return "(" + " OR ".join(terms) + ")" if terms else "FALSE"

    if flt.types is not None:
        parts.append(type_match(flt.types))
    if flt.not_types:
        parts.append("NOT " + type_match(flt.not_types))
    if flt.senders is not None:
        if flt.senders:
            parts.append(f"{col}sender IN ({qmarks(flt.senders)})")
            args += flt.senders
        else:
            parts.append("FALSE")
    if flt.not_senders:
        parts.append(f"{col}sender NOT IN ({qmarks(flt.not_senders)})")
        args += flt.not_senders
    return "".join(" AND " + p for p in parts), args


class TimelineMixin:
    """Reads over the timeline; mixed into ``EventsStore``."""

    db: Database
    stream: StreamIdGenerator
    get_events: Callable[[Collection[str]], Awaitable[dict[str, PDU]]]

    async def _ordered(self, event_ids: list[str]) -> list[PDU]:
        found = await self.get_events(event_ids)
        return [found[e] for e in event_ids if e in found]

    # -- stream order (sync) ----------------------------------------------------------------

    async def paginate_stream(
        self,
        room_id: str,
        from_pos: int,
        *,
        direction: Direction = "b",
        limit: int = 10,
        to_pos: int | None = None,
        flt: EventFilter | None = None,
    ) -> tuple[list[PDU], int]:
        """Timeline events by stream ordering and the position to continue from.

        Backwards: ``to_pos < stream <= from_pos``, newest first. Forwards: ``from_pos <
        stream <= to_pos`` (default ``to_pos``: the readable maximum), oldest first.
        """
        cond, args = filter_sql(flt)
        if direction == "b":
            rows = await self.db.fetchall(
                "SELECT event_id, stream_ordering FROM events WHERE room_id = ? AND in_timeline"
                f" AND stream_ordering <= ? AND stream_ordering > ?{cond}"
                " ORDER BY stream_ordering DESC LIMIT ?",
                room_id, from_pos, to_pos if to_pos is not None else 0, *args, limit,
            )
            next_pos = int(rows[-1][1]) - 1 if rows else from_pos
        else:
            upper = self.stream.current() if to_pos is None else to_pos
            rows = await self.db.fetchall(
                "SELECT event_id, stream_ordering FROM events WHERE room_id = ? AND in_timeline"
                f" AND stream_ordering > ? AND stream_ordering <= ?{cond}"
                " ORDER BY stream_ordering LIMIT ?",
                room_id, from_pos, upper, *args, limit,
            )
            next_pos = int(rows[-1][1]) if len(rows) == limit else upper
        return await self._ordered([r[0] for r in rows]), next_pos

    # -- topological order (/messages, /context) --------------------------------------------

    async def topological_token(self, room_id: str, stream: int) -> RoomToken:
        """The topological point matching a stream position (see ``tokens.py``)."""
        # Walks the topological index from the top: stops at the first event at or before
        # ``stream``, which is near the top for the tokens sync hands out.
        # The unary plus keeps SQLite's planner off the stream index (which would sort).
        depth = await self.db.fetchval(
            "SELECT depth FROM events WHERE room_id = ? AND in_timeline"
            " AND +stream_ordering <= ? ORDER BY depth DESC LIMIT 1",
            room_id,
            stream,
        )
        return RoomToken(int(depth) if depth is not None else 0, stream)

    async def paginate_messages(
        self,
        room_id: str,
        from_token: RoomToken | str | None,
        *,
        direction: Direction = "b",
        limit: int = 10,
        to_token: RoomToken | str | None = None,
        flt: EventFilter | None = None,
    ) -> Page:
        """/messages: events in ``(depth, stream_ordering)`` order.

        ``from_token`` None starts at the end (backwards) or the beginning (forwards).
        ``end`` is None when no further events exist in that direction.
        """
        start = await self._topo(room_id, from_token, direction)
        stop = await self._topo(room_id, to_token, direction) if to_token is not None else None
        cond, args = filter_sql(flt)
        if direction == "b":
            bound = "(depth, stream_ordering) <= (?, ?)"
            stop_sql = " AND (depth, stream_ordering) > (?, ?)" if stop else ""
            order = "depth DESC, stream_ordering DESC"
        else:
            bound = "(depth, stream_ordering) > (?, ?)"
            stop_sql = " AND (depth, stream_ordering) <= (?, ?)" if stop else ""
            order = "depth, stream_ordering"
        stop_args = [stop.depth, stop.stream] if stop else []
        rows = await self.db.fetchall(
            "SELECT event_id, depth, stream_ordering FROM events WHERE room_id = ?"
            f" AND in_timeline AND {bound}{stop_sql} AND stream_ordering <= ?{cond}"
            f" ORDER BY {order} LIMIT ?",
            room_id, start.depth, start.stream, *stop_args, self.stream.current(), *args, limit,
        )
        end: str | None = None
        if len(rows) == limit:
            depth, stream = int(rows[-1][1]), int(rows[-1][2])
            end = str(RoomToken(depth, stream - 1 if direction == "b" else stream))
        return Page(await self._ordered([r[0] for r in rows]), str(start), end)

    async def _topo(
        self, room_id: str, token: RoomToken | str | None, direction: Direction
    ) -> RoomToken:
        if token is None:
            if direction == "f":
                return RoomToken(-1, 0)
            return await self.topological_token(room_id, self.stream.current())
        if isinstance(token, str):
            token = RoomToken.parse(token)
        if token.depth is None:
            return await self.topological_token(room_id, token.stream)
        return token

    async def get_event_context(
        self, event_id: str, before: int, after: int, flt: EventFilter | None = None
    ) -> EventContext | None:
        """``event_id`` with up to ``before``/``after`` timeline events around it."""
        row = await self.db.fetchone(
            "SELECT room_id, depth, stream_ordering FROM events WHERE event_id = ?", event_id
        )
        event = await self.get_events([event_id])
        if row is None or event_id not in event:
            return None
        room_id, depth, stream = row[0], int(row[1]), int(row[2])
        cond, args = filter_sql(flt)
        rows_b = await self.db.fetchall(
            "SELECT event_id, depth, stream_ordering FROM events WHERE room_id = ?"
            f" AND in_timeline AND (depth, stream_ordering) < (?, ?){cond}"
            " ORDER BY depth DESC, stream_ordering DESC LIMIT ?",
            room_id, depth, stream, *args, before,
        )
        rows_a = await self.db.fetchall(
            "SELECT event_id, depth, stream_ordering FROM events WHERE room_id = ?"
            f" AND in_timeline AND (depth, stream_ordering) > (?, ?)"
            f" AND stream_ordering <= ?{cond} ORDER BY depth, stream_ordering LIMIT ?",
            room_id, depth, stream, self.stream.current(), *args, after,
        )
        first = rows_b[-1] if rows_b else (event_id, depth, stream)
        last = rows_a[-1] if rows_a else (event_id, depth, stream)
        return EventContext(
            event[event_id],
            await self._ordered([r[0] for r in rows_b]),
            await self._ordered([r[0] for r in rows_a]),
            str(RoomToken(int(first[1]), int(first[2]) - 1)),
            str(RoomToken(int(last[1]), int(last[2]))),
        )

    # -- redactions and relations -----------------------------------------------------------

    async def get_redactions_of(self, event_id: str) -> list[str]:
        """IDs of the redaction events naming ``event_id`` (validity is the caller's call)."""
        rows = await self.db.fetchall(
            "SELECT r.event_id FROM redactions r JOIN events re ON re.event_id = r.event_id"
            " LEFT JOIN events t ON t.event_id = r.redacts"
            " WHERE r.redacts = ? AND (t.room_id IS NULL OR t.room_id = re.room_id)"
            " ORDER BY r.event_id",
            event_id,
        )
        return [r[0] for r in rows]

    async def get_relations(
        self,
        event_id: str,
        *,
        rel_type: str | None = None,
        event_type: str | None = None,
        limit: int = 10,
        from_token: str | None = None,
        direction: Direction = "b",
    ) -> Page:
        """/relations: timeline events relating to ``event_id`` from its own room, by stream
        ordering, with ``s<stream>`` tokens (same semantics as room tokens)."""
        sql = (
            "SELECT r.event_id, r.stream_ordering FROM event_relations r WHERE r.relates_to = ?"
            f" AND {_SAME_ROOM} AND r.stream_ordering <= ?"
        )
        args: list[Any] = [event_id, event_id, self.stream.current()]
        if rel_type is not None:
            sql += " AND r.rel_type = ?"
            args.append(rel_type)
        if event_type is not None:
            sql += " AND r.event_type = ?"
            args.append(event_type)
        start = RoomToken.parse(from_token) if from_token else None
        if direction == "b":
            if start is not None:
                sql += " AND r.stream_ordering <= ?"
                args.append(start.stream)
            sql += " ORDER BY r.stream_ordering DESC LIMIT ?"
        else:
            if start is not None:
                sql += " AND r.stream_ordering > ?"
                args.append(start.stream)
            sql += " ORDER BY r.stream_ordering LIMIT ?"
        rows = await self.db.fetchall(sql, *args, limit)
        end = None
        if len(rows) == limit:
            last = int(rows[-1][1])
            end = str(RoomToken(None, last - 1 if direction == "b" else last))
        start_str = str(start) if start is not None else ""
        return Page(await self._ordered([r[0] for r in rows]), start_str, end)

    async def get_latest_edits(self, event_ids: Collection[str]) -> dict[str, PDU]:
        """The applicable m.replace of each event: same sender and type as the original,
        the latest by ``origin_server_ts`` then event ID (client-server "Event replacements")."""
        candidates: dict[str, list[str]] = {}
        for part in chunks(list(set(event_ids))):
            rows = await self.db.fetchall(
                "SELECT r.relates_to, r.event_id FROM event_relations r"
                " JOIN events o ON o.event_id = r.relates_to"
                f" WHERE r.relates_to IN ({qmarks(part)}) AND r.rel_type = 'm.replace'"
                " AND r.room_id = o.room_id AND r.sender = o.sender AND r.event_type = o.type"
                " AND o.state_key IS NULL",
                *part,
            )
            for target, eid in rows:
                candidates.setdefault(target, []).append(eid)
        found = await self.get_events([e for ids in candidates.values() for e in ids])
        out: dict[str, PDU] = {}
        for target, ids in candidates.items():
            edits = [found[e] for e in ids if e in found and not found[e].is_state()]
            if edits:
                out[target] = max(edits, key=lambda p: (p.origin_server_ts, p.event_id))
        return out

    async def get_thread_summaries(self, event_ids: Collection[str]) -> dict[str, ThreadSummary]:
        """Reply count and latest reply of threads rooted at ``event_ids``."""
        latest: dict[str, tuple[int, int]] = {}
        for part in chunks(list(set(event_ids))):
            rows = await self.db.fetchall(
                "SELECT r.relates_to, count(*), max(r.stream_ordering) FROM event_relations r"
                f" WHERE r.relates_to IN ({qmarks(part)}) AND r.rel_type = 'm.thread'"
                f" AND {_SAME_ROOM_CORRELATED} GROUP BY r.relates_to",
                *part,
            )
            latest.update({r[0]: (int(r[1]), int(r[2])) for r in rows})
        ids_by_pos: dict[int, str] = {}
        for positions in chunks([pos for _, pos in latest.values()]):
            rows = await self.db.fetchall(
                "SELECT stream_ordering, event_id FROM events"
                f" WHERE stream_ordering IN ({qmarks(positions)})",
                *positions,
            )
            ids_by_pos.update({int(r[0]): r[1] for r in rows})
        return {
            root: ThreadSummary(count, ids_by_pos[pos]) for root, (count, pos) in latest.items()
        }

    async def get_annotation_counts(self, event_id: str) -> list[tuple[str, str, int]]:
        """``(event type, key, count)`` of the m.annotation relations (reactions) of an
        event, most used first."""
        rows = await self.db.fetchall(
            "SELECT r.event_type, r.aggregation_key, count(*) FROM event_relations r"
            f" WHERE r.relates_to = ? AND r.rel_type = 'm.annotation' AND {_SAME_ROOM}"
            " AND r.aggregation_key IS NOT NULL"
            " GROUP BY r.event_type, r.aggregation_key"
            " ORDER BY count(*) DESC, r.aggregation_key",
            event_id,
            event_id,
        )
        return [(r[0], r[1], int(r[2])) for r in rows]


__all__ = ["Direction", "EventContext", "TimelineMixin", "filter_sql"]
