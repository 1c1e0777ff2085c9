"""Process-wide settings of the server process (not of the library).

The garbage collector: a homeserver allocates many short-lived objects per request and
keeps large caches of long-lived ones (events, state maps, memberships). With CPython's
default thresholds (700, 10, 10) full collections then run every few seconds under load
and their cost grows with the caches: in a 10 s burst of 2,000 long-poll wake-ups we
measured 6 full collections of up to 93 ms each, about a fifth of the process's CPU and
the whole p99 latency budget. The objects that exist once the server has started (modules,
config, routes, warmed caches) are frozen so no collection scans them again, and young
collections run every 50,000 allocations instead of 700 (reference cycles are rare here;
most garbage is freed by reference counting). Synapse exposes the same knob as
``gc_thresholds``, which hs reads.
"""

from __future__ import annotations

import gc

__all__ = ["tune_gc"]


def tune_gc(thresholds: tuple[int, int, int]) -> None:
    """Freeze the startup heap and set the collector's thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
