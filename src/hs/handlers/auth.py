"""Access-token authentication and session (access/refresh token) issuance.

Tokens are looked up by their sha256 digest, so no stored secret is ever compared and
a database leak yields no usable tokens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from hs.config import HomeserverConfig
from hs.handlers.tokens import hash_token, new_token
from hs.http.errors import MatrixError, forbidden, missing_token, unknown_token
from hs.http.middleware import USER_ID
from hs.storage.accounts import AccountStore
from hs.storage.accounts.store import RefreshTokenRow

logger = logging.getLogger(__name__)

#: Don't write "last seen" for a device more often than this.
LAST_SEEN_INTERVAL_MS = 5 * 60_000


@dataclass(frozen=True)
class Requester:
    """Who is making an authenticated request."""

    user_id: str
    device_id: str
    is_guest: bool
    admin: bool
    token_hash: str


def bearer_token(request: web.Request) -> str | None:
    """The ``Authorization: Bearer`` token.

    The deprecated ``?access_token=`` query parameter (dropped by the spec in v1.20) is still
    accepted when there is no header, as Synapse does, for older clients and bridges.
    """
    header = request.headers.get("Authorization")
    if header is None:
        return request.query.get("access_token") or None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unknown_token("Invalid Authorization header")
    return token.strip()


class AuthHandler:
    def __init__(self, config: HomeserverConfig, store: AccountStore,
                 clock: Callable[[], int]) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self._last_seen: dict[str, int] = {}

    async def get_requester(self, request: web.Request, *, allow_guest: bool = False
                            ) -> Requester:
        """401 M_MISSING_TOKEN / M_UNKNOWN_TOKEN unless the request carries a live token."""
        requester = await self.get_optional_requester(request, allow_guest=allow_guest)
        if requester is None:
            raise missing_token()
        return requester

    async def get_optional_requester(self, request: web.Request, *, allow_guest: bool = False
                                     ) -> Requester | None:
        token = bearer_token(request)
        if token is None:
            return None
        info = await self.store.get_access_token(hash_token(token))
        if info is None or info.deactivated:
            raise unknown_token()
        now = self.clock()
        if info.valid_until_ms is not None and info.valid_until_ms <= now:
            raise unknown_token("Access token has expired", soft_logout=True)
        if info.is_guest and not allow_guest:
            raise MatrixError(403, "M_GUEST_ACCESS_FORBIDDEN", "Guest access not allowed")
        if info.refresh_token_hash is not None and not info.used:
            await self.store.mark_access_token_used(info.token_hash, info.refresh_token_hash)
        await self._note_seen(info.token_hash, info.user_id, info.device_id, request.remote, now)
        request[USER_ID] = info.user_id
        return Requester(info.user_id, info.device_id, info.is_guest, info.admin,
                         info.token_hash)

    async def _note_seen(self, token_hash: str, user_id: str, device_id: str,
                         ip: str | None, now: int) -> None:
        last = self._last_seen.get(token_hash)
        if last is not None and now - last < LAST_SEEN_INTERVAL_MS:
            return
        if len(self._last_seen) > 100_000:
            self._last_seen.clear()
        self._last_seen[token_hash] = now
        await self.store.record_device_seen(user_id, device_id, ip, now)

    async def require_admin(self, request: web.Request) -> Requester:
        requester = await self.get_requester(request)
        if not requester.admin:
            raise forbidden("You are not a server admin")
        return requester

    async def issue_session(self, user_id: str, device_id: str, *, refreshable: bool
                            ) -> dict[str, Any]:
        """New access token (and refresh token when asked) for an existing device."""
        now = self.clock()
        access = new_token("hsat")
        result: dict[str, Any] = {"access_token": access}
        if refreshable:
            refresh = new_token("hsrt")
            lifetime = self.config.refreshable_access_token_lifetime_ms
            expiry = self._refresh_expiry(now)
            await self.store.add_refresh_token(hash_token(refresh), user_id, device_id, now,
                                               expiry)
            await self.store.add_access_token(hash_token(access), user_id, device_id, now,
                                              now + lifetime, hash_token(refresh))
            result.update(refresh_token=refresh, expires_in_ms=lifetime)
        else:
            await self.store.add_access_token(hash_token(access), user_id, device_id, now)
        return result

    def _refresh_expiry(self, now: int) -> int | None:
        lifetime = self.config.refresh_token_lifetime_ms
        return None if lifetime is None else now + lifetime

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        """Rotate a refresh token: new access + refresh token bound to the same device."""
        now = self.clock()
        row: RefreshTokenRow | None = await self.store.get_refresh_token(hash_token(refresh_token))
        if row is None:
            raise unknown_token("Unknown refresh token", soft_logout=False)
        if row.expiry_ts is not None and row.expiry_ts <= now:
            raise unknown_token("Refresh token has expired", soft_logout=False)
        access, refresh = new_token("hsat"), new_token("hsrt")
        lifetime = self.config.refreshable_access_token_lifetime_ms
        await self.store.rotate_refresh_token(row, hash_token(refresh), hash_token(access), now,
                                              self._refresh_expiry(now), now + lifetime)
        return {"access_token": access, "refresh_token": refresh, "expires_in_ms": lifetime}
