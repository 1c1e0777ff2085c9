# cython: language_level=3, boundscheck=False, wraparound=False
"""Cython twin of ``_power_levels_py``: reading levels and the power-levels rule in C.

The common shapes (exact ``int`` levels, ASCII user IDs, integer-only room versions) are
handled here; anything rarer (stringy or float levels, non-ASCII or subclassed strings,
v1-v9 shape checks) is handed to the pure twin, so both give identical results by
construction. Every value is type-checked before it is read at C level.
"""

from cpython.dict cimport PyDict_Keys, PyDict_Next
from cpython.object cimport PyObject


cdef extern from "Python.h":
    # ``PyDict_GetItem`` without its save/restore of the error indicator (the keys here
    # are hashable): NULL with no error set means "missing".
    PyObject* _dict_find "PyDict_GetItemWithError"(object mp, object key) except? NULL
from cpython.unicode cimport PyUnicode_GET_LENGTH


cdef extern from "Python.h":
    ctypedef unsigned char Py_UCS1
    bint PyUnicode_IS_ASCII(object o)
    # For ASCII (compact, 1-byte kind) strings only: the characters as bytes.
    const Py_UCS1* PyUnicode_1BYTE_DATA(object o)

from hs._native import _power_levels_py as _py

__all__ = [
    "NAMED_LEVELS",
    "is_valid_power_level",
    "is_valid_server_name",
    "is_valid_user_id",
    "parse_power_level",
    "power_levels_violation",
    "room_creators",
    "user_level",
]

INFINITE_POWER = _py.INFINITE_POWER
CREATOR_DEFAULT_LEVEL = _py.CREATOR_DEFAULT_LEVEL
NAMED_LEVELS = _py.NAMED_LEVELS

cdef tuple _NAMED = _py.NAMED_LEVELS
cdef object _py_parse = _py.parse_power_level
cdef object _py_valid_level = _py.is_valid_power_level
cdef object _py_user_id = _py.is_valid_user_id
cdef object _py_server_name = _py.is_valid_server_name
cdef object _py_shape = _py._shape_violation
room_creators = _py.room_creators


# ---- identifiers ------------------------------------------------------------------------

cdef inline bint _dns_char(Py_UCS1 c):
    return (c'a' <= c <= c'z') or (c'A' <= c <= c'Z') or (c'0' <= c <= c'9') \
        or c == c'.' or c == c'-'


cdef inline bint _ipv6_char(Py_UCS1 c):
    return (c'a' <= c <= c'f') or (c'A' <= c <= c'F') or (c'0' <= c <= c'9') \
        or c == c':' or c == c'.'


cdef bint _server_name_ascii(const Py_UCS1* d, Py_ssize_t start, Py_ssize_t end):
    """``_SERVER_NAME.fullmatch`` of the ASCII characters ``d[start:end]``."""
    cdef Py_ssize_t j = start, run
    cdef Py_UCS1 c
    if j < end and d[j] == c'[':
        j += 1
        while j < end and _ipv6_char(d[j]):
            j += 1
        run = j - start - 1
        if run < 2 or run > 45 or j >= end or d[j] != c']':
            return False
        j += 1
    else:
        while j < end and _dns_char(d[j]):
            j += 1
        run = j - start
        if run < 1 or run > 255:
            return False
    if j == end:
        return True
    if d[j] != c':':
        return False
    j += 1
    run = 0
    while j < end:
        c = d[j]
        if not (c'0' <= c <= c'9'):
            return False
        j += 1
        run += 1
    return 1 <= run <= 5


def is_valid_server_name(name):
    if type(name) is not str or not PyUnicode_IS_ASCII(name):
        return _py_server_name(name)
    return _server_name_ascii(PyUnicode_1BYTE_DATA(name), 0, PyUnicode_GET_LENGTH(name))


cdef bint _valid_user_id(object value) except -1:
    cdef const Py_UCS1* d
    cdef Py_ssize_t n, colon, k
    if type(value) is not str or not PyUnicode_IS_ASCII(value):
        return bool(_py_user_id(value))  # subclasses, non-ASCII, non-strings
    n = PyUnicode_GET_LENGTH(value)
    d = PyUnicode_1BYTE_DATA(value)
    # ASCII: one byte per character in UTF-8.
    if n == 0 or d[0] != c'@' or n > 255:
        return False
    colon = -1
    for k in range(1, n):
        if d[k] == c':':
            colon = k
            break
        if d[k] == 0:
            return False  # NUL in the localpart (or no ':' at all): invalid either way
    if colon < 0:
        return False
    return _server_name_ascii(d, colon + 1, n)


def is_valid_user_id(value):
    """``@localpart:server_name`` under the historical (lenient) localpart grammar."""
    return _valid_user_id(value)


# ---- levels -----------------------------------------------------------------------------

cdef inline object _dict_get(dict d, str key):
    cdef PyObject* found = _dict_find(d, key)
    return <object>found if found != NULL else None


