"""Strict decoding of JSON received from clients and other servers.

Public API:

* ``decode_json(data)`` - client request bodies: valid UTF-8, no lone surrogates, no
  NaN/Infinity, no duplicate object keys. Floats are allowed (clients may send them in
  non-event bodies; event content is checked again when it is canonicalised).
* ``decode_strict(data, allow_floats=False)`` - federation payloads and PDUs: as above, and
  integers must lie in the canonical range; floats are refused unless allowed (room
  versions before 6 tolerated them).

Both raise ``JSONDecodeError`` whose ``errcode`` is ``M_NOT_JSON`` (not JSON at all) or
``M_BAD_JSON`` (JSON, but breaking one of these rules).

orjson parses (it already refuses invalid UTF-8, lone surrogates and NaN); a single walk
(compiled, see ``hs._native.json_scan``) then checks numbers and counts object keys and
colons inside strings. Every key is followed by exactly one structural ``:``; so if the raw
text's colons minus the in-string colons equal the decoded key count, no key was merged away.
Only when that shortcut cannot be trusted (an escaped colon in the text) or fails does the
slow, exact ``json`` parse run to name the duplicate.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from hs._native._errors import JSONValueError
from hs._native.json_scan import raw_colons, scan

__all__ = ["JSONDecodeError", "decode_json", "decode_strict"]


class JSONDecodeError(ValueError):
    """Input is not acceptable JSON; ``errcode`` is the Matrix error code to answer with."""

    def __init__(self, errcode: str, message: str) -> None:
        super().__init__(message)
        self.errcode = errcode


def decode_json(data: bytes | str) -> Any:
    """Decode a client request body (floats allowed, any integer size)."""
    return _decode(data, allow_floats=True, check_ints=False)


def decode_strict(data: bytes | str, *, allow_floats: bool = False) -> Any:
    """Decode a federation payload: canonical-range integers, floats only if allowed."""
    return _decode(data, allow_floats=allow_floats, check_ints=True)


def _decode(data: bytes | str, *, allow_floats: bool, check_ints: bool) -> Any:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise JSONDecodeError("M_NOT_JSON", f"Content not JSON: {exc}") from None
    try:
        keys, string_colons = scan(value, allow_floats, check_ints)
    except JSONValueError as exc:
        raise JSONDecodeError("M_BAD_JSON", str(exc)) from None
    if keys:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        colons = raw_colons(raw)
        if colons < 0 or colons - string_colons != keys:
            _find_duplicate_key(raw)
    return value


def _reject_constant(name: str) -> Any:
    raise JSONDecodeError("M_NOT_JSON", f"Content not JSON: {name} is not allowed")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, item in pairs:
        if key in result:
            raise JSONDecodeError("M_BAD_JSON", f"duplicate key {key!r} in JSON object")
        result[key] = item
    return result


def _find_duplicate_key(raw: bytes) -> None:
    """Exact (slow) check: raise if any object repeats a key."""
    try:
        json.loads(raw, object_pairs_hook=_pairs, parse_constant=_reject_constant)
    except JSONDecodeError:
        raise
    except ValueError as exc:  # cannot happen for text orjson accepted; be explicit anyway
        raise JSONDecodeError("M_NOT_JSON", f"Content not JSON: {exc}") from None
