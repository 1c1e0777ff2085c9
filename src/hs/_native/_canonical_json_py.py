"""Pure-Python twin of ``_canonical_json_c``: canonical JSON encoding.

Canonical JSON (spec appendix "Canonical JSON"): UTF-8, object keys sorted by code point, no
insignificant whitespace, shortest escapes, integers only and only in [-(2**53)+1, 2**53-1].

orjson with ``OPT_SORT_KEYS`` already produces exactly this byte form (UTF-8 byte order is
code-point order, and its escapes match the grammar and ``canonicaljson``'s), so this twin
validates the value in Python and lets orjson write the bytes. The few shapes orjson writes
differently from ``canonicaljson`` (str-subclass keys, tuple and dict subclasses, other
Mappings) are flagged by the walk and written by the stdlib encoder configured exactly as
``canonicaljson`` 2.0 configures it.

The walk is written for speed: exact types first, leaves checked inline in the container
loops (most values in an event are strings), recursion only for nested containers. The
first pass skips the keys of exact dicts, since orjson refuses any key that is not an exact
str; only when a pass or orjson fails does the full walk run, to report the same first
error (in document order, keys before their values) as the Cython twin.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson

from hs._native._errors import CanonicalJSONError

#: Deepest nesting of arrays/objects accepted (orjson's own limit is 255; a margin of one).
MAX_NESTING = 254
MAX_SAFE_INTEGER = 2**53 - 1
MIN_SAFE_INTEGER = -(2**53) + 1

_SORT = orjson.OPT_SORT_KEYS
_dumps = orjson.dumps

#: The walk's verdict: orjson writes the value, or the stdlib encoder must.
VIA_ORJSON = 0
VIA_STDLIB = 1


def _int_error(value: int) -> CanonicalJSONError:
    bits = int.bit_length(value)
    if bits > 64:
        # Never format a huge integer: int -> str is quadratic and capped at 4300 digits.
        return CanonicalJSONError(
            f"integer of {bits} bits is outside the canonical JSON range [-(2**53)+1, 2**53-1]"
        )
    return CanonicalJSONError(
        f"integer {int.__repr__(value)} is outside the canonical JSON range [-(2**53)+1, 2**53-1]"
    )


def _depth_error() -> CanonicalJSONError:
    return CanonicalJSONError(f"value is nested more than {MAX_NESTING} levels deep")


def _check_key(key: object) -> int:
    """A non-exact-str key: a str subclass needs the stdlib encoder, anything else is refused."""
    if isinstance(key, str):
        return VIA_STDLIB
    raise CanonicalJSONError(f"object keys must be strings, not {type(key).__name__}")


def _walk(value: Any, depth: int) -> int:
    """Validate ``value`` (inside ``depth`` containers); return VIA_ORJSON or VIA_STDLIB."""
    t = type(value)
    if t is str or value is None or t is bool:
        return VIA_ORJSON
    if t is int:
        if MIN_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return VIA_ORJSON
        raise _int_error(value)
    via = VIA_ORJSON
    if t is dict:
        if depth >= MAX_NESTING:
            raise _depth_error()
        depth += 1
        for key, item in value.items():
            if type(key) is not str:
                via |= _check_key(key)
            it = type(item)
            if it is str or item is None or it is bool:
                continue
            if it is int and MIN_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                continue
            via |= _walk(item, depth)
        return via
    if t is list or t is tuple:
        if depth >= MAX_NESTING:
            raise _depth_error()
        depth += 1
        for item in value:
            it = type(item)
            if it is str or item is None or it is bool:
                continue
            if it is int and MIN_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                continue
            via |= _walk(item, depth)
        return via
    return _walk_other(value, depth)


def _walk_values(value: Any, depth: int) -> int:
    """``_walk`` without the key checks on exact dicts (orjson makes those itself)."""
    t = type(value)
    if t is dict:
        items: Any = value.values()
    elif t is list or t is tuple:
        items = value
    else:
        return _walk(value, depth)
    if depth >= MAX_NESTING:
        raise _depth_error()
    depth += 1
    via = VIA_ORJSON
    for item in items:
        it = type(item)
        if it is str or item is None or it is bool:
            continue
        if it is int and MIN_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
            continue
        via |= _walk_values(item, depth)
    return via


def _walk_other(value: Any, depth: int) -> int:
    """Subclasses and other Mappings: the same checks, in the Cython twin's order."""
    if isinstance(value, str):
        return VIA_ORJSON  # both encoders write a str subclass's characters
    if isinstance(value, int):
        if MIN_SAFE_INTEGER <= int.__index__(value) <= MAX_SAFE_INTEGER:
            return VIA_ORJSON  # IntEnum & co: both encoders write int.__repr__
        raise _int_error(value)
    if isinstance(value, float):
        raise CanonicalJSONError(f"float {float.__repr__(value)} is not allowed in canonical JSON")
    if isinstance(value, Mapping):
        if depth >= MAX_NESTING:
            raise _depth_error()
        for key, item in value.items():
            if type(key) is not str:
                _check_key(key)
            _walk(item, depth + 1)
        return VIA_STDLIB
    if isinstance(value, list):
        # Both encoders read a list subclass's storage directly, never its __iter__.
        if depth >= MAX_NESTING:
            raise _depth_error()
        via = VIA_ORJSON
        for item in list.__iter__(value):
            via |= _walk(item, depth + 1)
        return via
    if isinstance(value, tuple):
        if depth >= MAX_NESTING:
            raise _depth_error()
        for item in tuple.__iter__(value):
            _walk(item, depth + 1)
        return VIA_STDLIB  # orjson refuses tuple subclasses (namedtuple)
    raise CanonicalJSONError(f"cannot encode {type(value).__name__} as canonical JSON")


def _as_builtin(obj: Any) -> Any:
    """``default`` hook of the stdlib encoder: the walk has already vetted every Mapping."""
    if isinstance(obj, Mapping):
        return dict(obj.items())
    raise CanonicalJSONError(f"cannot encode {type(obj).__name__} as canonical JSON")


# The configuration canonicaljson 2.0 uses, so the rare slow path is byte-identical to it.
_STDLIB = json.JSONEncoder(
    ensure_ascii=False,
    allow_nan=False,
    separators=(",", ":"),
    sort_keys=True,
    default=_as_builtin,
)


def _encode_stdlib(value: Any) -> bytes:
    try:
        return _STDLIB.encode(value).encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalJSONError("str is not valid UTF-8: surrogates not allowed") from None


def encode_canonical_json(value: Any) -> bytes:
    """Return the canonical JSON encoding of ``value`` as UTF-8 bytes.

    Raises ``CanonicalJSONError`` for floats, integers outside the canonical range,
    non-string keys, lone surrogates, unknown types and nesting deeper than MAX_NESTING.
    """
    try:
        via = _walk_values(value, 0)
    except CanonicalJSONError:
        _walk(value, 0)  # the full walk raises the first error in document order
        raise
    if via == VIA_ORJSON:
        try:
            return _dumps(value, option=_SORT)
        except TypeError as exc:  # a key that is not an exact str, or a lone surrogate
            if _walk(value, 0) == VIA_ORJSON:  # raises for a non-str key
                raise CanonicalJSONError(str(exc)) from None
            return _encode_stdlib(value)  # str-subclass keys
    _walk(value, 0)
    return _encode_stdlib(value)
