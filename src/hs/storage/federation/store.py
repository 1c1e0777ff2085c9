"""SQL for the outbound federation sender and for remote users' device lists."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from hs.storage.database import Database
from hs.storage.events._util import chunks, qmarks


@dataclass(frozen=True, slots=True)
class DestinationHealth:
    """Retry state of one destination (all times in ms)."""

    destination: str
    failure_ts: int | None
    retry_last_ts: int
    retry_interval_ms: int
    last_successful_stream_ordering: int


class FederationSenderStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- destination health ---------------------------------------------------------------

    async def get_health(self, destination: str) -> DestinationHealth | None:
        row = await self.db.fetchone(
            "SELECT failure_ts, retry_last_ts, retry_interval_ms,"
            " last_successful_stream_ordering FROM federation_destinations"
            " WHERE destination = ?", destination)
        if row is None:
            return None
        return DestinationHealth(destination, None if row[0] is None else int(row[0]),
                                 int(row[1]), int(row[2]), int(row[3]))

    async def failed_destinations(self) -> list[str]:
        """Destinations that were down when last tried (they need a retry and catch-up)."""
        rows = await self.db.fetchall(
            "SELECT destination FROM federation_destinations WHERE failure_ts IS NOT NULL")
        return [r[0] for r in rows]

    async def set_retry(self, destination: str, failure_ts: int | None, retry_last_ts: int,
                        retry_interval_ms: int) -> None:
        """Record a failure (or, with ``failure_ts`` None and interval 0, recovery)."""
        await self.db.execute(
            "INSERT INTO federation_destinations (destination, failure_ts, retry_last_ts,"
            " retry_interval_ms) VALUES (?, ?, ?, ?) ON CONFLICT (destination) DO UPDATE SET"
            " failure_ts = excluded.failure_ts, retry_last_ts = excluded.retry_last_ts,"
            " retry_interval_ms = excluded.retry_interval_ms",
            destination, failure_ts, retry_last_ts, retry_interval_ms)

    async def set_last_successful(self, destination: str, stream_ordering: int) -> None:
        await self.db.execute(
            "INSERT INTO federation_destinations (destination, last_successful_stream_ordering)"
            " VALUES (?, ?) ON CONFLICT (destination) DO UPDATE SET"
            " last_successful_stream_ordering = excluded.last_successful_stream_ordering"
            " WHERE federation_destinations.last_successful_stream_ordering"
            " < excluded.last_successful_stream_ordering",
            destination, stream_ordering)

    async def lower_last_successful(self, destination: str, stream_ordering: int) -> None:
        """Move the catch-up start back (PDUs below the acknowledged position were lost)."""
        await self.db.execute(
            "UPDATE federation_destinations SET last_successful_stream_ordering = ?"
            " WHERE destination = ? AND last_successful_stream_ordering > ?",
            stream_ordering, destination, stream_ordering)

    # -- catch-up ---------------------------------------------------------------------------

    async def record_room_pdu(self, destinations: Collection[str], room_id: str,
                              event_id: str, stream_ordering: int) -> None:
        """Remember ``event_id`` as the room's latest PDU for each destination (one batch)."""
        if not destinations:
            return
        await self.db.executemany(
            "INSERT INTO federation_destination_rooms (destination, room_id, event_id,"
            " stream_ordering) VALUES (?, ?, ?, ?) ON CONFLICT (destination, room_id)"
            " DO UPDATE SET event_id = excluded.event_id,"
            " stream_ordering = excluded.stream_ordering"
            " WHERE federation_destination_rooms.stream_ordering < excluded.stream_ordering",
            [(d, room_id, event_id, stream_ordering) for d in sorted(destinations)])

    async def catch_up_events(self, destination: str, after: int, limit: int
                              ) -> list[tuple[str, int]]:
        """(event ID, stream ordering) of the rooms whose latest PDU for ``destination``
        is newer than ``after``, oldest first."""
        rows = await self.db.fetchall(
            "SELECT event_id, stream_ordering FROM federation_destination_rooms"
            " WHERE destination = ? AND stream_ordering > ? ORDER BY stream_ordering LIMIT ?",
            destination, after, limit)
        return [(r[0], int(r[1])) for r in rows]

    # -- outbound device-list stream IDs ------------------------------------------------------

    async def get_device_list_id(self, user_id: str) -> int | None:
        value = await self.db.fetchval(
            "SELECT last_id FROM device_list_outbound_ids WHERE user_id = ?", user_id)
        return None if value is None else int(value)

    async def set_device_list_id(self, user_id: str, last_id: int) -> None:
        await self.db.execute(
            "INSERT INTO device_list_outbound_ids (user_id, last_id) VALUES (?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET last_id = excluded.last_id",
            user_id, last_id)

    # -- reads of other areas the sender needs ------------------------------------------------

    async def servers_in_rooms(self, room_ids: Collection[str]) -> dict[str, set[str]]:
        """room -> server names of its joined members (from current state)."""
        out: dict[str, set[str]] = {r: set() for r in room_ids}
        for part in chunks(sorted(out)):
            rows = await self.db.fetchall(
                "SELECT room_id, state_key FROM current_state WHERE type = 'm.room.member'"
                f" AND membership = 'join' AND room_id IN ({qmarks(part)})", *part)
            for room_id, user_id in rows:
                out[room_id].add(user_id.split(":", 1)[1])
        return out

    async def servers_sharing_rooms_with(self, user_id: str) -> set[str]:
        """Servers with a member joined to a room ``user_id`` is joined to."""
        rows = await self.db.fetchall(
            "SELECT DISTINCT m.state_key FROM current_state m JOIN current_state u"
            " ON u.room_id = m.room_id WHERE u.type = 'm.room.member' AND u.state_key = ?"
            " AND u.membership = 'join' AND m.type = 'm.room.member'"
            " AND m.membership = 'join'", user_id)
        return {r[0].split(":", 1)[1] for r in rows}

    async def is_joined(self, room_id: str, user_id: str) -> bool:
        value = await self.db.fetchval(
            "SELECT 1 FROM current_state WHERE room_id = ? AND type = 'm.room.member'"
            " AND state_key = ? AND membership = 'join'", room_id, user_id)
        return value is not None

    async def outbox_destinations(self, after: int) -> list[tuple[str, int]]:
        """Destinations with to-device EDUs queued after position ``after`` and the newest."""
        rows = await self.db.fetchall(
            "SELECT destination, MAX(stream_id) FROM device_federation_outbox"
            " WHERE stream_id > ? GROUP BY destination", after)
        return [(r[0], int(r[1])) for r in rows]

    async def device_list_rows(self, position: int) -> list[tuple[str, str]]:
        """(user, device) changes at one device_lists position that every watcher sees."""
        rows = await self.db.fetchall(
            "SELECT user_id, device_id FROM device_lists_stream WHERE stream_id = ?"
            " AND observer IS NULL", position)
        return [(r[0], r[1]) for r in rows]

    async def device_exists(self, user_id: str, device_id: str) -> bool:
        value = await self.db.fetchval(
            "SELECT 1 FROM devices WHERE user_id = ? AND device_id = ?", user_id, device_id)
        return value is not None


