# cython: language_level=3, boundscheck=False, wraparound=False
"""Cython twin of ``_auth_rules_py``: the auth rules' verdict for state resolution in C.

State resolution only needs allow/deny, against a state map rather than the event's own
auth events (``check_auth_rules(..., check_auth_event_selection=False)``). The common
shapes (plain ``PDU`` objects with dict JSON, power levels / join rules / member / other
non-create events) are decided here in the order ``hs.core.auth.rules`` checks them; the
rare ones (create events, third-party invites, restricted-join signatures, v1-v5 aliases,
v1-v2 redactions, subclassed or non-JSON values) go to the ``fallback`` (the full rules),
so both twins agree by construction.
"""

from cpython.object cimport PyObject


cdef extern from "Python.h":
    # ``PyDict_GetItem`` without its save/restore of the error indicator (the keys here
    # are hashable): NULL with no error set means "missing".
    PyObject* _dict_find "PyDict_GetItemWithError"(object mp, object key) except? NULL

from hs._native import _power_levels_c as _levels
from hs._native import _power_levels_py as _levels_py

__all__ = ["auth_keys", "is_allowed"]

cdef object _user_level = _levels.user_level
cdef object _violation = _levels.power_levels_violation
# The auth rules parse named and per-event levels with the pure reader; keep that one.
cdef object _parse = _levels_py.parse_power_level

# ``hs.core`` imports ``hs._native``: bind its classes on first use, not at import.
cdef object _PDU = None
cdef object _V1_FORMAT = None

cdef tuple CREATE = ("m.room.create", "")
cdef tuple POWER_LEVELS = ("m.room.power_levels", "")
cdef tuple JOIN_RULES = ("m.room.join_rules", "")
cdef str MEMBER = "m.room.member"
cdef dict _NO_CONTENT = {}  # what ``PDU.content`` reads for non-object content (never mutated)
cdef frozenset _NOBODY = frozenset()

# Verdicts: ALLOW / DENY, or UNKNOWN = "ask the full rules".
cdef enum:
    DENY = 0
    ALLOW = 1
    UNKNOWN = -1


#: ``_join_rule``'s answer for a join rule left to the full rules.
cdef object UNKNOWN_RULE = object()


class _Bail(Exception):
    """Raised deep inside a rule for a shape left to the full rules."""


cdef int _bind() except -1:
    global _PDU, _V1_FORMAT
    if _PDU is None:
        from hs.core.pdu import PDU
        from hs.core.room_versions import EventFormat
        _V1_FORMAT = EventFormat.V1
        _PDU = PDU
    return 0


cdef inline dict _data(object pdu):
    """``pdu.data`` for an exact ``PDU`` holding a plain dict; None otherwise (bail)."""
    cdef object data
    if type(pdu) is not _PDU:
        return None
    data = pdu.data
    return <dict>data if type(data) is dict else None


cdef inline dict _content(dict data):
    """``PDU.content``: the dict, or ``{}`` for anything else; None for a dict subclass."""
    cdef PyObject* found = _dict_find(data, "content")
    if found == NULL:
        return _NO_CONTENT
    if type(<object>found) is dict:
        return <dict><object>found
    return None if isinstance(<object>found, dict) else _NO_CONTENT


cdef inline bint _odd_str(object value):
    """A str subclass: compared with custom semantics, so left to the full rules."""
    return type(value) is not str and isinstance(value, str)


cdef inline str _domain(str identifier):
    """``domain_of``: the part after the first ``:``, or None."""
    cdef Py_ssize_t i = identifier.find(":")
    return None if i < 0 else identifier[i + 1:]


cdef list _keys(str etype, str sender, object state_key, dict content, object rv, bint v12):
    """``auth_types_for_event`` for the shapes handled here; None to bail."""
    cdef list wanted = []
    cdef object membership, authoriser
    if etype == "m.room.create":
        return wanted
    if not v12:
        wanted.append(CREATE)
    wanted.append(POWER_LEVELS)
    wanted.append((MEMBER, sender))
    if etype == MEMBER and state_key is not None:
        if state_key != sender:
            wanted.append((MEMBER, state_key))
        membership = content.get("membership")
        if _odd_str(membership):
            return None
        if membership == "join" or membership == "invite" or membership == "knock":
            wanted.append(JOIN_RULES)
        if membership == "invite" and content.get("third_party_invite") is not None:
            return None
        if membership == "join" and rv.restricted_join_rule:
            authoriser = content.get("join_authorised_via_users_server")
            if _odd_str(authoriser):
                return None
            if type(authoriser) is str and authoriser != sender and authoriser != state_key:
                wanted.append((MEMBER, authoriser))
    return wanted


