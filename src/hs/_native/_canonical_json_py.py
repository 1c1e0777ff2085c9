"""Pure-Python twin of ``_canonical_json_c``: canonical JSON encoding.

Canonical JSON (spec appendix): UTF-8, object keys sorted by code point, no insignificant
whitespace, shortest escapes, integers only and only in [-(2**53)+1, 2**53-1].

orjson with ``OPT_SORT_KEYS`` already produces exactly this byte form (UTF-8 byte order is
code-point order, and its escapes match the spec's and ``canonicaljson``'s), so this twin
validates the value in Python and lets orjson write the bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from hs._native._errors import CanonicalJSONError

MAX_SAFE_INTEGER = 2**53 - 1
MIN_SAFE_INTEGER = -(2**53) + 1
#: orjson refuses deeper nesting; a Matrix event never gets near it.
MAX_DEPTH = 254

_OPTS = orjson.OPT_SORT_KEYS


def _default(obj: Any) -> Any:
    # Reached only for types orjson does not know; _check has vetted them already.
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, (list, tuple)):
        return list(obj)
    raise CanonicalJSONError(f"cannot encode {type(obj).__name__} as canonical JSON")


def _check(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise CanonicalJSONError("value is nested too deeply")
    if isinstance(value, str) or value is None or value is True or value is False:
        return
    if isinstance(value, int):
        if not MIN_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalJSONError(f"integer {value} is outside the canonical JSON range")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalJSONError(f"object key {key!r} is not a string")
            _check(item, depth + 1)
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check(item, depth + 1)
        return
    if isinstance(value, float):
        raise CanonicalJSONError(f"float {value!r} is not allowed in canonical JSON")
    raise CanonicalJSONError(f"cannot encode {type(value).__name__} as canonical JSON")


def encode_canonical_json(value: Any) -> bytes:
    """Return the canonical JSON encoding of ``value`` as UTF-8 bytes."""
    _check(value, 0)
    try:
        return orjson.dumps(value, default=_default, option=_OPTS)
    except orjson.JSONEncodeError as exc:  # lone surrogates, for instance
        raise CanonicalJSONError(str(exc)) from None
