"""SQL for end-to-end encryption keys, signatures and the device-list change stream.

Key objects are stored as canonical JSON text, so "is this the same key?" is a string
comparison and responses echo exactly what the client signed. Every read takes a batch of
users/devices; nothing here loops over single-row queries.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from hs.storage.database import Database, Queryable, placeholders
from hs.storage.events.cache import LruCache

#: IN lists are split into chunks of this many values (SQLite's variable limit is 32766).
_CHUNK = 500
MEMBER = "m.room.member"
#: Users joined to a room the user (first ?) is joined to; the user included.
_SHARING_SQL = (
    "SELECT o.state_key FROM current_state m JOIN current_state o ON o.room_id = m.room_id"
    " WHERE m.type = 'm.room.member' AND m.state_key = ? AND m.membership = 'join'"
    " AND o.type = 'm.room.member' AND o.membership = 'join'"
)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _load(text: str) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(text)
    return value


@dataclass(frozen=True, slots=True)
class DeviceKeysRow:
    user_id: str
    device_id: str
    keys: dict[str, Any]
    display_name: str | None


@dataclass(frozen=True, slots=True)
class SignatureRow:
    signer_user_id: str
    signer_key_id: str
    target_user_id: str
    target_key_id: str
    signature: str


@dataclass(frozen=True, slots=True)
class MembershipChange:
    """The last membership change of ``user_id`` in ``room_id`` within a stream range."""

    room_id: str
    user_id: str
    membership: str | None


#: (user_id, device_id, algorithm) of a claim, and what was claimed: (key ID, key JSON).
ClaimRequest = tuple[str, str, str]
Claimed = tuple[str, Any]


class E2EStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        #: (user, device) -> (one-time key counts, unused fallback algorithms). Every
        #: ``/sync`` answer carries both, so they are read per request; they change only
        #: through this store's writes (upload, claim, device deletion), which drop the
        #: entry. Per process: a worker split must also drop it on other workers' claims.
        self._counts: LruCache[tuple[str, str], tuple[dict[str, int], list[str]]] = (
            LruCache(50_000))
        #: Bumped by every invalidation; a read that raced one is not cached.
        self._count_writes = 0

    def _forget_counts(self, keys: Iterable[tuple[str, str]]) -> None:
        self._count_writes += 1
        self._counts.invalidate(keys)

    async def _key_counts(self, user_id: str, device_id: str
                          ) -> tuple[dict[str, int], list[str]]:
        key = (user_id, device_id)
        hit = self._counts.get(key)
        if hit is not None:
            return hit
        writes = self._count_writes
        rows = await self.db.fetchall(
            "SELECT algorithm, COUNT(*) FROM e2e_one_time_keys"
            " WHERE user_id = ? AND device_id = ? GROUP BY algorithm", user_id, device_id)
        fallback = await self.db.fetchall(
            "SELECT algorithm FROM e2e_fallback_keys WHERE user_id = ? AND device_id = ?"
            " AND used = ? ORDER BY algorithm", user_id, device_id, False)
        value = ({r[0]: int(r[1]) for r in rows}, [r[0] for r in fallback])
        if writes == self._count_writes:
            self._counts.set(key, value)
        return value

    # -- device keys ------------------------------------------------------------------------

    async def get_device_keys(self, user_ids: Collection[str]) -> list[DeviceKeysRow]:
        """Uploaded device keys of these users' existing devices, with display names."""
        users = sorted(set(user_ids))
        out: list[DeviceKeysRow] = []
        for part in _chunks(users):
            rows = await self.db.fetchall(
                "SELECT k.user_id, k.device_id, k.key_json, d.display_name"
                " FROM e2e_device_keys k JOIN devices d"
                " ON d.user_id = k.user_id AND d.device_id = k.device_id"
                f" WHERE k.user_id IN ({placeholders(len(part))})", *part)
            out.extend(DeviceKeysRow(r[0], r[1], _load(r[2]), r[3]) for r in rows)
        return out

    async def get_device_keys_json(self, user_id: str) -> dict[str, str]:
        """device_id -> stored canonical key JSON for one user."""
        rows = await self.db.fetchall(
            "SELECT device_id, key_json FROM e2e_device_keys WHERE user_id = ?", user_id)
        return {r[0]: r[1] for r in rows}

    async def set_device_keys(self, user_id: str, device_id: str, key_json: str,
                              ts: int) -> bool:
        """Store the device's keys; False when the identical keys were already stored."""
        async with self.db.transaction() as txn:
            old = await txn.fetchval(
                "SELECT key_json FROM e2e_device_keys WHERE user_id = ? AND device_id = ?",
                user_id, device_id)
            if old == key_json:
                return False
            await txn.execute(
                "INSERT INTO e2e_device_keys (user_id, device_id, key_json, ts)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (user_id, device_id)"
                " DO UPDATE SET key_json = excluded.key_json, ts = excluded.ts",
                user_id, device_id, key_json, ts)
        return True

    # -- one-time and fallback keys ---------------------------------------------------------

    async def add_one_time_keys(self, user_id: str, device_id: str,
                                keys: Sequence[tuple[str, str, str]]) -> list[tuple[str, str]]:
        """Insert (algorithm, key_id, canonical JSON) keys; re-uploads of the same key are
        no-ops. Returns the (algorithm, key_id) whose stored JSON differs (the caller's 400)
        - in that case nothing is written."""
        if not keys:
            return []
        try:
            return await self._add_one_time_keys(user_id, device_id, keys)
        finally:
            self._forget_counts([(user_id, device_id)])

    async def _add_one_time_keys(self, user_id: str, device_id: str,
                                 keys: Sequence[tuple[str, str, str]]) -> list[tuple[str, str]]:
        async with self.db.transaction() as txn:
            existing: dict[tuple[str, str], str] = {}
            for part in _chunks(list(keys), 300):
                rows = await txn.fetchall(
                    "SELECT algorithm, key_id, key_json FROM e2e_one_time_keys"
                    " WHERE user_id = ? AND device_id = ? AND (algorithm, key_id) IN"
                    f" (VALUES {', '.join(['(?, ?)'] * len(part))})",
                    user_id, device_id, *[v for alg, kid, _ in part for v in (alg, kid)])
                existing.update({(r[0], r[1]): r[2] for r in rows})
            conflicts = [(alg, kid) for alg, kid, js in keys
                         if (alg, kid) in existing and existing[(alg, kid)] != js]
            if conflicts:
                return conflicts
            seq = int(await txn.fetchval(
                "SELECT COALESCE(MAX(upload_seq), 0) + 1 FROM e2e_one_time_keys"
                " WHERE user_id = ? AND device_id = ?", user_id, device_id))
            await txn.executemany(
                "INSERT INTO e2e_one_time_keys"
                " (user_id, device_id, algorithm, key_id, key_json, upload_seq)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(user_id, device_id, alg, kid, js, seq) for alg, kid, js in keys
                 if (alg, kid) not in existing])
        return []

    async def count_one_time_keys(self, user_id: str, device_id: str) -> dict[str, int]:
        return dict((await self._key_counts(user_id, device_id))[0])

    async def set_fallback_keys(self, user_id: str, device_id: str,
                                keys: Sequence[tuple[str, str, str]]) -> None:
        """Replace the fallback key per algorithm; re-uploading the same key keeps its
        ``used`` flag, a different key starts unused."""
        await self.db.executemany(
            "INSERT INTO e2e_fallback_keys (user_id, device_id, algorithm, key_id, key_json,"
            " used) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (user_id, device_id, algorithm)"
            " DO UPDATE SET key_id = excluded.key_id, key_json = excluded.key_json,"
            " used = CASE WHEN e2e_fallback_keys.key_id = excluded.key_id"
            " AND e2e_fallback_keys.key_json = excluded.key_json"
            " THEN e2e_fallback_keys.used ELSE excluded.used END",
            [(user_id, device_id, alg, kid, js, False) for alg, kid, js in keys])
        self._forget_counts([(user_id, device_id)])

    async def unused_fallback_key_types(self, user_id: str, device_id: str) -> list[str]:
        return list((await self._key_counts(user_id, device_id))[1])

    async def claim_keys(self, requests: Sequence[ClaimRequest]) -> dict[ClaimRequest, Claimed]:
        """One key per request: the oldest one-time key (deleted, so never handed out
        twice), else the fallback key (kept, marked used). Requests with neither are absent.

        Concurrency: the DELETE ... RETURNING is what hands a key out, and a row can be
        deleted once. Under PostgreSQL's READ COMMITTED a claim racing another for the same
        row deletes nothing; such requests are retried while one-time keys remain, so a
        device is not served its fallback key while it still has one-time keys.
        """
        pending = list(dict.fromkeys(requests))
        try:
            return await self._claim(pending)
        finally:
            self._forget_counts({(u, d) for u, d, _ in pending})

    async def _claim(self, pending: list[ClaimRequest]) -> dict[ClaimRequest, Claimed]:
        out: dict[ClaimRequest, Claimed] = {}
        for _attempt in range(10):
            if not pending:
                break
            for part in _chunks(pending, 300):
                out.update(await self._delete_oldest(part))
            unserved = [r for r in pending if r not in out]
            remaining = await self._have_one_time_keys(unserved)
            pending = [r for r in unserved if r in remaining]
            fallback_for = [r for r in unserved if r not in remaining]
            for part in _chunks(fallback_for, 300):
                out.update(await self._use_fallback(part))
        return out

    @staticmethod
    def _values(part: Sequence[ClaimRequest]) -> tuple[str, list[str]]:
        return (", ".join(["(?, ?, ?)"] * len(part)), [v for req in part for v in req])

    async def _delete_oldest(self, part: Sequence[ClaimRequest]) -> dict[ClaimRequest, Claimed]:
        values, args = self._values(part)
        rows = await self.db.fetchall(
            "DELETE FROM e2e_one_time_keys WHERE (user_id, device_id, algorithm, key_id) IN ("
            " SELECT user_id, device_id, algorithm, key_id FROM ("
            "  SELECT user_id, device_id, algorithm, key_id, ROW_NUMBER() OVER ("
            "   PARTITION BY user_id, device_id, algorithm ORDER BY upload_seq, key_id) AS rn"
            "  FROM e2e_one_time_keys"
            f"  WHERE (user_id, device_id, algorithm) IN (VALUES {values})"
            " ) ranked WHERE rn = 1)"
            " RETURNING user_id, device_id, algorithm, key_id, key_json", *args)
        return {(r[0], r[1], r[2]): (r[3], orjson.loads(r[4])) for r in rows}

    async def _have_one_time_keys(self, reqs: Sequence[ClaimRequest]) -> set[ClaimRequest]:
        found: set[ClaimRequest] = set()
        for part in _chunks(reqs, 300):
            values, args = self._values(part)
            rows = await self.db.fetchall(
                "SELECT DISTINCT user_id, device_id, algorithm FROM e2e_one_time_keys"
                f" WHERE (user_id, device_id, algorithm) IN (VALUES {values})", *args)
            found.update((r[0], r[1], r[2]) for r in rows)
        return found

    async def _use_fallback(self, part: Sequence[ClaimRequest]) -> dict[ClaimRequest, Claimed]:
        values, args = self._values(part)
        rows = await self.db.fetchall(
            "UPDATE e2e_fallback_keys SET used = ?"
            f" WHERE (user_id, device_id, algorithm) IN (VALUES {values})"
            " RETURNING user_id, device_id, algorithm, key_id, key_json", True, *args)
        return {(r[0], r[1], r[2]): (r[3], orjson.loads(r[4])) for r in rows}

    # -- cross-signing ----------------------------------------------------------------------

    async def get_cross_signing_keys(self, user_ids: Collection[str]
                                     ) -> dict[str, dict[str, dict[str, Any]]]:
        """user -> keytype -> key object."""
        users = sorted(set(user_ids))
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for part in _chunks(users):
            rows = await self.db.fetchall(
                "SELECT user_id, keytype, key_json FROM e2e_cross_signing_keys"
                f" WHERE user_id IN ({placeholders(len(part))})", *part)
            for user_id, keytype, key_json in rows:
                out.setdefault(user_id, {})[keytype] = _load(key_json)
        return out

    async def get_cross_signing_key_json(self, user_id: str) -> dict[str, str]:
        """keytype -> stored canonical JSON for one user."""
        rows = await self.db.fetchall(
            "SELECT keytype, key_json FROM e2e_cross_signing_keys WHERE user_id = ?", user_id)
        return {r[0]: r[1] for r in rows}

    async def set_cross_signing_keys(self, user_id: str,
                                     keys: dict[str, tuple[str, str]], ts: int) -> None:
        """keytype -> (public key, canonical JSON); replaces the user's current keys of
        those types. A new master key invalidates signatures made with the old keys."""
        async with self.db.transaction() as txn:
            if "master" in keys:
                await txn.execute(
                    "DELETE FROM e2e_cross_signing_signatures WHERE target_user_id = ?"
                    " AND target_key_id IN (SELECT public_key FROM e2e_cross_signing_keys"
                    " WHERE user_id = ? AND keytype = 'master')", user_id, user_id)
            await txn.executemany(
                "INSERT INTO e2e_cross_signing_keys (user_id, keytype, public_key, key_json,"
                " ts) VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, keytype) DO UPDATE SET"
                " public_key = excluded.public_key, key_json = excluded.key_json,"
                " ts = excluded.ts",
                [(user_id, kt, pub, js, ts) for kt, (pub, js) in keys.items()])

    async def add_signatures(self, rows: Sequence[SignatureRow]) -> None:
        await self.db.executemany(
            "INSERT INTO e2e_cross_signing_signatures (signer_user_id, signer_key_id,"
            " target_user_id, target_key_id, signature) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (target_user_id, target_key_id, signer_user_id, signer_key_id)"
            " DO UPDATE SET signature = excluded.signature",
            [(r.signer_user_id, r.signer_key_id, r.target_user_id, r.target_key_id,
              r.signature) for r in rows])

    async def get_signatures(self, target_user_ids: Collection[str]) -> list[SignatureRow]:
        users = sorted(set(target_user_ids))
        out: list[SignatureRow] = []
        for part in _chunks(users):
            rows = await self.db.fetchall(
                "SELECT signer_user_id, signer_key_id, target_user_id, target_key_id,"
                " signature FROM e2e_cross_signing_signatures"
                f" WHERE target_user_id IN ({placeholders(len(part))})", *part)
            out.extend(SignatureRow(*r) for r in rows)
        return out

    # -- device deletion --------------------------------------------------------------------

    async def delete_devices(self, user_id: str, device_ids: Sequence[str]) -> None:
        """Forget every key of these devices and the signatures on or by them."""
        try:
            await self._delete_devices(user_id, device_ids)
        finally:
            self._forget_counts([(user_id, d) for d in device_ids])

    async def _delete_devices(self, user_id: str, device_ids: Sequence[str]) -> None:
        async with self.db.transaction() as txn:
            for part in _chunks(list(device_ids)):
                marks = placeholders(len(part))
                for table in ("e2e_device_keys", "e2e_one_time_keys", "e2e_fallback_keys"):
                    await txn.execute(
                        f"DELETE FROM {table} WHERE user_id = ? AND device_id IN ({marks})",
                        user_id, *part)
                await txn.execute(
                    "DELETE FROM e2e_cross_signing_signatures WHERE target_user_id = ?"
                    f" AND target_key_id IN ({marks})", user_id, *part)
                # ... and the signatures these devices made (on the user's master key).
                await txn.execute(
                    "DELETE FROM e2e_cross_signing_signatures WHERE signer_user_id = ?"
                    f" AND signer_key_id IN ({marks})", user_id,
                    *[f"ed25519:{d}" for d in part])

    # -- device-list stream -----------------------------------------------------------------

    async def add_device_list_changes(self, position: int,
                                      rows: Iterable[tuple[str, str, str | None]],
                                      q: Queryable | None = None) -> None:
        """(user_id, device_id, observer) rows at ``position`` on the device_lists stream."""
        await (q or self.db).executemany(
            "INSERT INTO device_lists_stream (stream_id, user_id, device_id, observer)"
            " VALUES (?, ?, ?, ?)", [(position, u, d, o) for u, d, o in rows])

    async def users_sharing_room(self, user_id: str) -> set[str]:
        """Users joined to a room ``user_id`` is joined to (``user_id`` itself included
        when it is joined anywhere)."""
        rows = await self.db.fetchall(_SHARING_SQL, user_id)
        return {r[0] for r in rows}

    async def changed_users(self, observer: str, from_pos: int, to_pos: int) -> set[str]:
        """Users whose device lists changed in ``(from_pos, to_pos]`` that ``observer``
        should refetch: itself, users it now shares a room with, and rows addressed to it."""
        if to_pos <= from_pos:
            return set()
        rows = await self.db.fetchall(
            "SELECT DISTINCT user_id FROM device_lists_stream"
            " WHERE stream_id > ? AND stream_id <= ? AND (observer = ? OR (observer IS NULL"
            f" AND (user_id = ? OR user_id IN ({_SHARING_SQL}))))",
            from_pos, to_pos, observer, observer, observer)
        return {r[0] for r in rows}

    async def membership_changes(self, user_id: str, from_ordering: int, to_ordering: int
                                 ) -> list[MembershipChange]:
        """Membership changes in ``(from, to]`` (events stream) in rooms where ``user_id``
        has any membership now, oldest first: what "newly share / no longer share a room"
        is computed from."""
        if to_ordering <= from_ordering:
            return []
        rows = await self.db.fetchall(
            "SELECT d.room_id, d.state_key, rm.membership FROM current_state_delta_stream d"
            " LEFT JOIN room_memberships rm ON rm.event_id = d.event_id"
            " WHERE d.type = ? AND d.stream_ordering > ? AND d.stream_ordering <= ?"
            " AND d.room_id IN (SELECT room_id FROM current_state"
            "  WHERE type = ? AND state_key = ?)"
            " ORDER BY d.stream_ordering",
            MEMBER, from_ordering, to_ordering, MEMBER, user_id)
        return [MembershipChange(r[0], r[1], r[2]) for r in rows]

    async def any_membership_change(self, from_ordering: int, to_ordering: int) -> bool:
        """Whether any room's membership state changed in the events range."""
        row = await self.db.fetchone(
            "SELECT 1 FROM current_state_delta_stream WHERE type = ? AND stream_ordering > ?"
            " AND stream_ordering <= ? LIMIT 1", MEMBER, from_ordering, to_ordering)
        return row is not None

    async def joined_members(self, room_ids: Collection[str]) -> set[str]:
        rooms = sorted(set(room_ids))
        out: set[str] = set()
        for part in _chunks(rooms):
            rows = await self.db.fetchall(
                "SELECT state_key FROM current_state WHERE type = ? AND membership = 'join'"
                f" AND room_id IN ({placeholders(len(part))})", MEMBER, *part)
            out.update(r[0] for r in rows)
        return out

    async def joined_rooms(self, user_id: str) -> set[str]:
        rows = await self.db.fetchall(
            "SELECT room_id FROM current_state WHERE type = ? AND state_key = ?"
            " AND membership = 'join'", MEMBER, user_id)
        return {r[0] for r in rows}


__all__ = ["DeviceKeysRow", "E2EStore", "MembershipChange", "SignatureRow"]
