"""Strict decoding of JSON received from clients and other servers.

Public API (all raise ``JSONDecodeError``, a ``ValueError`` whose ``errcode`` is the Matrix
error code to answer with: ``M_NOT_JSON`` when the input does not parse, ``M_BAD_JSON`` when it
parses but breaks a rule below):

* ``decode_json(data)`` - client request bodies. Valid UTF-8 only, no lone surrogates (raw or
  escaped as ``\\ud800``), no NaN/Infinity, no duplicate object keys, nesting at most
  ``MAX_NESTING`` deep, integers within the canonical range [-(2**53)+1, 2**53-1]. Floats are
  allowed: non-event bodies may carry them, and event content is checked again when it is
  canonicalised for a room version that forbids them.
* ``decode_strict(data, *, allow_floats, allow_big_ints=False)`` - federation payloads. The
  same rules; floats only if ``allow_floats``; with ``allow_big_ints`` integers of any size are
  kept exactly (room versions 1-5: the appendix's warning asks servers to cope with them).
* ``decode_for_room_version(data, room_version)`` - a PDU of one room version: strict from v6
  on (``strict_canonical_json``: "Servers MUST strictly enforce the JSON format", rooms/v6),
  lenient before.

Fast path (``hs._native.json_scan.parse``, one compiled call): a depth guard, then orjson
parses (it already refuses invalid UTF-8, lone surrogates, control characters in strings,
NaN/Infinity and other non-JSON), then one walk checks numbers and nesting and counts object
keys and the colons inside strings. Every key in the text is followed by exactly one
structural ``:``, and without ``\\u003a`` escapes every colon inside a decoded string was a
literal colon of the text, so ``raw colons == keys + in-string colons`` holds exactly when
orjson merged no duplicate key (a merged key loses its ``:``; its strings only lose colons).

Slow, exact path (stdlib ``json`` with hooks), only when the shortcut cannot decide (an
escaped colon, or the counts differ) or when a float appears: orjson turns integers beyond
64 bits into floats, so only an exact parse can tell ``1e3`` from ``18446744073709551616``.

The depth guard (``raw_too_deep``) refuses text nested deeper than ``MAX_NESTING`` before
orjson sees it: orjson's recursive parser overflows the C stack (kills the process) on
~10**6 nested ``[``.
"""

from __future__ import annotations

import json
from typing import Any, Final

import orjson

from hs._native._errors import JSONValueError
from hs._native.json_scan import HAS_FLOATS, OK, parse, scan
from hs._native.json_scan import MAX_NESTING as _MAX_NESTING
from hs.core.room_versions import RoomVersion

__all__ = [
    "BAD_JSON",
    "MAX_NESTING",
    "NOT_JSON",
    "JSONDecodeError",
    "decode_for_room_version",
    "decode_json",
    "decode_strict",
]

#: Matrix error codes carried by ``JSONDecodeError.errcode`` (client-server API, common errors).
NOT_JSON: Final = "M_NOT_JSON"
BAD_JSON: Final = "M_BAD_JSON"
#: Deepest nesting of arrays/objects accepted, the same as the canonical JSON encoder's.
MAX_NESTING: Final[int] = _MAX_NESTING


class JSONDecodeError(ValueError):
    """Input is not acceptable JSON; ``errcode`` is ``NOT_JSON`` or ``BAD_JSON``."""

    def __init__(self, errcode: str, message: str) -> None:
        super().__init__(message)
        self.errcode = errcode


def decode_json(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode a client request body (floats allowed, integers in the canonical range)."""
    return _decode(data, allow_floats=True, check_ints=True)


def decode_strict(
    data: bytes | bytearray | memoryview | str, *, allow_floats: bool, allow_big_ints: bool = False
) -> Any:
    """Decode a federation payload: floats only if allowed, big integers only if allowed."""
    return _decode(data, allow_floats=allow_floats, check_ints=not allow_big_ints)


def decode_for_room_version(
    data: bytes | bytearray | memoryview | str, room_version: RoomVersion
) -> Any:
    """Decode one PDU by its room version's rules (strict canonical JSON from v6)."""
    lenient = not room_version.strict_canonical_json
    return _decode(data, allow_floats=lenient, check_ints=not lenient)


def _decode(
    data: bytes | bytearray | memoryview | str, *, allow_floats: bool, check_ints: bool
) -> Any:
    raw = _as_bytes(data)
    try:
        value, verdict = parse(raw, check_ints)
    except orjson.JSONDecodeError as exc:
        if "infinity" in str(exc):  # a number literal beyond the double range: JSON, but refused
            raise JSONDecodeError(BAD_JSON, f"number out of range: {exc}") from None
        raise JSONDecodeError(NOT_JSON, f"Content not JSON: {exc}") from None
    except JSONValueError as exc:
        raise JSONDecodeError(BAD_JSON, str(exc)) from None
    if verdict == OK:
        return value
    if verdict == HAS_FLOATS:
        value = _decode_exact(raw)  # also refuses duplicate keys
        try:
            scan(value, allow_floats, check_ints)
        except JSONValueError as exc:
            raise JSONDecodeError(BAD_JSON, str(exc)) from None
        return value
    _decode_exact(raw)  # CHECK_DUPLICATES: raises on a duplicate, else the count was unsure
    return value


def _as_bytes(data: bytes | bytearray | memoryview | str) -> bytes:
    if type(data) is bytes:
        return data
    if isinstance(data, str):
        try:
            return data.encode("utf-8")
        except UnicodeEncodeError:
            raise JSONDecodeError(NOT_JSON, "Content not JSON: lone surrogate in text") from None
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"cannot decode JSON from {type(data).__name__}")


def _reject_constant(name: str) -> Any:
    raise JSONDecodeError(NOT_JSON, f"Content not JSON: {name} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JSONDecodeError(BAD_JSON, f"duplicate key {key[:80]!r} in JSON object")
            seen.add(key)
    return result


def _decode_exact(raw: bytes) -> Any:
    """The slow, exact parse of text orjson accepted: exact integers, duplicate keys refused."""
    try:
        return json.loads(
            raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_reject_constant
        )
    except JSONDecodeError:
        raise
    except (ValueError, RecursionError) as exc:
        # orjson parsed this text, so it is JSON; e.g. an integer literal over 4300 digits.
        raise JSONDecodeError(BAD_JSON, f"unacceptable JSON: {exc}") from None
