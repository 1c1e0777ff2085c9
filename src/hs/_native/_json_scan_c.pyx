# cython: language_level=3, boundscheck=False, wraparound=False
"""Cython twin of ``_json_scan_py``: the strict decoder's walk at C speed."""

from cpython.dict cimport PyDict_Next
from cpython.object cimport PyObject
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.unicode cimport PyUnicode_Count

from hs._native._errors import JSONValueError

cdef long long MAX_SAFE = 9007199254740991


cdef class _Counts:
    cdef Py_ssize_t keys
    cdef Py_ssize_t colons
    cdef bint allow_floats
    cdef bint check_ints


cdef str _COLON = ":"


cdef int _walk(object v, _Counts c) except -1:
    cdef type t = type(v)
    cdef PyObject* key
    cdef PyObject* item
    cdef Py_ssize_t pos = 0
    cdef int overflow = 0
    cdef long long n
    if t is str:
        c.colons += PyUnicode_Count(v, _COLON, 0, len(<str>v))
    elif t is dict:
        c.keys += len(<dict>v)
        while PyDict_Next(v, &pos, &key, &item):
            c.colons += PyUnicode_Count(<object>key, _COLON, 0, len(<str>key))
            _walk(<object>item, c)
    elif t is list:
        for x in <list>v:
            _walk(x, c)
    elif t is int:
        if c.check_ints:
            n = PyLong_AsLongLongAndOverflow(v, &overflow)
            if overflow != 0 or n > MAX_SAFE or n < -MAX_SAFE:
                raise JSONValueError(f"integer {v} is outside the canonical JSON range")
    elif t is float:
        if not c.allow_floats:
            raise JSONValueError(f"float {v!r} is not allowed here")
    return 0


def scan(value, bint allow_floats, bint check_ints):
    """Return ``(object keys, colons inside strings)``; raise JSONValueError on a bad number."""
    cdef _Counts c = _Counts()
    c.allow_floats = allow_floats
    c.check_ints = check_ints
    _walk(value, c)
    return c.keys, c.colons


def raw_colons(const unsigned char[:] raw):
    """Colons in the raw JSON text, or -1 if a colon is written escaped (``\\u003a``)."""
    cdef Py_ssize_t i, n = raw.shape[0]
    cdef Py_ssize_t colons = 0
    cdef unsigned char ch
    for i in range(n):
        ch = raw[i]
        if ch == 58:  # ':'
            colons += 1
        elif ch == 92 and i + 5 < n:  # '\' - look for u003a / u003A
            if (raw[i + 1] == 117 and raw[i + 2] == 48 and raw[i + 3] == 48
                    and raw[i + 4] == 51 and (raw[i + 5] == 97 or raw[i + 5] == 65)):
                return -1
    return colons
