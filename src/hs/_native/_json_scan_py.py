"""Pure-Python twin of ``_json_scan_c``: one walk over freshly decoded JSON.

The strict decoder (``hs.core.json_decode``) lets orjson parse, then needs three facts it
cannot get from orjson: whether a float appeared where floats are forbidden, whether an
integer left the canonical range, and how many object keys and in-string colons there were
(to detect duplicate keys, which orjson silently merges).
"""

from __future__ import annotations

from typing import Any

from hs._native._errors import JSONValueError

MAX_SAFE_INTEGER = 2**53 - 1


def scan(value: Any, allow_floats: bool, check_ints: bool) -> tuple[int, int]:
    """Return ``(object keys, colons inside strings)``; raise JSONValueError on a bad number."""
    keys = 0
    colons = 0
    stack = [value]
    pop = stack.pop
    push = stack.append
    while stack:
        v = pop()
        t = type(v)
        if t is str:
            colons += v.count(":")
        elif t is dict:
            keys += len(v)
            for k, item in v.items():
                colons += k.count(":")
                push(item)
        elif t is list:
            stack.extend(v)
        elif t is int:
            if check_ints and not -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER:
                raise JSONValueError(f"integer {v} is outside the canonical JSON range")
        elif t is float and not allow_floats:
            raise JSONValueError(f"float {v!r} is not allowed here")
    return keys, colons


def raw_colons(raw: bytes) -> int:
    """Colons in the raw JSON text, or -1 if a colon is written escaped (``\\u003a``)."""
    if b"\\u003a" in raw or b"\\u003A" in raw:
        return -1
    return raw.count(b":")
