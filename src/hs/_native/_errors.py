"""Exception types shared by both twins of every accelerator (so callers catch one class).

``hs.core`` re-exports them next to the APIs that raise them.
"""

from __future__ import annotations


class CanonicalJSONError(ValueError):
    """The value has no canonical JSON form (float, big integer, non-string key, ...)."""
