"""OpenID tokens (client-server "OpenID", server-server "OpenID"): a user asks for a
short-lived token, gives it to an integration server (widgets, integration managers), and
that server asks us who the token belongs to via ``/_matrix/federation/v1/openid/userinfo``.

Tokens are 32 random bytes (urlsafe base64); only their SHA-256 is stored. Expired tokens
are dropped opportunistically when new ones are issued (at most once a minute).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Any

from hs.http.errors import MatrixError, forbidden
from hs.storage.database import Database
from hs.storage.openid import OpenIdStore

#: Lifetime of an OpenID token, in seconds (``expires_in`` of the response).
TOKEN_LIFETIME_S = 3600
_CLEANUP_INTERVAL_MS = 60_000


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class OpenIdHandler:
    def __init__(self, db: Database, server_name: str, clock: Callable[[], int]) -> None:
        self.store = OpenIdStore(db)
        self.server_name = server_name
        self.clock = clock
        self._last_cleanup_ms: int | None = None

    async def request_token(self, requester_user_id: str, user_id: str) -> dict[str, Any]:
        """A new token for ``user_id``; 403 unless that is the requester."""
        if requester_user_id != user_id:
            raise forbidden("Cannot request an OpenID token for another user")
        now = self.clock()
        await self._maybe_cleanup(now)
        token = secrets.token_urlsafe(32)
        await self.store.add(hash_token(token), user_id, now + TOKEN_LIFETIME_S * 1000)
        return {"access_token": token, "token_type": "Bearer",
                "matrix_server_name": self.server_name, "expires_in": TOKEN_LIFETIME_S}

    async def userinfo(self, token: str) -> dict[str, Any]:
        """``{"sub": user_id}`` for a live token; 401 M_UNKNOWN_TOKEN otherwise."""
        user_id = await self.store.user_for(hash_token(token), self.clock())
        if user_id is None:
            raise MatrixError(401, "M_UNKNOWN_TOKEN", "Access token unknown or expired")
        return {"sub": user_id}

    async def _maybe_cleanup(self, now: int) -> None:
        if self._last_cleanup_ms is not None and now - self._last_cleanup_ms < _CLEANUP_INTERVAL_MS:
            return
        self._last_cleanup_ms = now
        await self.store.delete_expired(now)


__all__ = ["TOKEN_LIFETIME_S", "OpenIdHandler", "hash_token"]
