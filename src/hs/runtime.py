"""Process-wide settings of the server process (not of the library).

The allocator (glibc): freed blocks of a few MiB (an argon2 hash's working memory, a
large request or response body) go back to malloc's arenas, and with glibc's dynamic
mmap threshold they stay resident after the burst that needed them: a registration burst
left the process ~35 MB larger for the rest of its life. A fixed 1 MiB threshold serves
such blocks with mmap, so freeing them returns the memory to the system at once (Python's
own small objects are unaffected: they live in pymalloc arenas).

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

import ctypes
import ctypes.util
import gc
import logging

__all__ = ["return_large_blocks", "tune_gc"]

logger = logging.getLogger(__name__)
#: glibc's ``mallopt`` parameter number for the mmap threshold.
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 20


def tune_gc(thresholds: tuple[int, int, int]) -> None:
    """Freeze the startup heap and set the collector's thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)


def return_large_blocks(threshold: int = MMAP_THRESHOLD) -> bool:
    """Serve allocations of ``threshold`` bytes and more with mmap (glibc only); False
    where there is no glibc ``mallopt`` (musl, macOS), which is harmless."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if mallopt(_M_MMAP_THRESHOLD, threshold) != 1:
        logger.debug("mallopt(M_MMAP_THRESHOLD) refused")
        return False
    return True
