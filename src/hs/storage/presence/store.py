"""Presence storage: the latest state of each user, positioned on the ``presence`` stream.

A row is replaced on every change and takes a new position, so "changed since P" is the
rows with ``since < stream_id <= upto``, like account data.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from hs.storage.database import Database
from hs.storage.events._util import chunks, qmarks
from hs.storage.streams import StreamIdGenerator

_COLUMNS = "user_id, state, status_msg, last_active_ts, currently_active, stream_id"


@dataclass(frozen=True, slots=True)
class PresenceRow:
    user_id: str
    state: str
    status_msg: str | None
    last_active_ts: int
    currently_active: bool
    stream_id: int


def _row(r: Any) -> PresenceRow:
    return PresenceRow(r[0], r[1], r[2], int(r[3]), bool(r[4]), int(r[5]))


class PresenceStore:
    def __init__(self, db: Database, stream: StreamIdGenerator) -> None:
        self.db = db
        self.stream = stream

    async def set(self, user_id: str, state: str, status_msg: str | None,
                  last_active_ts: int, currently_active: bool) -> PresenceRow:
        """Replace the user's row; returns it with its new stream position."""
        async with self.stream.next() as pos:
            await self.db.execute(
                f"INSERT INTO presence ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (user_id) DO UPDATE SET state = excluded.state,"
                " status_msg = excluded.status_msg, last_active_ts = excluded.last_active_ts,"
                " currently_active = excluded.currently_active, stream_id = excluded.stream_id",
                user_id, state, status_msg, last_active_ts, currently_active, pos,
            )
        return PresenceRow(user_id, state, status_msg, last_active_ts, currently_active, pos)

    async def touch(self, user_id: str, last_active_ts: int) -> None:
        """Move the last-active time only: no new position, so nobody is woken (spec
        "Last active ago": while ``currently_active`` is true no update is sent)."""
        await self.db.execute(
            "UPDATE presence SET last_active_ts = ? WHERE user_id = ?", last_active_ts, user_id)

    async def idle_online(self, active_before: int) -> list[PresenceRow]:
        """Users "online" whose last activity is older than ``active_before``."""
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM presence WHERE state = 'online' AND last_active_ts < ?",
            active_before)
        return [_row(r) for r in rows]

    async def get(self, user_id: str) -> PresenceRow | None:
        row = await self.db.fetchone(
            f"SELECT {_COLUMNS} FROM presence WHERE user_id = ?", user_id)
        return None if row is None else _row(row)

    async def get_many(self, user_ids: Collection[str]) -> dict[str, PresenceRow]:
        out: dict[str, PresenceRow] = {}
        for part in chunks(list(user_ids)):
            rows = await self.db.fetchall(
                f"SELECT {_COLUMNS} FROM presence WHERE user_id IN ({qmarks(part)})", *part)
            out.update((r[0], _row(r)) for r in rows)
        return out

    async def changed_since(self, since: int, upto: int) -> list[PresenceRow]:
        """Every row changed in ``(since, upto]`` (callers keep those they may see)."""
        if since >= upto:
            return []
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM presence WHERE stream_id > ? AND stream_id <= ?"
            " ORDER BY stream_id", since, upto)
        return [_row(r) for r in rows]


__all__ = ["PresenceRow", "PresenceStore"]
