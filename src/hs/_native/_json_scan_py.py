"""Pure-Python twin of ``_json_scan_c``: the strict decoder's checks on freshly decoded JSON.

The strict decoder (``hs.core.json_decode``) lets orjson parse, then needs facts orjson does
not give: whether a float appeared (forbidden, or possibly an integer orjson could not hold
exactly), whether an integer left the canonical range, whether nesting is too deep, and how
many object keys and in-string colons there are (to detect duplicate keys, which orjson
silently merges). The walk is depth-first in document order, like the Cython twin's, so both
report the same first error.
"""

from __future__ import annotations

import re
from array import array
from itertools import accumulate
from typing import Any

import orjson

from hs._native._errors import JSONValueError

#: Deepest nesting of arrays/objects accepted; the same limit as the canonical JSON encoder.
MAX_NESTING = 254
MAX_SAFE_INTEGER = 2**53 - 1
#: ``parse`` verdicts: the value is final / floats appeared / the duplicate-key count is unsure.
OK = 0
HAS_FLOATS = 1
CHECK_DUPLICATES = 2
MIN_SAFE_INTEGER = -MAX_SAFE_INTEGER


# A string token: a backslash hides the next byte; an unterminated string runs to the end.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
# bytes.translate: keep only brackets, openers -> +1 and closers -> -1 (as signed bytes).
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def _int_error(v: int) -> JSONValueError:
    bits = int.bit_length(v)
    if bits > 64:
        return JSONValueError(f"integer of {bits} bits is outside the canonical JSON range")
    return JSONValueError(f"integer {int.__repr__(v)} is outside the canonical JSON range")


def _key_colons(obj: dict[Any, Any]) -> int:
    try:
        return "".join(obj).count(":")
    except TypeError:  # a non-str key: never from a JSON parser, but scan() takes any value
        return sum(str.count(k, ":") for k in obj if isinstance(k, str))


def scan(value: Any, allow_floats: bool, check_ints: bool) -> tuple[int, int, int]:
    """Walk decoded JSON; return ``(object keys, colons inside strings, floats)``.

    Raises JSONValueError for a float (unless ``allow_floats``), an integer outside the
    canonical range (if ``check_ints``) or nesting deeper than MAX_NESTING.
    """
    keys = colons = floats = 0

    def walk(items: Any, depth: int) -> None:
        # ``items`` are the values of one container at ``depth``; leaves are checked inline.
        nonlocal keys, colons, floats
        for v in items:
            t = type(v)
            if t is str:
                if ":" in v:
                    colons += v.count(":")
            elif t is dict:
                if depth >= MAX_NESTING:
                    raise JSONValueError(f"JSON is nested more than {MAX_NESTING} levels deep")
                keys += len(v)
                colons += _key_colons(v)
                walk(v.values(), depth + 1)
            elif t is list:
                if depth >= MAX_NESTING:
                    raise JSONValueError(f"JSON is nested more than {MAX_NESTING} levels deep")
                walk(v, depth + 1)
            elif t is int:
                if check_ints and not MIN_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER:
                    raise _int_error(v)
            elif t is float:
                if not allow_floats:
                    raise JSONValueError(f"float {float.__repr__(v)} is not allowed here")
                floats += 1

    walk((value,), 0)
    return keys, colons, floats


def raw_colons(raw: bytes) -> int:
    """Colons in the raw JSON text, or -1 if one may be written escaped (``\\u003a``)."""
    if b"\\u003a" in raw or b"\\u003A" in raw:
        return -1
    return raw.count(b":")


def raw_too_deep(raw: bytes) -> bool:
    """True if the text nests arrays/objects more than MAX_NESTING deep (strings skipped).

    Exact for valid JSON; on other input it agrees with the Cython twin's byte loop.
    """
    # Cheap bound first: nesting can never exceed the number of opening brackets.
    if raw.count(b"[") + raw.count(b"{") <= MAX_NESTING:
        return False
    steps = array("b", _STRING.sub(b"", raw).translate(_STEP, _NOT_BRACKETS))
    return max(accumulate(steps), default=0) > MAX_NESTING


def parse(raw: bytes, check_ints: bool) -> tuple[Any, int]:
    """The decoder's fast path in one call: depth guard, orjson, scan, duplicate-key count.

    Returns ``(value, verdict)`` with verdict OK, HAS_FLOATS (floats are counted, not
    refused: orjson reads integers beyond 64 bits as floats, so the caller must re-read
    exactly) or CHECK_DUPLICATES (the colon count cannot prove there is no duplicate key).
    Raises JSONValueError (too deep, integer out of range) or orjson.JSONDecodeError.
    """
    if raw_too_deep(raw):
        raise JSONValueError(f"JSON is nested more than {MAX_NESTING} levels deep")
    value = orjson.loads(raw)
    keys, string_colons, floats = scan(value, True, check_ints)
    if floats:
        return value, HAS_FLOATS
    if keys:
        colons = raw_colons(raw)
        if colons < 0 or colons - string_colons != keys:
            return value, CHECK_DUPLICATES
    return value, OK
