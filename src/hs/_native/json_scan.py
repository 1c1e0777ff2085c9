"""Selector: the Cython strict-decoder checks, or their pure twin."""

from hs._native._loader import load

_impl = load("json_scan")

CHECK_DUPLICATES: int = _impl.CHECK_DUPLICATES
HAS_FLOATS: int = _impl.HAS_FLOATS
MAX_NESTING: int = _impl.MAX_NESTING
OK: int = _impl.OK
parse = _impl.parse
raw_colons = _impl.raw_colons
raw_too_deep = _impl.raw_too_deep
scan = _impl.scan

__all__ = [
    "CHECK_DUPLICATES",
    "HAS_FLOATS",
    "MAX_NESTING",
    "OK",
    "parse",
    "raw_colons",
    "raw_too_deep",
    "scan",
]