# ``hs.core.pdu.PDU``, bound on first use (``hs.core`` imports ``hs._native``). For an
# exact PDU, ``sender`` and ``content`` are read straight from its JSON dict, exactly as
# its properties do, without calling them; anything else goes through its attributes.
cdef object _PDU = None


cdef inline dict _pdu_data(object event):
    global _PDU
    cdef object data
    if _PDU is None:
        from hs.core.pdu import PDU
        _PDU = PDU
    if type(event) is not _PDU:
        return None
    data = event.data
    return <dict>data if type(data) is dict else None


cdef object _sender_of(object event):
    cdef dict data = _pdu_data(event)
    if data is None:
        return event.sender
    return data["sender"]


cdef object _content_of(object event):
    cdef dict data = _pdu_data(event)
    cdef PyObject* found
    if data is None:
        return event.content
    found = _dict_find(data, "content")
    if found != NULL and isinstance(<object>found, dict):
        return <object>found
    return {}


cdef inline object _parse(object value):
    if type(value) is int:
        return value
    if value is None:
        return None
    return _py_parse(value)


def parse_power_level(value):
    """Read a level in any form some room version allows; None if it is not a level."""
    return _parse(value)


cdef inline bint _valid_level(object value, object room_version) except -1:
    if type(value) is int:
        return True
    return bool(_py_valid_level(value, room_version))


def is_valid_power_level(value, room_version):
    """Whether ``value`` may appear as a level in a power levels event of this version."""
    return _valid_level(value, room_version)


cdef bint _is_creator(object user_id, object create_event) except -1:
    """``user_id in room_creators(create_event)`` for v12 (privileged creators)."""
    cdef object content, extra, u
    cdef object sender = _sender_of(create_event)
    if type(user_id) is not str or type(sender) is not str:
        return user_id in _py.room_creators(create_event)
    if user_id == sender:
        return True
    content = _content_of(create_event)
    extra = content.get("additional_creators")
    if type(extra) is list:
        for u in list(<list>extra):
            if type(u) is str:
                if u == user_id:
                    return True
            elif isinstance(u, str):
                return user_id in _py.room_creators(create_event)
    elif isinstance(extra, list):
        return user_id in _py.room_creators(create_event)
    return False


def user_level(user_id, create_event, pl_event):
    """A user's level given the create and power levels events (either may be None)."""
    cdef object content, table, level
    if create_event is not None:
        if create_event.room_version.privileged_creators:
            if _is_creator(user_id, create_event):
                return INFINITE_POWER
        elif pl_event is None and user_id in _py.room_creators(create_event):
            return CREATOR_DEFAULT_LEVEL
    if pl_event is None:
        return 0
    content = _content_of(pl_event)
    table = content.get("users")
    if isinstance(table, dict):
        level = _parse(table.get(user_id))
        if level is not None:
            return level
    level = _parse(content.get("users_default"))
    return 0 if level is None else level


# ---- rule 10: m.room.power_levels ---------------------------------------------------------

cdef object _shape_violation(object content, object room_version):
    cdef object name, table, users, value
    if not room_version.integer_power_levels:
        return _py_shape(content, room_version)
    # 10.1 (v10+)
    for name in _NAMED:
        if name in content and not _valid_level(content[name], room_version):
            return f"power level {name!r} is not an integer"
    # 10.2 (v10+)
    for name in ("events", "notifications"):
        if name in content and not _is_level_table(content[name], room_version):
            return f"power levels {name!r} is not an object of integers"
    # 10.3
    users = content.get("users", {})
    if type(users) is dict:
        verdict = _plain_users_violation(<dict>users)
        if verdict != 2:
            return None if verdict == 0 else (
                "power levels 'users' is not an object of user IDs to levels" if verdict == 1
                else "power levels 'users' has a key that is not a user ID")
    if not isinstance(users, dict) or not _is_level_table(users, room_version):
        return "power levels 'users' is not an object of user IDs to levels"
    for value in list(users):
        if not _valid_user_id(value):
            return "power levels 'users' has a key that is not a user ID"
    return None


cdef int _plain_users_violation(dict users) except -1:
    """10.3 for a plain dict in one pass: 0 valid, 1 a value is not an int level, 3 a key
    is not a user ID (values are judged first, as in the pure twin), 2 "ask the general
    path" (a value that is not an exact int)."""
    cdef Py_ssize_t pos = 0
    cdef PyObject* key
    cdef PyObject* value
    cdef bint bad_key = False
    while PyDict_Next(users, &pos, &key, &value):
        if type(<object>value) is not int:
            return 2
        if not bad_key and not _valid_user_id(<object>key):
            bad_key = True
    return 3 if bad_key else 0


cdef bint _is_level_table(object value, object room_version) except -1:
    cdef object v
    if not isinstance(value, dict):
        return False
    for v in list(value.values()):
        if not _valid_level(v, room_version):
            return False
    return True


cdef inline object _table(object content, str name):
    table = content.get(name)
    return table if isinstance(table, dict) else {}


