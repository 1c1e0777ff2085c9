# cython: language_level=3, boundscheck=False, wraparound=False
"""Cython twin of ``_json_scan_py``: the strict decoder's checks at C speed.

``raw_too_deep`` guards orjson, whose recursive parser overflows the C stack (a segfault)
on deeply nested input; ``scan`` walks a value freshly decoded by orjson (only exact
dict/list/str/int/float/bool/None occur, so the walk runs no Python code and borrowed
references stay valid); ``raw_colons`` counts colons in the raw text; ``parse`` runs all
three in one call. See ``hs.core.json_decode`` for how the counts prove that orjson merged
no duplicate key.
"""

from cpython.object cimport PyObject
from libc.string cimport memchr

import orjson

from hs._native._errors import JSONValueError

#: Deepest nesting of arrays/objects accepted; the same limit as the canonical JSON encoder.
MAX_NESTING = 254

cdef extern from "Python.h":
    ctypedef struct PyTypeObject:
        pass
    PyTypeObject PyUnicode_Type
    PyTypeObject PyDict_Type
    PyTypeObject PyList_Type
    PyTypeObject PyLong_Type
    PyTypeObject PyFloat_Type
    PyTypeObject* Py_TYPE(PyObject*)
    bint PyUnicode_Check(PyObject*)
    int PyUnicode_READY(PyObject*) except -1
    Py_ssize_t PyUnicode_GET_LENGTH(PyObject*)
    int PyUnicode_KIND(PyObject*)
    void* PyUnicode_DATA(PyObject*)
    Py_ssize_t PyList_GET_SIZE(PyObject*)
    PyObject* PyList_GET_ITEM(PyObject*, Py_ssize_t)
    Py_ssize_t PyDict_GET_SIZE(PyObject*)
    int PyDict_Next(PyObject*, Py_ssize_t*, PyObject**, PyObject**)
    long long PyLong_AsLongLongAndOverflow(PyObject*, int*) except? -1
    const char* PyBytes_AS_STRING(object)
    Py_ssize_t PyBytes_GET_SIZE(object)
    ctypedef unsigned short Py_UCS2
    ctypedef unsigned int Py_UCS4

#: ``parse`` verdicts: the value is final / floats appeared / the duplicate-key count is unsure.
OK = 0
HAS_FLOATS = 1
CHECK_DUPLICATES = 2

cdef int _MAX_NESTING = MAX_NESTING
cdef object _loads = orjson.loads
cdef long long _MAX_SAFE = 9007199254740991


cdef struct Scan:
    # One walk's settings and running totals (on the C stack: no allocation per call).
    Py_ssize_t keys
    Py_ssize_t colons
    Py_ssize_t floats
    bint allow_floats
    bint check_ints


cdef inline Py_ssize_t _count_byte(
    const unsigned char* p, Py_ssize_t n, unsigned char byte
) noexcept nogil:
    """Occurrences of ``byte``: byte-sized counters over blocks of at most 255 bytes let the
    compiler vectorise the inner loop."""
    cdef Py_ssize_t i, m
    cdef Py_ssize_t count = 0
    cdef unsigned char c8
    while n > 0:
        m = n if n < 255 else 255
        c8 = 0
        for i in range(m):
            c8 += p[i] == byte
        count += c8
        p += m
        n -= m
    return count


cdef Py_ssize_t _count_colons(PyObject* s) except -1:
    """Colons in a str, reading its compact storage directly."""
    cdef Py_ssize_t n, i, count = 0
    cdef const Py_UCS2* p2
    cdef const Py_UCS4* p4
    cdef int kind
    PyUnicode_READY(s)
    n = PyUnicode_GET_LENGTH(s)
    kind = PyUnicode_KIND(s)
    if kind == 1:
        return _count_byte(<const unsigned char*>PyUnicode_DATA(s), n, 58)
    if kind == 2:
        p2 = <const Py_UCS2*>PyUnicode_DATA(s)
        for i in range(n):
            if p2[i] == 58:
                count += 1
        return count
    p4 = <const Py_UCS4*>PyUnicode_DATA(s)
    for i in range(n):
        if p4[i] == 58:
            count += 1
    return count


cdef int _walk(PyObject* v, int depth, Scan* c) except -1:
    # Borrowed references throughout: only exact builtin types are looked at, so no Python
    # code runs during the walk and nothing can mutate or free what it is reading.
    cdef PyTypeObject* t = Py_TYPE(v)
    cdef PyObject* key
    cdef PyObject* item
    cdef Py_ssize_t pos = 0, i, n
    cdef int overflow = 0
    cdef long long number
    if t == &PyUnicode_Type:
        c.colons += _count_colons(v)
    elif t == &PyDict_Type:
        if depth >= _MAX_NESTING:
            raise JSONValueError(f"JSON is nested more than {MAX_NESTING} levels deep")
        c.keys += PyDict_GET_SIZE(v)
        while PyDict_Next(v, &pos, &key, &item):
            if PyUnicode_Check(key):
                c.colons += _count_colons(key)
            if Py_TYPE(item) == &PyUnicode_Type:
                c.colons += _count_colons(item)
            else:
                _walk(item, depth + 1, c)
    elif t == &PyList_Type:
        if depth >= _MAX_NESTING:
            raise JSONValueError(f"JSON is nested more than {MAX_NESTING} levels deep")
        n = PyList_GET_SIZE(v)
        for i in range(n):
            item = PyList_GET_ITEM(v, i)
            if Py_TYPE(item) == &PyUnicode_Type:
                c.colons += _count_colons(item)
            else:
                _walk(item, depth + 1, c)
    elif t == &PyLong_Type:
        if c.check_ints:
            number = PyLong_AsLongLongAndOverflow(v, &overflow)
            if overflow != 0 or number > _MAX_SAFE or number < -_MAX_SAFE:
                raise _int_error(<object>v)
    elif t == &PyFloat_Type:
        if not c.allow_floats:
            raise JSONValueError(f"float {float.__repr__(<object>v)} is not allowed here")
        c.floats += 1
    return 0