class RemoteDevicesStore:
    """Device lists of remote users, kept current from EDUs and resyncs."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get_stream_id(self, user_id: str) -> int | None:
        value = await self.db.fetchval(
            "SELECT stream_id FROM remote_device_lists WHERE user_id = ?", user_id)
        return None if value is None else int(value)

    async def update_device(self, user_id: str, stream_id: int, device_id: str,
                            keys: dict[str, Any] | None, display_name: str | None,
                            deleted: bool) -> None:
        """Apply one incremental ``m.device_list_update``."""
        async with self.db.transaction() as txn:
            if deleted:
                await txn.execute("DELETE FROM remote_devices WHERE user_id = ?"
                                  " AND device_id = ?", user_id, device_id)
            else:
                await txn.execute(
                    "INSERT INTO remote_devices (user_id, device_id, keys_json, display_name)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (user_id, device_id) DO UPDATE SET"
                    " keys_json = COALESCE(excluded.keys_json, remote_devices.keys_json),"
                    " display_name = excluded.display_name",
                    user_id, device_id, None if keys is None else orjson.dumps(keys).decode(),
                    display_name)
            await self._set_stream_id(txn, user_id, stream_id)

    async def replace_all(self, user_id: str, stream_id: int,
                          devices: Sequence[tuple[str, dict[str, Any] | None, str | None]],
                          cross_signing: dict[str, dict[str, Any]]) -> None:
        """A full resync: the devices (id, keys, display name) and cross-signing keys."""
        async with self.db.transaction() as txn:
            await txn.execute("DELETE FROM remote_devices WHERE user_id = ?", user_id)
            if devices:
                await txn.executemany(
                    "INSERT INTO remote_devices (user_id, device_id, keys_json, display_name)"
                    " VALUES (?, ?, ?, ?)",
                    [(user_id, d, None if k is None else orjson.dumps(k).decode(), n)
                     for d, k, n in devices])
            await self._set_cross_signing(txn, user_id, cross_signing)
            await self._set_stream_id(txn, user_id, stream_id)

    async def set_cross_signing(self, user_id: str, keys: dict[str, dict[str, Any]]) -> None:
        async with self.db.transaction() as txn:
            await self._set_cross_signing(txn, user_id, keys)

    @staticmethod
    async def _set_cross_signing(txn: Any, user_id: str, keys: dict[str, dict[str, Any]]
                                 ) -> None:
        if keys:
            await txn.executemany(
                "INSERT INTO remote_cross_signing_keys (user_id, keytype, key_json)"
                " VALUES (?, ?, ?) ON CONFLICT (user_id, keytype) DO UPDATE SET"
                " key_json = excluded.key_json",
                [(user_id, kt, orjson.dumps(k).decode()) for kt, k in sorted(keys.items())])

    @staticmethod
    async def _set_stream_id(txn: Any, user_id: str, stream_id: int) -> None:
        await txn.execute(
            "INSERT INTO remote_device_lists (user_id, stream_id) VALUES (?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET stream_id = excluded.stream_id",
            user_id, stream_id)

    async def get_devices(self, user_id: str) -> dict[str, tuple[dict[str, Any] | None,
                                                                str | None]]:
        rows = await self.db.fetchall(
            "SELECT device_id, keys_json, display_name FROM remote_devices WHERE user_id = ?",
            user_id)
        return {r[0]: (None if r[1] is None else orjson.loads(r[1]), r[2]) for r in rows}

    async def get_cross_signing(self, user_id: str) -> dict[str, dict[str, Any]]:
        rows = await self.db.fetchall(
            "SELECT keytype, key_json FROM remote_cross_signing_keys WHERE user_id = ?",
            user_id)
        return {r[0]: orjson.loads(r[1]) for r in rows}


__all__ = ["DestinationHealth", "FederationSenderStore", "RemoteDevicesStore"]
