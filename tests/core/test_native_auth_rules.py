"""``hs._native.auth_rules``: the compiled verdict agrees with ``hs.core.auth`` everywhere.

The Cython twin decides common shapes itself and hands the rest to the full rules; these
tests throw random events (every membership, power levels, join rules, malformed content)
at random room states of every version and compare its verdict with the rules'.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.core.auth_helpers import ALICE, BOB, CAROL, DAVE, standard_room

from conftest import twin_params
from hs.core.auth import AuthError, auth_types_for_event, check_auth_rules
from hs.core.pdu import PDU, StateKey
from hs.core.room_versions import KNOWN_ROOM_VERSIONS

TWINS = twin_params("auth_rules")
USERS = [ALICE, BOB, CAROL, DAVE]


def _rules(event: PDU, state: Mapping[StateKey, PDU]) -> bool:
    try:
        check_auth_rules(event, state, check_auth_event_selection=False)
    except (AuthError, KeyError, TypeError, ValueError):
        return False
    return True


def _keys(event: PDU) -> list[StateKey]:
    return auth_types_for_event(
        event.type, event.sender, event.state_key, event.content, event.room_version
    )


levels = st.one_of(st.integers(-10, 120), st.sampled_from(["50", 1.5, None, True]))
memberships = st.sampled_from(["join", "invite", "leave", "ban", "knock", "bogus", 5, None])
join_rules = st.sampled_from(["public", "invite", "knock", "restricted", "knock_restricted", 3])


@st.composite
def cases(draw: Any) -> tuple[Any, PDU]:
    version = draw(st.sampled_from(sorted(KNOWN_ROOM_VERSIONS, key=int)))
    rv = KNOWN_ROOM_VERSIONS[version]
    room = standard_room(version, draw(join_rules) if draw(st.booleans()) else "public")
    for user in USERS[1:]:
        membership = draw(memberships)
        if membership is not None:
            room.member(user, membership)
    if draw(st.booleans()):
        users = {u: draw(levels) for u in draw(st.lists(st.sampled_from(USERS), max_size=3))}
        if rv.privileged_creators:
            users.pop(ALICE, None)
        content = {"users": users, "ban": draw(levels), "invite": draw(levels)}
        room.add(room.make("m.room.power_levels", ALICE, content, ""))
    sender = draw(st.sampled_from(USERS))
    kind = draw(st.sampled_from(["member", "pl", "jr", "topic", "message", "odd"]))
    if kind == "member":
        content: Any = {"membership": draw(memberships)}
        if draw(st.integers(0, 5)) == 0:
            content["join_authorised_via_users_server"] = ALICE
        event = room.make("m.room.member", sender, content, draw(st.sampled_from(USERS)))
    elif kind == "pl":
        users = {u: draw(levels) for u in draw(st.lists(st.sampled_from(USERS), max_size=3))}
        content = {"users": users, "kick": draw(levels), "events": {"m.room.topic": draw(levels)}}
        event = room.make("m.room.power_levels", sender, content, "")
    elif kind == "jr":
        event = room.make("m.room.join_rules", sender, {"join_rule": draw(join_rules)}, "")
    elif kind == "topic":
        state_key = draw(st.sampled_from(["", sender, BOB]))
        event = room.make("m.room.topic", sender, {"topic": "t"}, state_key)
    elif kind == "message":
        event = room.make("m.room.message", sender, {"body": "hi"})
    else:
        content = draw(st.sampled_from([[], "x", None, {"membership": ["join"]}]))
        event = room.make("m.room.member", sender, {}, sender)
        event.data["content"] = content
    return room, event


@pytest.mark.parametrize("m", TWINS)
@given(case=cases())
@settings(max_examples=300, deadline=None)
def test_verdict_matches_the_rules(m: ModuleType, case: tuple[Any, PDU]) -> None:
    room, event = case
    state = dict(room.state)
    assert m.is_allowed(event, state, _rules) is _rules(event, state)
    # Against only the keys the event needs, as state resolution passes them.
    narrowed = {k: state[k] for k in [*_keys(event), ("m.room.create", "")] if k in state}
    assert m.is_allowed(event, narrowed, _rules) is _rules(event, narrowed)
    assert m.auth_keys([event], _keys) == [_keys(event)]


@pytest.mark.parametrize("m", TWINS)
def test_common_shapes_need_no_fallback(m: ModuleType) -> None:
    """The compiled twin decides ordinary events itself (the pure one always falls back)."""
    room = standard_room("12")
    event = room.make("m.room.topic", BOB, {"topic": "t"}, "")
    calls: list[PDU] = []

    def fallback(ev: PDU, state: Mapping[StateKey, PDU]) -> bool:
        calls.append(ev)
        return _rules(ev, state)

    assert m.is_allowed(event, dict(room.state), fallback) is _rules(event, dict(room.state))
    assert len(calls) == (1 if m.__name__.endswith("_py") else 0)
