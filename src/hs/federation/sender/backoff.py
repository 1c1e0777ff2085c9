"""Retry intervals for unreachable destinations: exponential with jitter, capped.

Like Synapse, the first failure waits a while (not milliseconds: a server that is down
usually stays down for minutes), each further failure multiplies the wait, and the wait never
exceeds ``max_interval_ms`` (about a day by default). Jitter spreads the retries of many
servers that went down together so they do not all come back in one burst.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    min_interval_ms: int = 30_000
    max_interval_ms: int = 24 * 3600 * 1000
    multiplier: float = 2.0
    #: Each interval is scaled by a random factor in [1 - jitter, 1 + jitter].
    jitter: float = 0.2

    def next_interval(self, previous_ms: int, rng: random.Random | None = None) -> int:
        """The wait after a failure that followed a wait of ``previous_ms`` (0: first)."""
        base = self.min_interval_ms if previous_ms <= 0 else previous_ms * self.multiplier
        factor = 1.0 + (rng or random).uniform(-self.jitter, self.jitter)
        return int(min(max(base * factor, self.min_interval_ms), self.max_interval_ms))


__all__ = ["RetryPolicy"]