cdef class _State:
    """The narrowed state (``_relevant_state``) and ``AuthState``'s questions over it."""

    cdef dict events
    cdef object create
    cdef object pl
    cdef dict pl_content  # None: no power levels event

    cdef object membership(self, str user_id):
        cdef PyObject* found = _dict_find(self.events, (MEMBER, user_id))
        cdef object value
        if found == NULL:
            return None
        value = (<dict>(<object>found).data).get("content")
        if type(value) is not dict:
            if isinstance(value, dict):
                raise _Bail()
            return None
        value = (<dict>value).get("membership")
        if type(value) is str:
            return value
        if isinstance(value, str):
            raise _Bail()
        return None

    cdef object user_level(self, str user_id):
        return _user_level(user_id, self.create, self.pl)

    cdef object named_level(self, str name, object default):
        cdef object value, level
        if self.pl_content is None:
            return default
        value = self.pl_content.get(name)
        if value is None:
            return default
        level = value if type(value) is int else _parse(value)
        return default if level is None else level


cdef int _verdict(object event, dict auth_events) except -2:
    """The rules of ``hs.core.auth.rules.check_auth_rules`` in its order, without the
    auth-events-list checks (3.x); UNKNOWN wherever the full rules must decide."""
    cdef dict data = _data(event)
    cdef dict content, cdata, pdata, relevant
    cdef list keys
    cdef object rv, etype, sender, state_key, room_id, create, pdu, value, key
    cdef bint v12
    cdef _State state
    if data is None:
        return UNKNOWN
    rv = event.room_version
    etype = data.get("type")
    sender = data.get("sender")
    state_key = data.get("state_key")
    if type(etype) is not str or type(sender) is not str:
        return UNKNOWN
    if state_key is not None and type(state_key) is not str:
        return UNKNOWN
    content = _content(data)
    if content is None or etype == "m.room.create":
        return UNKNOWN
    room_id = data.get("room_id")
    v12 = rv.room_id_from_create_event
    if v12:
        # 2 (v12): the room ID is the ID of an accepted create event.
        create = auth_events.get(CREATE)
        if create is None:
            return DENY
        if _data(create) is None or type(create.event_id) is not str:
            return UNKNOWN
        if create.rejected_reason is not None:
            return DENY
        if room_id != "!" + (<str>create.event_id)[1:]:
            return DENY
    keys = _keys(<str>etype, <str>sender, state_key, content, rv, v12)
    if keys is None:
        return UNKNOWN
    if v12:
        keys.append(CREATE)
    relevant = {}
    for key in keys:
        value = auth_events.get(key)
        if value is not None or key in auth_events:
            relevant[key] = value
    # 2.4 / 3.5 / 4
    create = relevant.get(CREATE)
    if create is None:
        return DENY
    for key, pdu in relevant.items():
        pdata = _data(pdu)
        if pdata is None:
            return UNKNOWN
        if v12 and key == CREATE:
            continue
        if pdata.get("room_id") != room_id:
            return DENY
    cdata = <dict>create.data
    value = _content(cdata)
    if value is None:
        return UNKNOWN
    if (<dict>value).get("m.federate") is False:
        value = cdata.get("sender")
        if type(value) is not str:
            return UNKNOWN
        if _domain(<str>sender) != _domain(<str>value):
            return DENY
    if etype == "m.room.aliases" and rv.special_case_aliases_auth:
        return UNKNOWN
    state = _State.__new__(_State)
    state.events = relevant
    state.create = create
    state.pl = relevant.get(POWER_LEVELS)
    if state.pl is None:
        state.pl_content = None
    else:
        state.pl_content = _content(<dict>state.pl.data)
        if state.pl_content is None:
            return UNKNOWN
    # 5
    if etype == MEMBER:
        return _membership(event, data, <str>sender, state_key, content, rv, state)
    # 6
    if state.membership(<str>sender) != "join":
        return DENY
    # 7
    if etype == "m.room.third_party_invite":
        return DENY if state.user_level(<str>sender) < state.named_level("invite", 0) else ALLOW
    # 8
    if _required_level(<str>etype, state_key, state) > state.user_level(<str>sender):
        return DENY
    # 9
    if state_key is not None and (<str>state_key).startswith("@") and state_key != sender:
        return DENY
    # 10
    if etype == "m.room.power_levels":
        return _power_levels(<str>sender, content, rv, state)
    # 11 (v1-v2 redactions)
    if etype == "m.room.redaction" and rv.event_format is _V1_FORMAT:
        return UNKNOWN
    return ALLOW


