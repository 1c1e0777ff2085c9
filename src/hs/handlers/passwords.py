"""Password hashing with argon2id, run in a thread so hashing never blocks the event loop."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from hs.http.errors import MatrixError

#: Longer passwords are rejected before hashing: argon2 cost grows with input size.
MAX_PASSWORD_LENGTH = 512


class Passwords:
    def __init__(self, minimum_length: int = 0, hasher: PasswordHasher | None = None) -> None:
        self.minimum_length = minimum_length
        self._hasher = hasher or PasswordHasher()

    def check_policy(self, password: str) -> None:
        """400 M_WEAK_PASSWORD for passwords the configured policy refuses."""
        if len(password) > MAX_PASSWORD_LENGTH:
            raise MatrixError(400, "M_BAD_JSON",
                              f"Password too long (max {MAX_PASSWORD_LENGTH} characters)")
        if len(password) < self.minimum_length:
            raise MatrixError(400, "M_WEAK_PASSWORD",
                              f"Password must be at least {self.minimum_length} characters")

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(None, self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """False for a wrong password, a missing hash or a hash format we cannot read."""
        if not password_hash or len(password) > MAX_PASSWORD_LENGTH:
            return False

        def _verify() -> bool:
            try:
                return self._hasher.verify(password_hash, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        return await asyncio.get_running_loop().run_in_executor(None, _verify)
