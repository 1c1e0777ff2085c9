"""Redaction for every rule set (rooms/v1..v12 "Redactions"), on both twins."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import twin_params, twins
from hs._native._errors import CanonicalJSONError, EventHashError
from hs.core.events import redact
from hs.core.room_versions import KNOWN_ROOM_VERSIONS

# The spec's lists, written out again here (not imported) so the tests check the code.
TOP_OLD = {
    "event_id", "type", "room_id", "sender", "state_key", "content", "hashes", "signatures",
    "depth", "prev_events", "prev_state", "auth_events", "origin", "origin_server_ts",
    "membership",
}  # fmt: skip
TOP_V11 = TOP_OLD - {"origin", "membership", "prev_state"}
PL_OLD = {"ban", "events", "events_default", "kick", "redact", "state_default", "users",
          "users_default"}  # fmt: skip

#: rules -> event type -> content keys kept ("*" = all)
CONTENT: dict[int, dict[str, set[str] | str]] = {
    1: {
        "m.room.member": {"membership"},
        "m.room.create": {"creator"},
        "m.room.join_rules": {"join_rule"},
        "m.room.power_levels": PL_OLD,
        "m.room.aliases": {"aliases"},
        "m.room.history_visibility": {"history_visibility"},
    },
}
CONTENT[6] = {k: v for k, v in CONTENT[1].items() if k != "m.room.aliases"}
CONTENT[8] = {**CONTENT[6], "m.room.join_rules": {"join_rule", "allow"}}
CONTENT[9] = {**CONTENT[8], "m.room.member": {"membership", "join_authorised_via_users_server"}}
CONTENT[11] = {
    **CONTENT[9],
    "m.room.create": "*",
    "m.room.power_levels": PL_OLD | {"invite"},
    "m.room.redaction": {"redacts"},
}
RULES = sorted(CONTENT)

#: Every key any rule set might keep, plus some that none keeps.
ALL_CONTENT_KEYS = sorted(
    {k for table in CONTENT.values() for keys in table.values() if keys != "*" for k in keys}
    | {"body", "creator", "room_version", "third_party_invite", "displayname", "m.federate"}
)
ALL_TYPES = sorted({t for table in CONTENT.values() for t in table} | {"m.room.message", "X"})


def full_event(etype: str) -> dict[str, Any]:
    event: dict[str, Any] = {k: f"value-{k}" for k in TOP_OLD}
    event.update(
        type=etype,
        unsigned={"age": 1},
        redacts="$r",
        extra_top="x",
        content={k: f"c-{k}" for k in ALL_CONTENT_KEYS},
    )
    return event


@pytest.mark.parametrize("impl", twin_params("event_hash"))
@pytest.mark.parametrize("rules", RULES)
@pytest.mark.parametrize("etype", ALL_TYPES)
def test_each_kept_key_kept_and_others_dropped(impl: Any, rules: int, etype: str) -> None:
    event = full_event(etype)
    out = impl.redact(event, rules)
    assert set(out) == (TOP_V11 if rules >= 11 else TOP_OLD)
    kept = CONTENT[rules].get(etype, set())
    if kept == "*":
        assert out["content"] == event["content"]
        assert out["content"] is not event["content"]
    else:
        assert out["content"] == {k: event["content"][k] for k in kept}
    for key in set(out) - {"content"}:
        assert out[key] == event[key]


@pytest.mark.parametrize("impl", twin_params("event_hash"))
def test_v11_member_keeps_only_signed_of_third_party_invite(impl: Any) -> None:
    signed = {"mxid": "@a:b", "token": "t", "signatures": {"id": {"ed25519:0": "s"}}}
    event = {
        "type": "m.room.member",
        "content": {
            "membership": "invite",
            "third_party_invite": {"display_name": "alice", "signed": signed},
        },
    }
    assert impl.redact(event, 11)["content"] == {
        "membership": "invite",
        "third_party_invite": {"signed": signed},
    }
    # Before v11 the whole third_party_invite goes.
    assert impl.redact(event, 9)["content"] == {"membership": "invite"}
    # Without ``signed`` nothing of it is kept.
    no_signed = {"type": "m.room.member", "content": {"third_party_invite": {"x": 1}}}
    assert impl.redact(no_signed, 11)["content"] == {}
    not_object = {"type": "m.room.member", "content": {"third_party_invite": "signed"}}
    assert impl.redact(not_object, 11)["content"] == {}


@pytest.mark.parametrize("impl", twin_params("event_hash"))
def test_content_edge_cases(impl: Any) -> None:
    # Absent content stays absent; non-object content becomes {}; odd types keep nothing.
    assert impl.redact({"type": "m.room.member"}, 11) == {"type": "m.room.member"}
    assert impl.redact({"type": "m.room.member", "content": [1]}, 1)["content"] == {}
    assert impl.redact({"type": 5, "content": {"membership": "join"}}, 1)["content"] == {}
    assert impl.redact({"type": ["x"], "content": {"a": 1}}, 11)["content"] == {}
    assert impl.redact({1: "int key", "type": "X"}, 11) == {"type": "X"}


class StrKey(str):
    """A str subclass key: must behave like the plain string."""


class MutatingKey:
    """A hostile key whose hashing empties the event being walked."""

    def __init__(self, target: dict[Any, Any]) -> None:
        self.target = target

    def __hash__(self) -> int:
        self.target.clear()
        return 1

    def __eq__(self, other: object) -> bool:
        return other is self


def _hostile_event() -> dict[Any, Any]:
    event: dict[Any, Any] = {"type": "m.room.member", "content": {"membership": "join"}}
    event[StrKey("origin")] = "o"
    key = MutatingKey({})
    event[key] = 1  # hashed once on insertion, before it points at the event
    key.target = event
    event["sender"] = "@a:b"
    return event


def test_odd_keys_give_identical_results_on_both_twins() -> None:
    for rules in RULES:
        outcomes = []
        for impl in twins("event_hash"):
            redacted = impl.redact(_hostile_event(), rules)
            try:
                hashed: object = impl.hash_event(_hostile_event(), rules)
            except CanonicalJSONError as exc:
                hashed = type(exc)
            outcomes.append((redacted, hashed))
        assert all(o == outcomes[0] for o in outcomes)
        assert outcomes[0][1] is CanonicalJSONError  # the odd key is not a string
        # The walk emptied the event before ``type`` was read: no special content rules.
        assert outcomes[0][0]["content"] == {}
        assert ("origin" in outcomes[0][0]) == (rules < 11)


@pytest.mark.parametrize("impl", twin_params("event_hash"))
def test_bad_input_raises_typed_errors(impl: Any) -> None:
    for bad_event in (None, [], "event", 3):
        with pytest.raises(EventHashError):
            impl.redact(bad_event, 11)
    for bad_rules in (0, 2, 7, 10, 12, "11", None, 11.0):
        with pytest.raises(EventHashError):
            impl.redact({}, bad_rules)


@pytest.mark.parametrize("impl", twin_params("event_hash"))
def test_redaction_does_not_mutate_and_is_idempotent(impl: Any) -> None:
    event = full_event("m.room.power_levels")
    snapshot = repr(event)
    once = impl.redact(event, 11)
    assert repr(event) == snapshot
    assert impl.redact(once, 11) == once


@pytest.mark.parametrize("version", sorted(KNOWN_ROOM_VERSIONS, key=int))
def test_room_versions_map_to_rule_sets(version: str) -> None:
    expected = {"1": 1, "2": 1, "3": 1, "4": 1, "5": 1, "6": 6, "7": 6, "8": 8, "9": 9, "10": 9}
    rules = expected.get(version, 11)
    event = full_event("m.room.aliases")
    assert redact(event, version) == redact(event, KNOWN_ROOM_VERSIONS[version])
    assert ("aliases" in redact(event, version)["content"]) == (rules == 1)
    assert ("origin" in redact(event, version)) == (rules < 11)
    jr = redact(full_event("m.room.join_rules"), version)["content"]
    assert ("allow" in jr) == (rules >= 8)
    member = redact(full_event("m.room.member"), version)["content"]
    assert ("join_authorised_via_users_server" in member) == (rules >= 9)


def test_v12_keeps_v11_rules() -> None:
    # rooms/v12.md lists Redactions under "Unchanged from v11".
    for etype in ALL_TYPES:
        event = full_event(etype)
        assert redact(event, "12") == redact(event, "11")


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
_keys = st.sampled_from(sorted(TOP_OLD | {"unsigned", "redacts", "other"}))
_events = st.fixed_dictionaries(
    {"type": st.sampled_from([*ALL_TYPES, 3]), "content": _json | st.dictionaries(
        st.sampled_from(ALL_CONTENT_KEYS), _json)},
    optional={"x": st.dictionaries(_keys, _json)},
).map(lambda d: {**d.pop("x", {}), **d})  # fmt: skip


def reference_redaction(event: dict[str, Any], rules: int) -> dict[str, Any]:
    """The spec's algorithm, straight from the tables above."""
    top = TOP_V11 if rules >= 11 else TOP_OLD
    out = {k: v for k, v in event.items() if k in top}
    if "content" in out:
        content, etype = out["content"], event.get("type")
        kept = CONTENT[rules].get(etype, set()) if isinstance(etype, str) else set()
        if not isinstance(content, dict):
            out["content"] = {}
        elif kept == "*":
            out["content"] = dict(content)
        else:
            out["content"] = {k: content[k] for k in kept if k in content}
            tpi = content.get("third_party_invite")
            member = rules >= 11 and etype == "m.room.member"
            if member and isinstance(tpi, dict) and "signed" in tpi:
                out["content"]["third_party_invite"] = {"signed": tpi["signed"]}
    return out


@settings(max_examples=300, deadline=None)
@given(event=_events, rules=st.sampled_from(RULES))
def test_twins_match_the_spec_algorithm(event: dict[str, Any], rules: int) -> None:
    expected = reference_redaction(event, rules)
    for impl in twins("event_hash"):
        assert impl.redact(event, rules) == expected