cdef object _required_level(str etype, object state_key, _State state):
    """``get_event_power_level``."""
    cdef object table, level
    if state.pl_content is not None:
        table = state.pl_content.get("events")
        if type(table) is dict:
            table = (<dict>table).get(etype)
            if table is not None:
                level = table if type(table) is int else _parse(table)
                if level is not None:
                    return level
        elif isinstance(table, dict):
            raise _Bail()
    if state_key is not None:
        return state.named_level("state_default", 50)
    return state.named_level("events_default", 0)



cdef frozenset _creators(object create):
    """``room_creators`` of the create event (its own room version); None to bail."""
    cdef dict cdata = <dict>create.data
    cdef dict content = _content(cdata)
    cdef object crv = create.room_version, value, extra, u
    cdef set users
    if content is None:
        return None
    if not crv.implicit_room_creator:
        value = content.get("creator")
        if _odd_str(value):
            return None
        return frozenset((value,)) if type(value) is str else _NOBODY
    value = cdata.get("sender")
    if type(value) is not str:
        return None
    users = {value}
    if crv.privileged_creators:
        extra = content.get("additional_creators")
        if type(extra) is list:
            for u in <list>extra:
                if type(u) is str:
                    users.add(u)
                elif isinstance(u, str):
                    return None
        elif isinstance(extra, list):
            return None
    return frozenset(users)


cdef int _power_levels(str sender, dict content, object rv, _State state) except -2:
    """Rule 10 via the power-levels twin (``check_power_levels_event``)."""
    cdef frozenset creators = _NOBODY
    cdef object sender_level = 0
    if rv.privileged_creators:
        creators = _creators(state.create)
        if creators is None:
            return UNKNOWN
    if state.pl_content is not None:
        sender_level = state.user_level(sender)
    if _violation(content, state.pl_content, sender, sender_level, rv, creators) is None:
        return ALLOW
    return DENY


cdef int _membership(object event, dict data, str sender, object target, dict content,
                     object rv, _State state) except -2:
    """``check_membership_event``."""
    cdef object membership = content.get("membership")
    if target is None or "membership" not in content:
        return DENY
    if rv.restricted_join_rule and "join_authorised_via_users_server" in content:
        return UNKNOWN  # 5.2: signature check
    if type(membership) is not str:
        return UNKNOWN if isinstance(membership, str) else DENY
    if membership == "join":
        return _join(event, sender, <str>target, content, rv, state)
    if membership == "invite":
        if content.get("third_party_invite") is not None:
            return UNKNOWN
        if state.membership(sender) != "join":
            return DENY
        if state.membership(<str>target) in ("join", "ban"):
            return DENY
        return DENY if state.user_level(sender) < state.named_level("invite", 0) else ALLOW
    if membership == "leave":
        return _leave(sender, <str>target, rv, state)
    if membership == "ban":
        if state.membership(sender) != "join":
            return DENY
        level = state.user_level(sender)
        if level < state.named_level("ban", 50):
            return DENY
        return DENY if state.user_level(<str>target) >= level else ALLOW
    if membership == "knock" and rv.knock:
        value = _join_rule(state)
        if value is UNKNOWN_RULE:
            return UNKNOWN
        if not (value == "knock" or (value == "knock_restricted"
                                     and rv.knock_restricted_join_rule)):
            return DENY
        if sender != target:
            return DENY
        return DENY if state.membership(sender) in ("ban", "invite", "join") else ALLOW
    return DENY



cdef object _join_rule(_State state):
    """``AuthState.join_rule``: the rule if it is a str, else None."""
    cdef PyObject* found = _dict_find(state.events, JOIN_RULES)
    cdef object content, rule
    if found == NULL:
        return None
    content = _content(<dict>(<object>found).data)
    if content is None:
        return UNKNOWN_RULE
    rule = (<dict>content).get("join_rule")
    if type(rule) is str:
        return rule
    return UNKNOWN_RULE if isinstance(rule, str) else None


