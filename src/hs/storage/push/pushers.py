"""Pushers (client-server "Push Notifications" / POST /pushers/set): where a user's
notifications would be delivered, one per (user, app_id, pushkey)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import orjson

from hs.storage.database import Database
from hs.storage.events._util import chunks, qmarks


@dataclass(frozen=True, slots=True)
class Pusher:
    user_id: str
    app_id: str
    pushkey: str
    kind: str
    app_display_name: str
    device_display_name: str
    profile_tag: str | None
    lang: str
    data: dict[str, Any]
    device_id: str | None
    created_ts: int

    def to_client(self) -> dict[str, Any]:
        """The GET /pushers representation."""
        out: dict[str, Any] = {
            "pushkey": self.pushkey, "kind": self.kind, "app_id": self.app_id,
            "app_display_name": self.app_display_name,
            "device_display_name": self.device_display_name, "lang": self.lang,
            "data": self.data,
        }
        if self.profile_tag is not None:
            out["profile_tag"] = self.profile_tag
        return out


_COLUMNS = ("user_id, app_id, pushkey, kind, app_display_name, device_display_name,"
            " profile_tag, lang, data, device_id, created_ts")


class PushersStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get_pushers(self, user_id: str) -> list[Pusher]:
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM pushers WHERE user_id = ? ORDER BY created_ts, app_id,"
            " pushkey", user_id)
        return [Pusher(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], orjson.loads(r[8]),
                       r[9], int(r[10])) for r in rows]

    async def set_pusher(self, pusher: Pusher, *, append: bool) -> None:
        """Create or replace the user's pusher; without ``append`` other users' pushers
        with the same app_id and pushkey go (spec: the pushkey moved to this user)."""
        async with self.db.transaction() as txn:
            if not append:
                await txn.execute(
                    "DELETE FROM pushers WHERE app_id = ? AND pushkey = ? AND user_id <> ?",
                    pusher.app_id, pusher.pushkey, pusher.user_id)
            await txn.execute(
                f"INSERT INTO pushers ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (user_id, app_id, pushkey) DO UPDATE SET kind = excluded.kind,"
                " app_display_name = excluded.app_display_name,"
                " device_display_name = excluded.device_display_name,"
                " profile_tag = excluded.profile_tag, lang = excluded.lang,"
                " data = excluded.data, device_id = excluded.device_id",
                pusher.user_id, pusher.app_id, pusher.pushkey, pusher.kind,
                pusher.app_display_name, pusher.device_display_name, pusher.profile_tag,
                pusher.lang, orjson.dumps(pusher.data).decode(), pusher.device_id,
                pusher.created_ts)

    async def delete_pusher(self, user_id: str, app_id: str, pushkey: str) -> int:
        return await self.db.execute(
            "DELETE FROM pushers WHERE user_id = ? AND app_id = ? AND pushkey = ?",
            user_id, app_id, pushkey)

    async def delete_for_devices(self, user_id: str, device_ids: Collection[str]) -> int:
        """Drop the pushers created by these (deleted) devices."""
        total = 0
        for part in chunks(list(device_ids)):
            total += await self.db.execute(
                f"DELETE FROM pushers WHERE user_id = ? AND device_id IN ({qmarks(part)})",
                user_id, *part)
        return total


__all__ = ["Pusher", "PushersStore"]
