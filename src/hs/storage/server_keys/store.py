"""Persistence for the keyring: verified remote keys and the raw key responses.

Only verified data is written here (the keyring checks signatures first), so readers trust it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hs.storage.database import Database

_CHUNK = 200


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A verified key; ``valid_until`` is when it stops being usable."""

    verify_key: bytes
    valid_until_ts: int
    expired_ts: int | None

    @property
    def valid_until(self) -> int:
        return self.expired_ts if self.expired_ts is not None else self.valid_until_ts


@dataclass(frozen=True, slots=True)
class KeyResponseRow:
    server_name: str
    from_server: str
    valid_until_ts: int
    fetched_ts: int
    key_json: bytes


class ServerKeysStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def store_server_keys(
        self,
        server_name: str,
        from_server: str,
        fetched_ts: int,
        keys: Mapping[str, StoredKey],
        key_json: bytes | None,
        response_valid_until_ts: int,
    ) -> None:
        """Record keys from one verified response (and the response itself) atomically.

        A key's ``valid_until_ts`` only grows (a stale copy from a notary must not shorten
        it) and an ``expired_ts`` once learned is kept.
        """
        async with self.db.transaction() as txn:
            await txn.executemany(
                "INSERT INTO server_signature_keys (server_name, key_id, verify_key,"
                " valid_until_ts, expired_ts, from_server, fetched_ts)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (server_name, key_id) DO UPDATE SET"
                " verify_key = excluded.verify_key,"
                " valid_until_ts = CASE WHEN excluded.valid_until_ts"
                "  > server_signature_keys.valid_until_ts THEN excluded.valid_until_ts"
                "  ELSE server_signature_keys.valid_until_ts END,"
                " expired_ts = COALESCE(excluded.expired_ts, server_signature_keys.expired_ts),"
                " from_server = excluded.from_server, fetched_ts = excluded.fetched_ts",
                [
                    (server_name, kid, k.verify_key, k.valid_until_ts, k.expired_ts,
                     from_server, fetched_ts)
                    for kid, k in keys.items()
                ],
            )
            if key_json is not None:
                await txn.execute(
                    "INSERT INTO server_keys_json (server_name, from_server, valid_until_ts,"
                    " fetched_ts, key_json) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (server_name, from_server) DO UPDATE SET"
                    " valid_until_ts = excluded.valid_until_ts,"
                    " fetched_ts = excluded.fetched_ts, key_json = excluded.key_json",
                    server_name, from_server, response_valid_until_ts, fetched_ts, key_json,
                )

    async def get_keys(self, server_names: Iterable[str]) -> dict[str, dict[str, StoredKey]]:
        """Every stored key of each server: ``{server: {key_id: StoredKey}}``."""
        names = sorted(set(server_names))
        result: dict[str, dict[str, StoredKey]] = {}
        for start in range(0, len(names), _CHUNK):
            chunk = names[start : start + _CHUNK]
            rows = await self.db.fetchall(
                "SELECT server_name, key_id, verify_key, valid_until_ts, expired_ts"
                " FROM server_signature_keys WHERE server_name IN"
                f" ({', '.join('?' * len(chunk))})",
                *chunk,
            )
            for server, kid, key, valid_until, expired in rows:
                result.setdefault(server, {})[kid] = StoredKey(
                    bytes(key), int(valid_until), None if expired is None else int(expired)
                )
        return result

    async def get_key_responses(self, server_name: str) -> list[KeyResponseRow]:
        """Stored key responses for a server, longest-valid first."""
        rows = await self.db.fetchall(
            "SELECT server_name, from_server, valid_until_ts, fetched_ts, key_json"
            " FROM server_keys_json WHERE server_name = ?"
            " ORDER BY valid_until_ts DESC, fetched_ts DESC",
            server_name,
        )
        return [KeyResponseRow(r[0], r[1], int(r[2]), int(r[3]), bytes(r[4])) for r in rows]