cdef int _join(object event, str sender, str target, dict content, object rv,
               _State state) except -2:
    cdef object create = state.create, creator, current, rule, authoriser
    cdef dict ccontent
    # 5.3.1: the creator's first join, right after the create event.
    if event.prev_event_ids() == (create.event_id,):
        if create.room_version.implicit_room_creator:
            creator = (<dict>create.data).get("sender")
            if type(creator) is not str:
                return UNKNOWN
            if target == creator:
                return ALLOW
        else:
            ccontent = _content(<dict>create.data)
            if ccontent is None:
                return UNKNOWN
            creator = ccontent.get("creator")
            if _odd_str(creator):
                return UNKNOWN
            if type(creator) is str and target == creator:
                return ALLOW
    # 5.3.2
    if sender != target:
        return DENY
    current = state.membership(target)
    # 5.3.3
    if current == "ban":
        return DENY
    rule = _join_rule(state)
    if rule is UNKNOWN_RULE:
        return UNKNOWN
    # 5.3.4
    if rule == "invite" or (rule == "knock" and rv.knock):
        return ALLOW if current == "invite" or current == "join" else DENY
    # 5.3.5
    if (rule == "restricted" and rv.restricted_join_rule) or (
            rule == "knock_restricted" and rv.knock_restricted_join_rule):
        if current == "invite" or current == "join":
            return ALLOW
        authoriser = content.get("join_authorised_via_users_server")
        if type(authoriser) is not str:
            return UNKNOWN if isinstance(authoriser, str) else DENY
        if state.membership(<str>authoriser) != "join":
            return DENY
        if state.user_level(<str>authoriser) < state.named_level("invite", 0):
            return DENY
        return ALLOW
    # 5.3.6 / 5.3.7
    return ALLOW if rule == "public" else DENY


cdef int _leave(str sender, str target, object rv, _State state) except -2:
    cdef object current, level
    # 5.5.1
    if sender == target:
        current = state.membership(target)
        if current == "invite" or current == "join" or (current == "knock" and rv.knock):
            return ALLOW
        return DENY
    # 5.5.2
    if state.membership(sender) != "join":
        return DENY
    level = state.user_level(sender)
    # 5.5.3
    if state.membership(target) == "ban" and level < state.named_level("ban", 50):
        return DENY
    # 5.5.4 / 5.5.5
    if level < state.named_level("kick", 50):
        return DENY
    return DENY if state.user_level(target) >= level else ALLOW


# ---- public API --------------------------------------------------------------------------

def is_allowed(event, auth_events, fallback):
    """The auth rules' verdict on ``event`` against the state map ``auth_events``.

    ``fallback(event, auth_events)`` is the full rules' verdict (a bool), used for every
    shape not handled here. A malformed event (``KeyError``/``TypeError``/``ValueError``
    from the levels readers) is not allowed, as in the resolver's wrapper of the rules.
    """
    cdef int verdict
    _bind()
    if type(auth_events) is not dict:
        return bool(fallback(event, auth_events))
    try:
        verdict = _verdict(event, <dict>auth_events)
    except _Bail:
        verdict = UNKNOWN
    except (KeyError, TypeError, ValueError):
        return False
    if verdict == UNKNOWN:
        return bool(fallback(event, auth_events))
    return verdict == ALLOW


def auth_keys(events, fallback):
    """``auth_types_for_event`` of each event; ``fallback(event)`` for shapes not handled
    here (the full selection)."""
    cdef list out = []
    cdef list keys
    cdef dict data, content
    cdef object ev, etype, sender, state_key
    _bind()
    for ev in events:
        keys = None
        data = _data(ev)
        if data is not None:
            etype = data.get("type")
            sender = data.get("sender")
            state_key = data.get("state_key")
            content = _content(data)
            if type(etype) is str and type(sender) is str and content is not None and (
                    state_key is None or type(state_key) is str):
                keys = _keys(<str>etype, <str>sender, state_key, content, ev.room_version,
                             ev.room_version.room_id_from_create_event)
        out.append(fallback(ev) if keys is None else keys)
    return out
