"""OpenID token storage: ``sha256(token)`` -> (user, expiry). The token itself is never
stored; lookups are by hash, so the database index never compares secret bytes."""

from __future__ import annotations

from hs.storage.database import Database


class OpenIdStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, token_hash: str, user_id: str, expires_ts: int) -> None:
        await self.db.execute(
            "INSERT INTO openid_tokens (token_hash, user_id, expires_ts) VALUES (?, ?, ?)",
            token_hash, user_id, expires_ts)

    async def user_for(self, token_hash: str, now_ms: int) -> str | None:
        """The token's user, or None when it is unknown or expired at ``now_ms``."""
        user_id = await self.db.fetchval(
            "SELECT user_id FROM openid_tokens WHERE token_hash = ? AND expires_ts > ?",
            token_hash, now_ms)
        return None if user_id is None else str(user_id)

    async def delete_expired(self, now_ms: int) -> int:
        """Drop every token expired at ``now_ms``; returns how many went."""
        return await self.db.execute(
            "DELETE FROM openid_tokens WHERE expires_ts <= ?", now_ms)


__all__ = ["OpenIdStore"]
