"""Account data: per-user global and per-room JSON objects, positioned on the
``account_data`` stream.

Every write takes a new position and replaces the stored value, so an incremental sync
asks for the rows with ``since < stream_id <= current``; the latest value of each key is all
a client needs (account data events replace earlier ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from hs.storage.database import Database
from hs.storage.events.cache import LruCache
from hs.storage.streams import StreamIdGenerator

JsonDict = dict[str, Any]


@dataclass(slots=True)
class AccountDataChanges:
    """Account data by type: ``global_data`` and ``rooms[room_id]``."""

    global_data: dict[str, JsonDict] = field(default_factory=dict)
    rooms: dict[str, dict[str, JsonDict]] = field(default_factory=dict)


class AccountDataStore:
    """Reads and writes; writers get the new stream position back to notify with."""

    def __init__(self, db: Database, stream: StreamIdGenerator) -> None:
        self.db = db
        self.stream = stream
        #: (user, type) -> stored JSON text ("" when absent). Read on every timeline read
        #: (``m.ignored_user_list``); only ``set_global_account_data`` changes it. Per
        #: process: a worker split must drop entries from the stream's rows as well.
        self._global: LruCache[tuple[str, str], str] = LruCache(20_000)
        self._global_writes = 0

    # -- global -----------------------------------------------------------------------------

    async def set_global_account_data(self, user_id: str, data_type: str,
                                      content: JsonDict) -> int:
        raw = orjson.dumps(content).decode()
        async with self.stream.next() as pos:
            await self.db.execute(
                "INSERT INTO account_data (user_id, type, content, stream_id) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (user_id, type) DO UPDATE SET content = excluded.content,"
                " stream_id = excluded.stream_id",
                user_id, data_type, raw, pos,
            )
        self._global_writes += 1
        self._global.invalidate([(user_id, data_type)])
        return pos

    async def get_global_account_data(self, user_id: str, data_type: str) -> JsonDict | None:
        key = (user_id, data_type)
        raw = self._global.get(key)
        if raw is None:
            writes = self._global_writes
            raw = await self.db.fetchval(
                "SELECT content FROM account_data WHERE user_id = ? AND type = ?",
                user_id, data_type) or ""
            if writes == self._global_writes:
                self._global.set(key, raw)
        return orjson.loads(raw) if raw else None

    # -- per room ---------------------------------------------------------------------------

    async def set_room_account_data(self, user_id: str, room_id: str, data_type: str,
                                    content: JsonDict) -> int:
        raw = orjson.dumps(content).decode()
        async with self.stream.next() as pos:
            await self.db.execute(
                "INSERT INTO room_account_data (user_id, room_id, type, content, stream_id)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, room_id, type) DO UPDATE"
                " SET content = excluded.content, stream_id = excluded.stream_id",
                user_id, room_id, data_type, raw, pos,
            )
        return pos

    async def get_room_account_data(self, user_id: str, room_id: str,
                                    data_type: str) -> JsonDict | None:
        raw = await self.db.fetchval(
            "SELECT content FROM room_account_data WHERE user_id = ? AND room_id = ? AND type = ?",
            user_id, room_id, data_type,
        )
        return None if raw is None else orjson.loads(raw)

    # -- sync -------------------------------------------------------------------------------

    async def account_data_since(self, since: int, user_id: str,
                                 upto: int | None = None) -> AccountDataChanges:
        """The user's account data changed in ``(since, upto]`` (``upto`` defaults to the
        stream's current position, so in-flight writes are never half seen). ``since=0``
        gives everything (initial sync)."""
        top = self.stream.current() if upto is None else upto
        out = AccountDataChanges()
        if since >= top:
            return out
        rows = await self.db.fetchall(
            "SELECT type, content FROM account_data"
            " WHERE user_id = ? AND stream_id > ? AND stream_id <= ?",
            user_id, since, top,
        )
        out.global_data = {r[0]: orjson.loads(r[1]) for r in rows}
        rows = await self.db.fetchall(
            "SELECT room_id, type, content FROM room_account_data"
            " WHERE user_id = ? AND stream_id > ? AND stream_id <= ?",
            user_id, since, top,
        )
        for room_id, data_type, raw in rows:
            out.rooms.setdefault(room_id, {})[data_type] = orjson.loads(raw)
        return out


__all__ = ["AccountDataChanges", "AccountDataStore"]