cdef object _int_error(object v):
    cdef Py_ssize_t bits = int.bit_length(v)
    if bits > 64:
        return JSONValueError(f"integer of {bits} bits is outside the canonical JSON range")
    return JSONValueError(f"integer {int.__repr__(v)} is outside the canonical JSON range")


def scan(value, bint allow_floats, bint check_ints):
    """Walk decoded JSON; return ``(object keys, colons inside strings, floats)``.

    Raises JSONValueError for a float (unless ``allow_floats``), an integer outside the
    canonical range (if ``check_ints``) or nesting deeper than MAX_NESTING.
    """
    cdef Scan c
    c.keys = c.colons = c.floats = 0
    c.allow_floats = allow_floats
    c.check_ints = check_ints
    _walk(<PyObject*>value, 0, &c)
    return c.keys, c.colons, c.floats


def raw_colons(bytes raw not None):
    """Colons in the raw JSON text, or -1 if one may be written escaped (``\\u003a``)."""
    return _raw_colons(raw)


cdef Py_ssize_t _raw_colons(bytes raw):
    cdef const char* start = PyBytes_AS_STRING(raw)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(raw)
    cdef Py_ssize_t colons, openers
    if _has_escaped_colon(start, start + n):
        return -1
    _count_colons_openers(<const unsigned char*>start, n, &colons, &openers)
    return colons


cdef bint _has_escaped_colon(const char* p, const char* end):
    """Any backslash followed by u003a/u003A (the same test as ``in`` in the pure twin)."""
    while True:
        p = <const char*>memchr(p, 92, end - p)
        if p == NULL:
            return False
        if (end - p >= 6 and p[1] == b'u' and p[2] == b'0' and p[3] == b'0' and p[4] == b'3'
                and (p[5] == b'a' or p[5] == b'A')):
            return True
        p += 1


cdef void _count_colons_openers(
    const unsigned char* p, Py_ssize_t n, Py_ssize_t* colons, Py_ssize_t* openers
) noexcept nogil:
    """``:`` and ``[``/``{`` bytes in one pass.

    Branch-free, with byte-sized counters over blocks of at most 255 bytes so that the
    compiler vectorises the inner loop (16-64 bytes per instruction).
    """
    cdef Py_ssize_t i, m
    cdef Py_ssize_t c = 0
    cdef Py_ssize_t o = 0
    cdef unsigned char c8, o8, ch
    while n > 0:
        m = n if n < 255 else 255
        c8 = 0
        o8 = 0
        for i in range(m):
            ch = p[i]
            c8 += ch == 58
            o8 += (ch == 91) | (ch == 123)
        c += c8
        o += o8
        p += m
        n -= m
    colons[0] = c
    openers[0] = o


def raw_too_deep(bytes raw not None):
    """True if the text nests arrays/objects more than MAX_NESTING deep (strings skipped).

    Exact for valid JSON. Inside a string a backslash hides the next byte; an unterminated
    string runs to the end of the text (the pure twin's regular expression does the same).
    """
    return _raw_too_deep(raw)


cdef bint _raw_too_deep(bytes raw):
    cdef const char* start = PyBytes_AS_STRING(raw)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(raw)
    cdef Py_ssize_t colons, openers
    _count_colons_openers(<const unsigned char*>start, n, &colons, &openers)
    # Cheap bound first: nesting can never exceed the number of opening brackets.
    return openers > _MAX_NESTING and _nests_too_deep(start, n)


cdef bint _nests_too_deep(const char* start, Py_ssize_t n):
    """The exact depth, skipping strings; stops as soon as it passes MAX_NESTING."""
    cdef Py_ssize_t i = 0
    cdef int depth = 0
    cdef char ch
    while i < n:
        ch = start[i]
        if ch == b'"':
            i += 1
            while i < n:
                ch = start[i]
                if ch == b'\\':
                    i += 2
                elif ch == b'"':
                    break
                else:
                    i += 1
        elif ch == b'[' or ch == b'{':
            depth += 1
            if depth > _MAX_NESTING:
                return True
        elif ch == b']' or ch == b'}':
            depth -= 1
        i += 1
    return False


def parse(bytes raw not None, bint check_ints):
    """The decoder's fast path in one call: depth guard, orjson, scan, duplicate-key count.

    Returns ``(value, verdict)`` with verdict OK, HAS_FLOATS (floats are counted, not
    refused: orjson reads integers beyond 64 bits as floats, so the caller must re-read
    exactly) or CHECK_DUPLICATES (the colon count cannot prove there is no duplicate key).
    Raises JSONValueError (too deep, integer out of range) or orjson.JSONDecodeError.
    """
    cdef Scan c
    cdef const char* start = PyBytes_AS_STRING(raw)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(raw)
    cdef Py_ssize_t colons, openers
    _count_colons_openers(<const unsigned char*>start, n, &colons, &openers)
    if openers > _MAX_NESTING and _nests_too_deep(start, n):
        raise JSONValueError(f"JSON is nested more than {MAX_NESTING} levels deep")
    value = _loads(raw)
    c.keys = c.colons = c.floats = 0
    c.allow_floats = True
    c.check_ints = check_ints
    _walk(<PyObject*>value, 0, &c)
    if c.floats:
        return value, HAS_FLOATS
    if c.keys:
        if colons - c.colons != c.keys or _has_escaped_colon(start, start + n):
            return value, CHECK_DUPLICATES
    return value, OK
