# cython: language_level=3, boundscheck=False, wraparound=False
"""Cython twin of ``_event_hash_py``: redaction, content hash and reference hash.

``hash_event`` walks the event's top level once, building both the content-hash input
(everything but ``unsigned``/``signatures``/``hashes``) and the redacted object without
``signatures``/``unsigned`` (exactly what server signatures cover), then encodes each with the canonical JSON encoder (compiled when built) and hashes
it with OpenSSL's SHA-256 through ``hashlib``. The rule tables are the pure twin's, so the
two twins cannot drift apart.
"""

from cpython.dict cimport PyDict_Next, PyDict_SetItem
from cpython.object cimport PyObject

import hashlib

from hs._native._errors import EventHashError
from hs._native._event_hash_py import RULES as _PY_RULES
from hs._native.canonical_json import encode_canonical_json as _encode

_sha256 = hashlib.sha256

# Per rules value: (top-level keep set, per-type content keys or None for "keep all").
cdef dict _RULES = dict(_PY_RULES)
cdef object _MISSING = object()
cdef str _CONTENT = "content"
cdef str _TYPE = "type"
cdef str _SIGNATURES = "signatures"
cdef str _UNSIGNED = "unsigned"
cdef str _HASHES = "hashes"
cdef frozenset _NOT_IN_CONTENT_HASH = frozenset(("unsigned", "signatures", "hashes"))
cdef str _MEMBER = "m.room.member"
cdef str _TPI = "third_party_invite"
cdef str _SIGNED = "signed"


cdef tuple _rules(object rules):
    cdef object found
    if type(rules) is not int and not isinstance(rules, int):
        raise EventHashError(f"unknown redaction rules {rules!r}")
    found = _RULES.get(rules)
    if found is None:
        raise EventHashError(f"unknown redaction rules {rules!r}")
    return <tuple>found


cdef inline int _check_event(object event) except -1:
    if not isinstance(event, dict):
        raise EventHashError(f"an event must be a JSON object, not {type(event).__name__}")
    return 0


cdef dict _redact_content(object content, object etype, int rules, dict table):
    cdef object keep
    cdef dict src
    cdef dict out
    cdef object tpi
    cdef object value
    if not isinstance(content, dict):
        return {}
    if not isinstance(etype, str):
        return {}
    keep = table.get(etype, _MISSING)
    if keep is _MISSING:
        return {}
    src = <dict>content
    if keep is None:
        return dict(src)
    out = {}
    # ``dict.get`` (not borrowed references): content keys may be arbitrary objects.
    for key in <tuple>keep:
        value = src.get(key, _MISSING)
        if value is not _MISSING:
            out[key] = value
    if rules >= 11 and etype == _MEMBER:
        tpi = src.get(_TPI)
        if isinstance(tpi, dict) and _SIGNED in tpi:
            out[_TPI] = {_SIGNED: tpi[_SIGNED]}
    return out


cdef dict _redacted(dict event, int rules, frozenset top, dict table, bint signed_only):
    """The redacted object; without ``signatures``/``unsigned`` when ``signed_only``."""
    cdef dict out = {}
    cdef Py_ssize_t pos = 0
    cdef PyObject* key
    cdef PyObject* value
    while PyDict_Next(event, &pos, &key, &value):
        if type(<object>key) is not str:
            # Hashing or comparing such a key may run Python code that mutates ``event``
            # under PyDict_Next's borrowed references: take the safe path instead.
            return _redacted_safe(event, rules, top, table, signed_only)
        if <object>key in top:
            if signed_only and (<object>key == _SIGNATURES or <object>key == _UNSIGNED):
                continue
            PyDict_SetItem(out, <object>key, <object>value)
    if _CONTENT in out:
        out[_CONTENT] = _redact_content(out[_CONTENT], event.get(_TYPE), rules, table)
    return out


cdef dict _redacted_safe(dict event, int rules, frozenset top, dict table, bint signed_only):
    cdef dict out = {}
    for k, v in list(event.items()):
        if k in top:
            out[k] = v
    if signed_only:
        out.pop(_SIGNATURES, None)
        out.pop(_UNSIGNED, None)
    if _CONTENT in out:
        out[_CONTENT] = _redact_content(out[_CONTENT], event.get(_TYPE), rules, table)
    return out


def redact(event, rules):
    """Return the redacted copy of ``event`` (new top-level and ``content`` dicts)."""
    _check_event(event)
    cdef tuple spec = _rules(rules)
    return _redacted(<dict>event, <int>rules, <frozenset>spec[0], <dict>spec[1], False)


cdef dict _content_input(dict event):
    cdef dict out = {}
    cdef Py_ssize_t pos = 0
    cdef PyObject* key
    cdef PyObject* value
    while PyDict_Next(event, &pos, &key, &value):
        if type(<object>key) is not str:
            # See ``_redacted``: no borrowed references across Python-level hashing.
            return {k: v for k, v in list(event.items()) if k not in _NOT_IN_CONTENT_HASH}
        if <object>key not in _NOT_IN_CONTENT_HASH:
            PyDict_SetItem(out, <object>key, <object>value)
    return out


def content_hash(event):
    """SHA-256 digest of the canonical event without ``unsigned``, ``signatures``, ``hashes``."""
    _check_event(event)
    return _sha256(_encode(_content_input(<dict>event))).digest()


def reference_hash(event, rules):
    """SHA-256 digest of the canonical redacted event without ``signatures``/``unsigned``."""
    _check_event(event)
    cdef tuple spec = _rules(rules)
    cdef dict red = _redacted(<dict>event, <int>rules, <frozenset>spec[0], <dict>spec[1], True)
    return _sha256(_encode(red)).digest()


cdef tuple _hash_one(object event, int rules, frozenset top, dict table):
    _check_event(event)
    cdef dict ev = <dict>event
    cdef dict content_in = {}
    cdef dict red = {}
    cdef Py_ssize_t pos = 0
    cdef PyObject* key
    cdef PyObject* value
    cdef bint odd_key = False
    # One walk fills both the content-hash input and the signed (redacted) object.
    while PyDict_Next(ev, &pos, &key, &value):
        if type(<object>key) is not str:
            odd_key = True
            break
        if <object>key not in _NOT_IN_CONTENT_HASH:
            PyDict_SetItem(content_in, <object>key, <object>value)
            if <object>key in top:
                PyDict_SetItem(red, <object>key, <object>value)
        elif <object>key == _HASHES:  # every rule set keeps ``hashes`` (and signs it)
            PyDict_SetItem(red, <object>key, <object>value)
    if odd_key:
        content_in = _content_input(ev)
        red = _redacted_safe(ev, rules, top, table, True)
    elif _CONTENT in red:
        red[_CONTENT] = _redact_content(red[_CONTENT], ev.get(_TYPE), rules, table)
    cdef bytes chash = _sha256(_encode(content_in)).digest()
    cdef bytes signed = _encode(red)
    return (chash, _sha256(signed).digest(), signed)


def hash_event(event, rules):
    """``(content hash, reference hash, signed bytes)`` of one event."""
    _check_event(event)
    cdef tuple spec = _rules(rules)
    return _hash_one(event, <int>rules, <frozenset>spec[0], <dict>spec[1])


def hash_events(events, rules):
    """``hash_event`` over a list; the first bad event raises."""
    cdef tuple spec = _rules(rules)
    cdef frozenset top = <frozenset>spec[0]
    cdef dict table = <dict>spec[1]
    cdef int r = <int>rules
    return [_hash_one(event, r, top, table) for event in events]
