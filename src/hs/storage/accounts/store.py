"""SQL for the accounts area, written once with ``?`` placeholders for SQLite and PostgreSQL.

Multi-row changes (registration, device deletion, deactivation) run in one transaction so a
crash never leaves a user without a device, or a token without its device.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import orjson

from hs.storage.database import Database, UniqueViolation
from hs.storage.events.cache import LruCache

P = ParamSpec("P")
T = TypeVar("T")


class UserExistsError(Exception):
    """The user ID is already registered."""


@dataclass(frozen=True)
class UserRow:
    user_id: str
    password_hash: str | None
    creation_ts: int
    is_guest: bool
    admin: bool
    deactivated: bool
    user_type: str | None


@dataclass(frozen=True)
class TokenInfo:
    """What an access token grants: the user, the device, and its lifetime."""

    token_hash: str
    user_id: str
    device_id: str
    valid_until_ms: int | None
    refresh_token_hash: str | None
    used: bool
    is_guest: bool
    admin: bool
    deactivated: bool


@dataclass(frozen=True)
class DeviceRow:
    user_id: str
    device_id: str
    display_name: str | None
    last_seen_ts: int | None
    last_seen_ip: str | None


@dataclass(frozen=True)
class RefreshTokenRow:
    token_hash: str
    user_id: str
    device_id: str
    expiry_ts: int | None
    next_token_hash: str | None


@dataclass(frozen=True)
class UISession:
    session_id: str
    creation_ts: int
    uri: str
    method: str
    description: str
    user_id: str | None
    clientdict: dict[str, Any]


@dataclass(frozen=True)
class RegistrationToken:
    token: str
    uses_allowed: int | None
    pending: int
    completed: int
    expiry_time: int | None

    def to_json(self) -> dict[str, Any]:
        return {"token": self.token, "uses_allowed": self.uses_allowed, "pending": self.pending,
                "completed": self.completed, "expiry_time": self.expiry_time}


_USER_COLS = "user_id, password_hash, creation_ts, is_guest, admin, deactivated, user_type"


def _user(row: tuple[Any, ...]) -> UserRow:
    return UserRow(row[0], row[1], int(row[2]), bool(row[3]), bool(row[4]), bool(row[5]), row[6])


def _drops_tokens(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """A write that can end a token's validity or change what it grants: the token cache
    is emptied once it is done (committed or not)."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        finally:
            store = args[0]
            assert isinstance(store, AccountStore)
            store._forget_tokens()

    return wrapper


class AccountStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        #: token hash -> what it grants. Read on every authenticated request; every write
        #: that deletes a token or changes its user's flags empties it (``_drops_tokens``),
        #: and a read that raced such a write is not kept. Per process: a worker split
        #: must also empty it on other workers' logouts.
        self._tokens: LruCache[str, TokenInfo] = LruCache(50_000)
        self._token_writes = 0

    def _forget_tokens(self) -> None:
        self._token_writes += 1
        self._tokens.clear()

    # -- users ---------------------------------------------------------------------------

    async def register_user(self, user_id: str, password_hash: str | None, now_ms: int, *,
                            is_guest: bool = False, admin: bool = False,
                            user_type: str | None = None, displayname: str | None = None,
                            registration_token: str | None = None) -> None:
        """Create the user (and its initial displayname) atomically.

        A ``registration_token`` is consumed in the same transaction; if it has run out the
        whole registration is rolled back with ``ValueError``.
        """
        try:
            async with self.db.transaction() as txn:
                await txn.execute(
                    "INSERT INTO users (user_id, password_hash, creation_ts, is_guest, admin,"
                    " user_type) VALUES (?, ?, ?, ?, ?, ?)",
                    user_id, password_hash, now_ms, int(is_guest), int(admin), user_type)
                if displayname is not None:
                    await txn.execute(
                        "INSERT INTO profiles (user_id, field, value_json) VALUES (?, ?, ?)",
                        user_id, "displayname", orjson.dumps(displayname).decode())
                if registration_token is not None:
                    used = await txn.execute(
                        "UPDATE registration_tokens SET completed = completed + 1"
                        " WHERE token = ? AND (uses_allowed IS NULL OR completed < uses_allowed)"
                        " AND (expiry_time IS NULL OR expiry_time > ?)",
                        registration_token, now_ms)
                    if used != 1:
                        raise ValueError("registration token is no longer valid")
        except UniqueViolation:
            raise UserExistsError(user_id) from None

    async def get_user(self, user_id: str) -> UserRow | None:
        row = await self.db.fetchone(f"SELECT {_USER_COLS} FROM users WHERE user_id = ?", user_id)
        return _user(row) if row else None

    async def find_user(self, user_id: str) -> UserRow | None:
        """Exact match first, then case-insensitive (older servers allowed capitals)."""
        user = await self.get_user(user_id)
        if user is not None:
            return user
        rows = await self.db.fetchall(
            f"SELECT {_USER_COLS} FROM users WHERE LOWER(user_id) = ?", user_id.lower())
        return _user(rows[0]) if len(rows) == 1 else None

    async def set_password_hash(self, user_id: str, password_hash: str | None) -> None:
        await self.db.execute("UPDATE users SET password_hash = ? WHERE user_id = ?",
                              password_hash, user_id)

    @_drops_tokens
    async def set_admin(self, user_id: str, admin: bool) -> None:
        await self.db.execute("UPDATE users SET admin = ? WHERE user_id = ?", int(admin), user_id)

    @_drops_tokens
    async def deactivate_user(self, user_id: str) -> None:
        """Mark deactivated, drop the password, devices, tokens and profile in one go."""
        async with self.db.transaction() as txn:
            await txn.execute("UPDATE users SET deactivated = 1, password_hash = NULL"
                              " WHERE user_id = ?", user_id)
            for table in ("access_tokens", "refresh_tokens", "devices", "profiles",
                          "login_tokens"):
                await txn.execute(f"DELETE FROM {table} WHERE user_id = ?", user_id)

    async def count_users(self) -> int:
        return int(await self.db.fetchval("SELECT COUNT(*) FROM users") or 0)

    # -- devices -------------------------------------------------------------------------

    async def ensure_device(self, user_id: str, device_id: str, display_name: str | None,
                            now_ms: int) -> None:
        """Create the device if new; an existing device keeps its name (spec: re-login)."""
        await self.db.execute(
            "INSERT INTO devices (user_id, device_id, display_name, created_ts)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (user_id, device_id) DO NOTHING",
            user_id, device_id, display_name, now_ms)

    async def get_device(self, user_id: str, device_id: str) -> DeviceRow | None:
        row = await self.db.fetchone(
            "SELECT user_id, device_id, display_name, last_seen_ts, last_seen_ip FROM devices"
            " WHERE user_id = ? AND device_id = ?", user_id, device_id)
        return DeviceRow(*row) if row else None

    async def list_devices(self, user_id: str) -> list[DeviceRow]:
        rows = await self.db.fetchall(
            "SELECT user_id, device_id, display_name, last_seen_ts, last_seen_ip FROM devices"
            " WHERE user_id = ? ORDER BY device_id", user_id)
        return [DeviceRow(*row) for row in rows]

    async def set_device_display_name(self, user_id: str, device_id: str,
                                      display_name: str) -> bool:
        count = await self.db.execute(
            "UPDATE devices SET display_name = ? WHERE user_id = ? AND device_id = ?",
            display_name, user_id, device_id)
        return count > 0

    async def record_device_seen(self, user_id: str, device_id: str, ip: str | None,
                                 now_ms: int) -> None:
        await self.db.execute(
            "UPDATE devices SET last_seen_ts = ?, last_seen_ip = ? WHERE user_id = ?"
            " AND device_id = ?", now_ms, ip, user_id, device_id)

    @_drops_tokens
    async def delete_devices(self, user_id: str, device_ids: list[str]) -> None:
        """Delete devices with all their access and refresh tokens."""
        async with self.db.transaction() as txn:
            for device_id in device_ids:
                for table in ("access_tokens", "refresh_tokens", "devices"):
                    await txn.execute(f"DELETE FROM {table} WHERE user_id = ? AND device_id = ?",
                                      user_id, device_id)

    @_drops_tokens
    async def delete_device_tokens(self, user_id: str, device_id: str) -> None:
        """Invalidate a device's tokens but keep the device (login re-using a device ID)."""
        async with self.db.transaction() as txn:
            for table in ("access_tokens", "refresh_tokens"):
                await txn.execute(f"DELETE FROM {table} WHERE user_id = ? AND device_id = ?",
                                  user_id, device_id)

    # -- access / refresh tokens ---------------------------------------------------------

    async def add_access_token(self, token_hash: str, user_id: str, device_id: str, now_ms: int,
                               valid_until_ms: int | None = None,
                               refresh_token_hash: str | None = None) -> None:
        await self.db.execute(
            "INSERT INTO access_tokens (token_hash, user_id, device_id, created_ts,"
            " valid_until_ms, refresh_token_hash) VALUES (?, ?, ?, ?, ?, ?)",
            token_hash, user_id, device_id, now_ms, valid_until_ms, refresh_token_hash)

    async def get_access_token(self, token_hash: str) -> TokenInfo | None:
        hit = self._tokens.get(token_hash)
        if hit is not None:
            return hit
        writes = self._token_writes
        info = await self._read_access_token(token_hash)
        if info is not None and writes == self._token_writes:
            self._tokens.set(token_hash, info)
        return info

    async def _read_access_token(self, token_hash: str) -> TokenInfo | None:
        row = await self.db.fetchone(
            "SELECT t.token_hash, t.user_id, t.device_id, t.valid_until_ms, t.refresh_token_hash,"
            " t.used, u.is_guest, u.admin, u.deactivated FROM access_tokens t"
            " JOIN users u ON u.user_id = t.user_id WHERE t.token_hash = ?", token_hash)
        if row is None:
            return None
        return TokenInfo(row[0], row[1], row[2], row[3], row[4], bool(row[5]), bool(row[6]),
                         bool(row[7]), bool(row[8]))

    @_drops_tokens
    async def mark_access_token_used(self, token_hash: str, refresh_token_hash: str) -> None:
        """First use of a refreshed token: the refresh token it replaced is now revoked."""
        async with self.db.transaction() as txn:
            await txn.execute("UPDATE access_tokens SET used = 1 WHERE token_hash = ?",
                              token_hash)
            await self._revoke_predecessors(txn, refresh_token_hash)

    @staticmethod
    async def _revoke_predecessors(txn: Any, refresh_token_hash: str) -> None:
        old = await txn.fetchall("SELECT token_hash FROM refresh_tokens WHERE next_token_hash = ?",
                                 refresh_token_hash)
        for (old_hash,) in old:
            await txn.execute("DELETE FROM access_tokens WHERE refresh_token_hash = ?", old_hash)
            await txn.execute("DELETE FROM refresh_tokens WHERE token_hash = ?", old_hash)

    @_drops_tokens
    async def delete_access_token(self, token_hash: str) -> None:
        await self.db.execute("DELETE FROM access_tokens WHERE token_hash = ?", token_hash)

    async def delete_other_sessions(self, user_id: str, keep_device_id: str | None) -> list[str]:
        """Delete every device except ``keep_device_id`` (with tokens); returns those deleted."""
        rows = await self.db.fetchall("SELECT device_id FROM devices WHERE user_id = ?", user_id)
        doomed = [r[0] for r in rows if r[0] != keep_device_id]
        await self.delete_devices(user_id, doomed)
        return doomed

    async def add_refresh_token(self, token_hash: str, user_id: str, device_id: str, now_ms: int,
                                expiry_ts: int | None) -> None:
        await self.db.execute(
            "INSERT INTO refresh_tokens (token_hash, user_id, device_id, created_ts, expiry_ts)"
            " VALUES (?, ?, ?, ?, ?)", token_hash, user_id, device_id, now_ms, expiry_ts)

    async def get_refresh_token(self, token_hash: str) -> RefreshTokenRow | None:
        row = await self.db.fetchone(
            "SELECT token_hash, user_id, device_id, expiry_ts, next_token_hash FROM refresh_tokens"
            " WHERE token_hash = ?", token_hash)
        return RefreshTokenRow(*row) if row else None

    @_drops_tokens
    async def rotate_refresh_token(self, old: RefreshTokenRow, new_refresh_hash: str,
                                   new_access_hash: str, now_ms: int,
                                   refresh_expiry_ts: int | None,
                                   access_valid_until_ms: int | None) -> None:
        """Issue a new pair for ``old``; ``old`` stays valid until the new pair is used."""
        async with self.db.transaction() as txn:
            if old.next_token_hash is not None:
                # A retried refresh: the unused pair issued last time is discarded.
                await txn.execute("DELETE FROM access_tokens WHERE refresh_token_hash = ?",
                                  old.next_token_hash)
                await txn.execute("DELETE FROM refresh_tokens WHERE token_hash = ?",
                                  old.next_token_hash)
            await txn.execute(
                "INSERT INTO refresh_tokens (token_hash, user_id, device_id, created_ts,"
                " expiry_ts) VALUES (?, ?, ?, ?, ?)",
                new_refresh_hash, old.user_id, old.device_id, now_ms, refresh_expiry_ts)
            await txn.execute(
                "INSERT INTO access_tokens (token_hash, user_id, device_id, created_ts,"
                " valid_until_ms, refresh_token_hash) VALUES (?, ?, ?, ?, ?, ?)",
                new_access_hash, old.user_id, old.device_id, now_ms, access_valid_until_ms,
                new_refresh_hash)
            await txn.execute("UPDATE refresh_tokens SET next_token_hash = ? WHERE token_hash = ?",
                              new_refresh_hash, old.token_hash)
            # Using this refresh token proves the pair that preceded it is no longer needed.
            await self._revoke_predecessors(txn, old.token_hash)

    # -- login tokens --------------------------------------------------------------------

    async def add_login_token(self, token_hash: str, user_id: str, expiry_ts: int) -> None:
        await self.db.execute(
            "INSERT INTO login_tokens (token_hash, user_id, expiry_ts) VALUES (?, ?, ?)",
            token_hash, user_id, expiry_ts)

    async def consume_login_token(self, token_hash: str, now_ms: int) -> str | None:
        """Single use: returns the user ID only for the first, unexpired redemption."""
        async with self.db.transaction() as txn:
            count = await txn.execute(
                "UPDATE login_tokens SET used_ts = ? WHERE token_hash = ? AND used_ts IS NULL"
                " AND expiry_ts > ?", now_ms, token_hash, now_ms)
            if count != 1:
                return None
            user_id = await txn.fetchval(
                "SELECT user_id FROM login_tokens WHERE token_hash = ?", token_hash)
            return str(user_id) if user_id is not None else None

    # -- profiles ------------------------------------------------------------------------

    async def get_profile(self, user_id: str) -> dict[str, Any]:
        rows = await self.db.fetchall("SELECT field, value_json FROM profiles WHERE user_id = ?",
                                      user_id)
        return {field: orjson.loads(value) for field, value in rows}

    async def set_profile_field(self, user_id: str, field: str, value: Any) -> None:
        await self.db.execute(
            "INSERT INTO profiles (user_id, field, value_json) VALUES (?, ?, ?)"
            " ON CONFLICT (user_id, field) DO UPDATE SET value_json = excluded.value_json",
            user_id, field, orjson.dumps(value).decode())

    async def delete_profile_field(self, user_id: str, field: str) -> None:
        await self.db.execute("DELETE FROM profiles WHERE user_id = ? AND field = ?",
                              user_id, field)

    # -- user-interactive auth -----------------------------------------------------------

    async def create_ui_session(self, session: UISession) -> None:
        await self.db.execute(
            "INSERT INTO ui_auth_sessions (session_id, creation_ts, uri, method, description,"
            " user_id, clientdict_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
            session.session_id, session.creation_ts, session.uri, session.method,
            session.description, session.user_id, orjson.dumps(session.clientdict).decode())

    async def get_ui_session(self, session_id: str) -> UISession | None:
        row = await self.db.fetchone(
            "SELECT session_id, creation_ts, uri, method, description, user_id, clientdict_json"
            " FROM ui_auth_sessions WHERE session_id = ?", session_id)
        if row is None:
            return None
        return UISession(row[0], int(row[1]), row[2], row[3], row[4], row[5], orjson.loads(row[6]))

    async def mark_ui_stage_complete(self, session_id: str, stage: str, result: Any) -> None:
        await self.db.execute(
            "INSERT INTO ui_auth_completed (session_id, stage_type, result_json) VALUES (?, ?, ?)"
            " ON CONFLICT (session_id, stage_type) DO NOTHING",
            session_id, stage, orjson.dumps(result).decode())

    async def get_ui_completed(self, session_id: str) -> dict[str, Any]:
        rows = await self.db.fetchall(
            "SELECT stage_type, result_json FROM ui_auth_completed WHERE session_id = ?",
            session_id)
        return {stage: orjson.loads(result) for stage, result in rows}

    async def delete_ui_session(self, session_id: str) -> None:
        async with self.db.transaction() as txn:
            await txn.execute("DELETE FROM ui_auth_completed WHERE session_id = ?", session_id)
            await txn.execute("DELETE FROM ui_auth_sessions WHERE session_id = ?", session_id)

    async def delete_expired_ui_sessions(self, before_ts: int) -> None:
        async with self.db.transaction() as txn:
            await txn.execute(
                "DELETE FROM ui_auth_completed WHERE session_id IN"
                " (SELECT session_id FROM ui_auth_sessions WHERE creation_ts < ?)", before_ts)
            await txn.execute("DELETE FROM ui_auth_sessions WHERE creation_ts < ?", before_ts)

    # -- registration tokens -------------------------------------------------------------

    async def create_registration_token(self, token: RegistrationToken) -> bool:
        try:
            await self.db.execute(
                "INSERT INTO registration_tokens (token, uses_allowed, pending, completed,"
                " expiry_time) VALUES (?, ?, 0, 0, ?)",
                token.token, token.uses_allowed, token.expiry_time)
        except UniqueViolation:
            return False
        return True

    async def get_registration_token(self, token: str) -> RegistrationToken | None:
        row = await self.db.fetchone(
            "SELECT token, uses_allowed, pending, completed, expiry_time FROM registration_tokens"
            " WHERE token = ?", token)
        return RegistrationToken(*row) if row else None

    async def list_registration_tokens(self) -> list[RegistrationToken]:
        rows = await self.db.fetchall(
            "SELECT token, uses_allowed, pending, completed, expiry_time FROM registration_tokens"
            " ORDER BY token")
        return [RegistrationToken(*row) for row in rows]

    async def delete_registration_token(self, token: str) -> bool:
        return await self.db.execute("DELETE FROM registration_tokens WHERE token = ?", token) > 0
