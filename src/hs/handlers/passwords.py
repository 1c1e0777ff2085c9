"""Password hashing with argon2id, run in a thread so hashing never blocks the event loop.

Parameters: one of OWASP's equivalent argon2id configurations (Password Storage Cheat
Sheet: 7 MiB of memory, 5 iterations, 1 lane; the list trades memory for iterations at
equal strength) rather than argon2-cffi's default (RFC 9106's "low memory" option,
64 MiB x 3 iterations x 4 lanes). Both are considered strong; OWASP's costs a server under
a registration or login burst a ninth of the memory and about a third of the CPU per
hash. Hashes made with other parameters (older hs releases, hand-made
with ``hs hash-password`` elsewhere) still verify: argon2 records them in the hash.

Hashes run on a small dedicated pool (one thread per core): a burst then queues instead
of holding a hash's memory per concurrent request, and throughput is unchanged because
hashing is CPU-bound anyway.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from hs.http.errors import MatrixError

#: Longer passwords are rejected before hashing: argon2 cost grows with input size.
MAX_PASSWORD_LENGTH = 512


def new_hasher() -> PasswordHasher:
    """argon2id with the parameters described above."""
    return PasswordHasher(time_cost=5, memory_cost=7 * 1024, parallelism=1)


class Passwords:
    def __init__(self, minimum_length: int = 0, hasher: PasswordHasher | None = None) -> None:
        self.minimum_length = minimum_length
        self._hasher = hasher or new_hasher()
        self._pool = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1),
                                        thread_name_prefix="argon2")

    def check_policy(self, password: str) -> None:
        """400 M_WEAK_PASSWORD for passwords the configured policy refuses."""
        if len(password) > MAX_PASSWORD_LENGTH:
            raise MatrixError(400, "M_BAD_JSON",
                              f"Password too long (max {MAX_PASSWORD_LENGTH} characters)")
        if len(password) < self.minimum_length:
            raise MatrixError(400, "M_WEAK_PASSWORD",
                              f"Password must be at least {self.minimum_length} characters")

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._hasher.hash,
                                                                password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """False for a wrong password, a missing hash or a hash format we cannot read."""
        if not password_hash or len(password) > MAX_PASSWORD_LENGTH:
            return False

        def _verify() -> bool:
            try:
                return self._hasher.verify(password_hash, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        return await asyncio.get_running_loop().run_in_executor(self._pool, _verify)
