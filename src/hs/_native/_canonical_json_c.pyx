# cython: language_level=3, boundscheck=False, wraparound=False
"""Cython twin of ``_canonical_json_py``: canonical JSON encoding.

The validation walk (no floats, integers within the canonical range, string keys, known
types) runs at C speed over the CPython objects; orjson then writes the bytes, which are
already canonical with ``OPT_SORT_KEYS``. Exact dicts, lists, strs and ints take the fast
paths; subclasses and other Mappings go through the generic checks.
"""

from cpython.dict cimport PyDict_Next
from cpython.object cimport PyObject
from cpython.long cimport PyLong_AsLongLongAndOverflow

from collections.abc import Mapping

import orjson

from hs._native._errors import CanonicalJSONError

DEF MAX_DEPTH = 254
cdef long long MAX_SAFE = 9007199254740991
cdef long long MIN_SAFE = -9007199254740991
cdef int _OPTS = orjson.OPT_SORT_KEYS
_dumps = orjson.dumps
_JSONEncodeError = orjson.JSONEncodeError


cdef inline int _check_int(object value) except -1:
    cdef int overflow = 0
    cdef long long v = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow != 0 or v > MAX_SAFE or v < MIN_SAFE:
        raise CanonicalJSONError(f"integer {value} is outside the canonical JSON range")
    return 0


cdef int _check(object value, int depth) except -1:
    cdef PyObject* key
    cdef PyObject* item
    cdef Py_ssize_t pos = 0
    cdef type t = type(value)
    if depth > MAX_DEPTH:
        raise CanonicalJSONError("value is nested too deeply")
    if t is str or value is None or t is bool:
        return 0
    if t is int:
        return _check_int(value)
    if t is dict:
        while PyDict_Next(value, &pos, &key, &item):
            if type(<object>key) is not str and not isinstance(<object>key, str):
                raise CanonicalJSONError(f"object key {<object>key!r} is not a string")
            _check(<object>item, depth + 1)
        return 0
    if t is list or t is tuple:
        for v in value:
            _check(v, depth + 1)
        return 0
    # Slow paths: subclasses and other Mappings, mirroring the pure twin's order of checks.
    if isinstance(value, str):
        return 0
    if isinstance(value, int):
        return _check_int(value)
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                raise CanonicalJSONError(f"object key {k!r} is not a string")
            _check(v, depth + 1)
        return 0
    if isinstance(value, (list, tuple)):
        for v in value:
            _check(v, depth + 1)
        return 0
    if isinstance(value, float):
        raise CanonicalJSONError(f"float {value!r} is not allowed in canonical JSON")
    raise CanonicalJSONError(f"cannot encode {type(value).__name__} as canonical JSON")


def _default(obj):
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, (list, tuple)):
        return list(obj)
    raise CanonicalJSONError(f"cannot encode {type(obj).__name__} as canonical JSON")


def encode_canonical_json(value) -> bytes:
    """Return the canonical JSON encoding of ``value`` as UTF-8 bytes."""
    _check(value, 0)
    try:
        return _dumps(value, default=_default, option=_OPTS)
    except _JSONEncodeError as exc:  # lone surrogates, for instance
        raise CanonicalJSONError(str(exc)) from None
