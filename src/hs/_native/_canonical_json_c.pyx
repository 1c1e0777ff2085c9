# cython: language_level=3, boundscheck=False, wraparound=False
"""Cython twin of ``_canonical_json_py``: canonical JSON encoding (spec appendix "Canonical JSON").

A validation walk runs at C speed over the CPython objects (no floats, integers within
[-(2**53)+1, 2**53-1], string keys, known types, bounded nesting); orjson then writes the
bytes, which with ``OPT_SORT_KEYS`` are already canonical: UTF-8 byte order is code-point
order, and orjson's escapes (``\\"``, ``\\\\``, ``\\b\\f\\n\\r\\t``, ``\\u00XX`` lower-case for other
controls, nothing else) are exactly the grammar's.

orjson disagrees with ``canonicaljson`` (the stdlib encoder) only on values no Matrix event
contains: ``str`` subclasses as keys, tuple subclasses, ``dict`` subclasses (stdlib reads them
through ``.items()``) and non-dict Mappings. The walk flags those, and they are written by the
stdlib encoder configured exactly as ``canonicaljson`` 2.0 configures it.

Errors, their messages and the order in which they are found match the pure twin exactly.
Dicts are iterated with owned references (Cython's ``dict.items()`` loop), so a Mapping whose
``items()`` runs arbitrary Python code cannot leave the walk holding dangling pointers.
"""

from cpython.long cimport PyLong_AsLongLongAndOverflow

from collections.abc import Mapping
import json

import orjson

from hs._native._errors import CanonicalJSONError

#: Deepest nesting of arrays/objects accepted (orjson's own limit is 255; a margin of one).
MAX_NESTING = 254
MAX_SAFE_INTEGER = 2**53 - 1
MIN_SAFE_INTEGER = -(2**53) + 1

cdef int _MAX_NESTING = MAX_NESTING
cdef long long _MAX_SAFE = 9007199254740991

cdef object _dumps = orjson.dumps
cdef object _SORT = orjson.OPT_SORT_KEYS
cdef object _Mapping = Mapping

#: The walk's verdict: orjson writes the value, or the stdlib encoder must (see module doc).
cdef enum:
    VIA_ORJSON = 0
    VIA_STDLIB = 1


cdef object _int_error(object value):
    cdef Py_ssize_t bits = int.bit_length(value)
    if bits > 64:
        # Never format a huge integer: int -> str is quadratic and capped at 4300 digits.
        return CanonicalJSONError(
            f"integer of {bits} bits is outside the canonical JSON range [-(2**53)+1, 2**53-1]"
        )
    return CanonicalJSONError(
        f"integer {int.__repr__(value)} is outside the canonical JSON range [-(2**53)+1, 2**53-1]"
    )


cdef object _depth_error():
    return CanonicalJSONError(f"value is nested more than {MAX_NESTING} levels deep")


cdef inline int _check_int(object value) except -1:
    cdef int overflow = 0
    cdef long long n = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow != 0 or n > _MAX_SAFE or n < -_MAX_SAFE:
        raise _int_error(value)
    return 0


cdef int _check_key(object key) except -1:
    """A non-exact-str key: a str subclass needs the stdlib encoder, anything else is refused."""
    if isinstance(key, str):
        return VIA_STDLIB
    raise CanonicalJSONError(f"object keys must be strings, not {type(key).__name__}")


cdef int _walk(object value, int depth) except -1:
    """Validate ``value`` (inside ``depth`` containers); return VIA_ORJSON or VIA_STDLIB."""
    cdef type t = type(value)
    cdef int via = VIA_ORJSON
    if t is str or value is None or t is bool:
        return VIA_ORJSON
    if t is int:
        return _check_int(value)
    if t is dict:
        if depth >= _MAX_NESTING:
            raise _depth_error()
        for key, item in (<dict>value).items():
            if type(key) is not str:
                via |= _check_key(key)
            if type(item) is not str:
                via |= _walk(item, depth + 1)
        return via
    if t is list:
        if depth >= _MAX_NESTING:
            raise _depth_error()
        for item in <list>value:
            if type(item) is not str:
                via |= _walk(item, depth + 1)
        return via
    if t is tuple:
        if depth >= _MAX_NESTING:
            raise _depth_error()
        for item in <tuple>value:
            if type(item) is not str:
                via |= _walk(item, depth + 1)
        return via
    return _walk_other(value, depth)


cdef int _walk_other(object value, int depth) except -1:
    """Subclasses and other Mappings: the same checks, in the pure twin's order."""
    cdef int via = VIA_ORJSON
    if isinstance(value, str):
        return VIA_ORJSON  # both encoders write a str subclass's characters
    if isinstance(value, int):
        return _check_int(value)  # IntEnum & co: both encoders write int.__repr__
    if isinstance(value, float):
        raise CanonicalJSONError(
            f"float {float.__repr__(value)} is not allowed in canonical JSON"
        )
    if isinstance(value, _Mapping):
        if depth >= _MAX_NESTING:
            raise _depth_error()
        for key, item in value.items():
            if type(key) is not str:
                _check_key(key)
            _walk(item, depth + 1)
        return VIA_STDLIB
    if isinstance(value, list):
        # Both encoders read a list subclass's storage directly, never its __iter__.
        if depth >= _MAX_NESTING:
            raise _depth_error()
        for item in <list>value:
            via |= _walk(item, depth + 1)
        return via
    if isinstance(value, tuple):
        if depth >= _MAX_NESTING:
            raise _depth_error()
        for item in <tuple>value:
            _walk(item, depth + 1)
        return VIA_STDLIB  # orjson refuses tuple subclasses (namedtuple)
    raise CanonicalJSONError(f"cannot encode {type(value).__name__} as canonical JSON")


def _as_builtin(obj):
    """``default`` hook of the stdlib encoder: the walk has already vetted every Mapping."""
    if isinstance(obj, _Mapping):
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


cdef bytes _encode_stdlib(object value):
    try:
        return _STDLIB.encode(value).encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalJSONError("str is not valid UTF-8: surrogates not allowed") from None


def encode_canonical_json(value) -> bytes:
    """Return the canonical JSON encoding of ``value`` as UTF-8 bytes.

    Raises ``CanonicalJSONError`` for floats, integers outside the canonical range,
    non-string keys, lone surrogates, unknown types and nesting deeper than MAX_NESTING.
    """
    if _walk(value, 0) == VIA_STDLIB:
        return _encode_stdlib(value)
    try:
        return _dumps(value, option=_SORT)
    except TypeError as exc:  # orjson.JSONEncodeError: a lone surrogate in some string
        raise CanonicalJSONError(str(exc)) from None