cdef object _check(str table, object key, object before, object after, object sender,
                   object sender_level):
    if table == "users":
        # 10.9 / 10.10
        if key != sender and before is not None and before >= sender_level:
            return f"cannot change the level of {key}, who is not below you"
        if after is not None and after > sender_level:
            return f"cannot raise {key} above your own level"
        return None
    # 10.7 / 10.8
    if before is not None and before > sender_level:
        return f"cannot change {table}[{key!r}]: current level above yours"
    if after is not None and after > sender_level:
        return f"cannot set {table}[{key!r}] above your own level"
    return None


cdef object _table_violation(object old, object new, str name, object sender,
                             object sender_level):
    """The first violation among entries added, changed or removed: the old table's keys
    in order, then the keys only the new one has (as the pure twin's ``_changes``)."""
    cdef object before = _table(old, name), after = _table(new, name)
    cdef object key, old_level, new_level, reason
    cdef PyObject* found
    cdef PyObject* before_key
    cdef PyObject* before_value
    cdef PyObject* after_key
    cdef PyObject* after_value
    cdef Py_ssize_t before_pos = 0, after_pos = 0, same = 0
    cdef list keys
    if type(before) is not dict or type(after) is not dict:
        return _slow_table_violation(before, after, name, sender, sender_level)
    # New levels are usually the old table copied and edited: while both tables hold the
    # very same str key and the very same int at the same position, the entry is
    # unchanged (what the loops below would find) and is skipped without lookups.
    while PyDict_Next(<dict>before, &before_pos, &before_key, &before_value):
        if not PyDict_Next(<dict>after, &after_pos, &after_key, &after_value) \
                or after_key != before_key or after_value != before_value \
                or type(<object>before_key) is not str or type(<object>before_value) is not int:
            break
        same += 1
    keys = PyDict_Keys(before)  # a snapshot: parsing a stringy level runs Python code
    for key in keys:
        if type(key) is not str:
            return _slow_table_violation(before, after, name, sender, sender_level)
    if same:
        del keys[:same]
    for key in keys:
        found = _dict_find(<dict>before, key)
        old_level = _parse(<object>found) if found != NULL else None
        found = _dict_find(<dict>after, key)
        new_level = _parse(<object>found) if found != NULL else None
        if old_level is new_level and (old_level is None or type(old_level) is int):
            continue
        if old_level != new_level:
            reason = _check(name, key, old_level, new_level, sender, sender_level)
            if reason is not None:
                return reason
    keys = PyDict_Keys(after)
    if same:
        del keys[:same]  # the same keys as the first ``same`` of ``before``
    for key in keys:
        if type(key) is not str:
            return _slow_table_violation(before, after, name, sender, sender_level)
        if _dict_find(<dict>before, key) == NULL:
            found = _dict_find(<dict>after, key)
            new_level = _parse(<object>found) if found != NULL else None
            if new_level is not None:
                reason = _check(name, key, None, new_level, sender, sender_level)
                if reason is not None:
                    return reason
    return None


cdef object _slow_table_violation(object before, object after, str name, object sender,
                                  object sender_level):
    """``_table_violation`` for dict subclasses and non-str keys: generic lookups."""
    cdef object key, old_level, new_level, reason
    for key in list(before):
        old_level = _parse(before[key])
        new_level = _parse(after.get(key))
        if old_level != new_level:
            reason = _check(name, key, old_level, new_level, sender, sender_level)
            if reason is not None:
                return reason
    for key in list(after):
        if key not in before:
            new_level = _parse(after[key])
            if new_level is not None:
                reason = _check(name, key, None, new_level, sender, sender_level)
                if reason is not None:
                    return reason
    return None


def power_levels_violation(content, old, sender, sender_level, room_version, creators):
    """Rule 10 for new levels ``content``: the first violation's reason, or None."""
    cdef object reason, users, listed, name, before, after, table
    cdef tuple tables
    reason = _shape_violation(content, room_version)
    if reason is not None:
        return reason
    # 10.4 (v12)
    if room_version.privileged_creators:
        users = content.get("users", {})
        if type(users) is dict and type(creators) is frozenset:
            listed = frozenset([u for u in <frozenset>creators if u in <dict>users])
        else:
            listed = creators.intersection(users)
        if listed:
            return f"power levels may not list room creators: {sorted(listed)}"
    # 10.5
    if old is None:
        return None
    # 10.6
    cdef bint plain = type(old) is dict and type(content) is dict
    for name in _NAMED:
        if plain:
            before = _parse(_dict_get(<dict>old, name))
            after = _parse(_dict_get(<dict>content, name))
            if before is None and after is None:
                continue
        else:
            before = _parse(old.get(name))
            after = _parse(content.get(name))
        if before == after:
            continue
        if before is not None and before > sender_level:
            return f"cannot change {name}: its current level is above yours"
        if after is not None and after > sender_level:
            return f"cannot set {name} above your own level"
    # 10.7 / 10.8
    if room_version.limit_notifications_power_levels:
        tables = ("events", "notifications")
    else:
        tables = ("events",)
    for table in tables:
        reason = _table_violation(old, content, table, sender, sender_level)
        if reason is not None:
            return reason
    # 10.9 / 10.10
    return _table_violation(old, content, "users", sender, sender_level)
