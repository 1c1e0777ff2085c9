"""``hs._native.power_levels``: both twins of the level readers and rule 10's checks."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import twin_params, twins
from hs._native import _power_levels_py
from hs.core.pdu import PDU
from hs.core.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion

TWINS = twin_params("power_levels")
V1, V6, V9, V10, V11, V12 = (KNOWN_ROOM_VERSIONS[v] for v in ("1", "6", "9", "10", "11", "12"))
ALL_VERSIONS = list(KNOWN_ROOM_VERSIONS.values())
ALICE, BOB, CAROL = "@alice:example.org", "@bob:example.org", "@carol:example.org"


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        return ("ok", fn(*args))
    except Exception as exc:
        return ("error", type(exc))


def _pdu(rv: RoomVersion, etype: str, sender: str, content: Any, eid: str) -> PDU:
    data: dict[str, Any] = {
        "type": etype,
        "sender": sender,
        "content": content,
        "state_key": "",
        "room_id": "!r:example.org",
        "auth_events": [],
        "prev_events": [],
        "depth": 1,
        "origin_server_ts": 0,
        "hashes": {"sha256": ""},
        "signatures": {},
        "event_id": eid,
    }
    return PDU(data, rv, event_id=eid)


# ---- identifiers --------------------------------------------------------------------------

USER_IDS = [
    ("@alice:example.org", True),
    ("@alice:example.org:8448", True),
    ("@a:[::1]", True),
    ("@a:[::1]:80", True),
    ("@a:1.2.3.4", True),
    ("@:example.org", True),
    ("@al:ice:example.org", False),  # the server name would be "ice:example.org"
    ("@alice", False),
    ("alice:example.org", False),
    ("", False),
    ("@", False),
    ("@a:", False),
    ("@a\x00b:example.org", False),
    ("@a:example.org:", False),
    ("@a:example.org:123456", False),
    ("@a:example.org:12a", False),
    ("@a:[1]", False),
    ("@a:[" + "1" * 46 + "]", False),
    ("@a:[" + "1" * 45 + "]", True),
    ("@a:[::1", False),
    ("@a:ex_ample.org", False),
    ("@a:" + "a" * 252, True),  # 255 bytes
    ("@a:" + "a" * 253, False),
    ("@é:example.org", True),
    ("@é:" + "a" * 252, False),  # 255 characters but 256 bytes
    ("@a:exämple.org", False),
    ("@\ud800:example.org", False),  # lone surrogate
    ("@a:example.org\n", False),
    (None, False),
    (42, False),
    (b"@a:example.org", False),
]


@pytest.mark.parametrize("m", TWINS)
@pytest.mark.parametrize(("value", "valid"), USER_IDS, ids=[repr(v)[:24] for v, _ in USER_IDS])
def test_is_valid_user_id(m: ModuleType, value: object, valid: bool) -> None:
    assert m.is_valid_user_id(value) is valid


class _Str(str):
    pass


@pytest.mark.parametrize("m", TWINS)
def test_str_subclasses_read_like_str(m: ModuleType) -> None:
    assert m.is_valid_user_id(_Str("@a:example.org")) is True
    assert m.is_valid_server_name(_Str("example.org")) is True
    assert m.parse_power_level(_Str(" 12 ")) == 12


_ID_ALPHABET = st.sampled_from([*"@:[].-_aZ09\x00é \n", "\ud800", "1"])


@settings(max_examples=500, deadline=None)
@given(st.text(_ID_ALPHABET, max_size=20))
def test_twins_agree_on_identifiers(text: str) -> None:
    mods = twins("power_levels")
    for candidate in (text, "@" + text, "@a:" + text):
        assert len({m.is_valid_user_id(candidate) for m in mods}) == 1
        assert len({m.is_valid_server_name(candidate) for m in mods}) == 1


# ---- levels -------------------------------------------------------------------------------

LEVELS = [
    (50, 50),
    (-3, -3),
    (True, None),
    (False, None),
    (None, None),
    ("12", 12),
    (" -7 ", -7),
    ("+5", 5),
    ("1_0", None),
    ("٣", None),
    ("", None),
    (12.9, 12),
    (math.inf, None),
    (math.nan, None),
    ([1], None),
    ({"a": 1}, None),
    (2**70, 2**70),
]


@pytest.mark.parametrize("m", TWINS)
@pytest.mark.parametrize(("value", "expected"), LEVELS)
def test_parse_power_level(m: ModuleType, value: object, expected: int | None) -> None:
    assert m.parse_power_level(value) == expected


@pytest.mark.parametrize("m", TWINS)
@pytest.mark.parametrize("rv", [V1, V6, V10], ids=lambda v: f"v{v.identifier}")
@pytest.mark.parametrize("value", [v for v, _ in LEVELS])
def test_is_valid_power_level_matches_pure(m: ModuleType, rv: RoomVersion, value: object) -> None:
    assert m.is_valid_power_level(value, rv) is _power_levels_py.is_valid_power_level(value, rv)


@pytest.mark.parametrize("m", TWINS)
def test_user_level(m: ModuleType) -> None:
    create12 = _pdu(V12, "m.room.create", ALICE, {"additional_creators": [CAROL, 3]}, "$c12")
    create11 = _pdu(V11, "m.room.create", ALICE, {}, "$c11")
    create9 = _pdu(V9, "m.room.create", ALICE, {"creator": BOB}, "$c9")
    pl12 = _pdu(V12, "m.room.power_levels", BOB, {"users": {BOB: 50}, "users_default": 5}, "$p")
    pl11 = _pdu(V11, "m.room.power_levels", ALICE, {"users": {BOB: "7"}}, "$p11")
    assert m.user_level(ALICE, create12, pl12) == math.inf
    assert m.user_level(CAROL, create12, None) == math.inf
    assert m.user_level(BOB, create12, pl12) == 50
    assert m.user_level("@x:example.org", create12, pl12) == 5
    assert m.user_level(ALICE, create11, None) == 100
    assert m.user_level(BOB, create11, None) == 0
    assert m.user_level(BOB, create11, pl11) == 7
    assert m.user_level(ALICE, create11, pl11) == 0
    assert m.user_level(BOB, create9, None) == 100
    assert m.user_level(ALICE, None, None) == 0


# ---- rule 10 ------------------------------------------------------------------------------

OLD = {"users": {ALICE: 100, BOB: 50}, "events": {"m.room.name": 50}, "ban": 50}

VIOLATIONS: list[tuple[str, RoomVersion, dict[str, Any], int | float, str | None]] = [
    ("no change", V11, OLD, 100, None),
    ("raise bob to own level", V11, {**OLD, "users": {ALICE: 100, BOB: 100}}, 100, None),
    ("raise bob above", V11, {**OLD, "users": {ALICE: 100, BOB: 101}}, 100, "cannot raise"),
    ("demote peer", V11, {**OLD, "users": {ALICE: 100, BOB: 10}}, 50, "cannot change the level"),
    ("demote self", V11, {**OLD, "users": {ALICE: 10, BOB: 50}}, 100, None),
    ("remove bob", V11, {**OLD, "users": {ALICE: 100}}, 100, None),
    ("remove bob as peer", V11, {**OLD, "users": {ALICE: 100}}, 50, "cannot change the level"),
    ("ban above", V11, {**OLD, "ban": 101}, 100, "cannot set ban"),
    ("ban was above", V11, {**OLD, "ban": 10}, 40, "cannot change ban"),
    ("events above", V11, {**OLD, "events": {"m.room.name": 200}}, 100, "cannot set events"),
    ("events was above", V11, {**OLD, "events": {}}, 40, "cannot change events"),
    ("notifications", V11, {**OLD, "notifications": {"room": 200}}, 100, "cannot set notif"),
    ("notifications v1", V1, {**OLD, "notifications": {"room": 200}}, 100, None),
    ("string level v10", V10, {**OLD, "ban": "50"}, 100, "power level 'ban'"),
    ("string level v9", V9, {**OLD, "ban": "50"}, 100, None),
    ("bad events table", V11, {**OLD, "events": {"x": True}}, 100, "power levels 'events'"),
    ("users not a dict", V11, {**OLD, "users": [ALICE]}, 100, "power levels 'users'"),
    ("bad user ID", V11, {**OLD, "users": {"alice": 0}}, 100, "power levels 'users' has"),
    ("float v1", V1, {**OLD, "kick": math.inf}, 100, "power levels hold"),
    ("float v1 ok", V1, {**OLD, "kick": 40.5}, 100, None),
    ("creator listed v12", V12, {**OLD, "users": {ALICE: 100}}, math.inf, "power levels may not"),
]


@pytest.mark.parametrize("m", TWINS)
@pytest.mark.parametrize(
    ("rv", "content", "sender_level", "expected"),
    [v[1:] for v in VIOLATIONS],
    ids=[v[0] for v in VIOLATIONS],
)
def test_power_levels_violation(
    m: ModuleType, rv: RoomVersion, content: dict[str, Any], sender_level: Any, expected: Any
) -> None:
    old = dict(OLD)
    creators = frozenset({ALICE}) if rv.privileged_creators else frozenset()
    reason = m.power_levels_violation(content, old, ALICE, sender_level, rv, creators)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and reason.startswith(expected), reason
    assert m.power_levels_violation(content, None, ALICE, 0, rv, creators) == (
        _power_levels_py.power_levels_violation(content, None, ALICE, 0, rv, creators)
    )


_level_value = st.one_of(
    st.integers(-5, 120),
    st.sampled_from([True, None, "50", " 7", "x", 10.5, math.inf, 2**64, [1], {}]),
)
_user_key = st.sampled_from([ALICE, BOB, CAROL, "bob", "@b:ex:12", "@é:x", 5])
_level_table = st.dictionaries(_user_key, _level_value, max_size=4)
_content = st.dictionaries(
    st.sampled_from(["users", "events", "notifications", "ban", "kick", "users_default", "x"]),
    st.one_of(_level_value, _level_table, st.dictionaries(st.text(max_size=2), _level_value)),
    max_size=5,
)


@settings(max_examples=400, deadline=None)
@given(
    content=_content,
    old=st.one_of(st.none(), _content),
    sender=st.sampled_from([ALICE, BOB, CAROL]),
    sender_level=st.one_of(st.integers(-1, 120), st.just(math.inf)),
    rv=st.sampled_from(ALL_VERSIONS),
    creators=st.sampled_from([frozenset(), frozenset({ALICE}), frozenset({BOB, CAROL})]),
)
def test_twins_agree_on_power_levels(
    content: Any, old: Any, sender: str, sender_level: Any, rv: RoomVersion, creators: Any
) -> None:
    outcomes = [
        _outcome(m.power_levels_violation, content, old, sender, sender_level, rv, creators)
        for m in twins("power_levels")
    ]
    assert all(o == outcomes[0] for o in outcomes)
    for value in [*content.values(), content]:
        results = {
            (repr(m.parse_power_level(value)), m.is_valid_power_level(value, rv))
            for m in twins("power_levels")
        }
        assert len(results) == 1


@settings(max_examples=300, deadline=None)
@given(
    table=st.dictionaries(_user_key, _level_value, max_size=6),
    edits=st.lists(st.tuples(st.integers(0, 7), st.one_of(st.none(), _level_value)), max_size=3),
    sender=st.sampled_from([ALICE, BOB, CAROL]),
    sender_level=st.integers(-1, 120),
    rv=st.sampled_from(ALL_VERSIONS),
)
def test_twins_agree_on_edited_copies(
    table: Any, edits: Any, sender: str, sender_level: int, rv: RoomVersion
) -> None:
    """New levels made by copying the old tables and editing a few entries (what clients
    send): the same key and value objects at the same positions, then differences."""
    new_table = dict(table)
    keys = [*table, ALICE, BOB, CAROL, "@new:example.org", "not a user"]
    for index, value in edits:
        key = keys[index % len(keys)]
        if value is None:
            new_table.pop(key, None)
        else:
            new_table[key] = value
    old = {"users": table, "events": dict(table)}
    content = {"users": new_table, "events": {**table, **dict(list(new_table.items())[:1])}}
    outcomes = [
        _outcome(m.power_levels_violation, content, old, sender, sender_level, rv, frozenset())
        for m in twins("power_levels")
    ]
    assert all(o == outcomes[0] for o in outcomes)


@settings(max_examples=200, deadline=None)
@given(
    user=_user_key,
    extra=st.one_of(st.none(), st.lists(st.one_of(_user_key, st.integers()), max_size=3)),
    users=_level_table,
    default=_level_value,
    rv=st.sampled_from([V1, V11, V12]),
    has_pl=st.booleans(),
)
def test_twins_agree_on_user_level(
    user: Any, extra: Any, users: Any, default: Any, rv: RoomVersion, has_pl: bool
) -> None:
    create_content: dict[str, Any] = {"creator": ALICE}
    if extra is not None:
        create_content["additional_creators"] = extra
    create = _pdu(rv, "m.room.create", ALICE, create_content, "$c")
    pl = _pdu(rv, "m.room.power_levels", ALICE, {"users": users, "users_default": default}, "$p")
    outcomes = [
        _outcome(m.user_level, user, create, pl if has_pl else None) for m in twins("power_levels")
    ]
    assert all(repr(o) == repr(outcomes[0]) for o in outcomes)


class _Junk:
    """Quacks like neither a PDU nor a room version."""


JUNK_CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("power_levels_violation", (None, None, ALICE, 0, V11, frozenset())),
    ("power_levels_violation", ({"users": {}}, [], ALICE, 0, V11, frozenset())),
    ("power_levels_violation", ({}, {}, ALICE, 0, _Junk(), frozenset())),
    ("power_levels_violation", ({"users": {}}, {}, ALICE, 0, V12, None)),
    ("power_levels_violation", ({"ban": 1}, {"ban": 2}, ALICE, "x", V11, frozenset())),
    ("power_levels_violation", ({"users": {BOB: 1}}, {"users": {BOB: 2}}, 5, None, V11, ())),
    ("user_level", (ALICE, _Junk(), None)),
    ("user_level", (ALICE, None, _Junk())),
    ("user_level", ([ALICE], None, None)),
    ("is_valid_power_level", ("1", None)),
    ("is_valid_power_level", (1, None)),
    ("is_valid_server_name", (None,)),
    ("parse_power_level", (object(),)),
]


@pytest.mark.parametrize(("name", "args"), JUNK_CALLS, ids=[n for n, _ in JUNK_CALLS])
def test_twins_fail_alike_on_junk(name: str, args: tuple[Any, ...]) -> None:
    outcomes = [_outcome(getattr(m, name), *args) for m in twins("power_levels")]
    assert all(o == outcomes[0] for o in outcomes)
