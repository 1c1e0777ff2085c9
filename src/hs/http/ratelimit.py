"""Token-bucket rate limiting with Synapse's ``rc_*`` semantics.

A bucket holds ``burst_count`` tokens and refills at ``per_second``; each action takes one.
When empty, the caller gets 429 ``M_LIMIT_EXCEEDED`` with the time until a token is back.
State is per process (like Synapse's in-memory limiters).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from hs.config.model import RateLimit
from hs.http.errors import limit_exceeded

_PRUNE_EVERY = 10_000


class Ratelimiter:
    """One named limiter; keys are e.g. a client IP, a user ID or ``(user, device)``."""

    def __init__(self, limit: RateLimit | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit if limit is not None and limit.enabled else None
        self._clock = clock
        self._buckets: dict[object, tuple[float, float]] = {}  # key -> (tokens, updated_at)
        self._ops = 0

    def _tokens(self, key: object, now: float) -> float:
        assert self.limit is not None
        tokens, updated = self._buckets.get(key, (float(self.limit.burst_count), now))
        return min(float(self.limit.burst_count), tokens + (now - updated) * self.limit.per_second)

    def check(self, key: object, *, update: bool = True) -> None:
        """Take a token for ``key`` (unless ``update`` is False) or raise M_LIMIT_EXCEEDED."""
        if self.limit is None:
            return
        now = self._clock()
        tokens = self._tokens(key, now)
        if tokens < 1.0:
            wait_s = (1.0 - tokens) / self.limit.per_second
            raise limit_exceeded(max(1, int(wait_s * 1000 + 0.999)))
        if update:
            self._buckets[key] = (tokens - 1.0, now)
            self._ops += 1
            if self._ops % _PRUNE_EVERY == 0:
                self._prune(now)

    def record(self, key: object) -> None:
        """Take a token without checking (e.g. a failed login, counted after the fact)."""
        if self.limit is None:
            return
        now = self._clock()
        self._buckets[key] = (max(0.0, self._tokens(key, now) - 1.0), now)

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled completely, to bound memory."""
        full = [k for k in self._buckets if self._tokens(k, now) >= self.limit.burst_count]  # type: ignore[union-attr]
        for key in full:
            del self._buckets[key]


class Ratelimiters:
    """All limiters named in config (``rc_login.address`` …), created on first use."""

    def __init__(self, lookup: Callable[[str], RateLimit | None]) -> None:
        self._lookup = lookup
        self._limiters: dict[str, Ratelimiter] = {}

    def __getitem__(self, name: str) -> Ratelimiter:
        limiter = self._limiters.get(name)
        if limiter is None:
            limiter = self._limiters[name] = Ratelimiter(self._lookup(name))
        return limiter
