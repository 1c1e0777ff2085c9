"""SQL for to-device messages: inbox rows per recipient device, the federation outbox and
the processed transaction IDs of senders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from hs.storage.database import Database, placeholders

_CHUNK = 500


class ToDeviceStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add_messages(self, sender_user_id: str, sender_device_id: str, txn_id: str,
                           position: int, local: Sequence[tuple[str, str, bytes]],
                           remote: Sequence[tuple[str, bytes]], ts: int) -> bool:
        """Record the txn and store the messages atomically, all at ``position``.

        ``local``: (user_id, device_id, message JSON); ``remote``: (destination, EDU JSON).
        Returns False, writing nothing, when this sender device already used ``txn_id``.
        """
        async with self.db.transaction() as txn:
            inserted = await txn.execute(
                "INSERT INTO device_inbox_txns (user_id, device_id, txn_id, ts)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                sender_user_id, sender_device_id, txn_id, ts)
            if inserted == 0:
                return False
            if local:
                await txn.executemany(
                    "INSERT INTO device_inbox (user_id, device_id, stream_id, message_json)"
                    " VALUES (?, ?, ?, ?)",
                    [(u, d, position, m.decode()) for u, d, m in local])
            if remote:
                await txn.executemany(
                    "INSERT INTO device_federation_outbox (destination, stream_id, edu_json,"
                    " queued_ts) VALUES (?, ?, ?, ?)",
                    [(dest, position, edu.decode(), ts) for dest, edu in remote])
        return True

    async def existing_devices(self, user_ids: Sequence[str]) -> dict[str, set[str]]:
        """user -> IDs of its devices (messages go to existing devices only)."""
        out: dict[str, set[str]] = {}
        for start in range(0, len(user_ids), _CHUNK):
            part = list(user_ids[start:start + _CHUNK])
            rows = await self.db.fetchall(
                "SELECT user_id, device_id FROM devices"
                f" WHERE user_id IN ({placeholders(len(part))})", *part)
            for user_id, device_id in rows:
                out.setdefault(user_id, set()).add(device_id)
        return out

    async def get_messages(self, user_id: str, device_id: str, after: int, up_to: int,
                           limit: int) -> list[tuple[int, dict[str, Any]]]:
        """Up to ``limit`` (position, message) in ``(after, up_to]``, oldest first."""
        rows = await self.db.fetchall(
            "SELECT stream_id, message_json FROM device_inbox WHERE user_id = ?"
            " AND device_id = ? AND stream_id > ? AND stream_id <= ? ORDER BY stream_id"
            " LIMIT ?", user_id, device_id, after, up_to, limit)
        return [(int(r[0]), orjson.loads(r[1])) for r in rows]

    async def delete_messages(self, user_id: str, device_id: str, up_to: int) -> int:
        return await self.db.execute(
            "DELETE FROM device_inbox WHERE user_id = ? AND device_id = ? AND stream_id <= ?",
            user_id, device_id, up_to)

    async def delete_devices(self, user_id: str, device_ids: Sequence[str]) -> None:
        """Drop the inboxes and remembered txn IDs of deleted devices."""
        async with self.db.transaction() as txn:
            for start in range(0, len(device_ids), _CHUNK):
                part = list(device_ids[start:start + _CHUNK])
                marks = placeholders(len(part))
                for table in ("device_inbox", "device_inbox_txns"):
                    await txn.execute(
                        f"DELETE FROM {table} WHERE user_id = ? AND device_id IN ({marks})",
                        user_id, *part)

    async def prune_txns(self, older_than_ts: int) -> int:
        return await self.db.execute("DELETE FROM device_inbox_txns WHERE ts < ?", older_than_ts)

    async def get_outbox(self, destination: str, after: int, limit: int
                         ) -> list[tuple[int, dict[str, Any]]]:
        """Queued EDUs for a remote server (read by the federation sender)."""
        rows = await self.db.fetchall(
            "SELECT stream_id, edu_json FROM device_federation_outbox WHERE destination = ?"
            " AND stream_id > ? ORDER BY stream_id LIMIT ?", destination, after, limit)
        return [(int(r[0]), orjson.loads(r[1])) for r in rows]

    async def delete_outbox(self, destination: str, up_to: int) -> int:
        return await self.db.execute(
            "DELETE FROM device_federation_outbox WHERE destination = ? AND stream_id <= ?",
            destination, up_to)


__all__ = ["ToDeviceStore"]
