"""Push rules: defaults, merging, every condition kind, actions, ordering, both twins.

Spec v1.19 client-server API "Push Rules" / "Predefined Rules" (modules/push.md) and
appendices "Glob-style matching" / "Dot-separated property paths".
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import twin_params, twins

from hs.core import push_rules
from hs.core.push_rules import CompiledRulesCache, build_ruleset, default_rules

USER = "@alice:example.org"
OTHER = "@bob:example.org"
ROOM = "!room:example.org"

NOTIFY_SOUND_HL = ["notify", {"set_tweak": "sound", "value": "default"}, {"set_tweak": "highlight"}]
NOTIFY_HL = ["notify", {"set_tweak": "highlight"}]
NOTIFY_SOUND = ["notify", {"set_tweak": "sound", "value": "default"}]


@pytest.fixture(params=twin_params("push"))
def mod(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]


def ev(etype: str = "m.room.message", **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": etype,
        "sender": OTHER,
        "room_id": ROOM,
        "event_id": "$ev:example.org",
        "origin_server_ts": 1,
    }
    event.update(fields)
    return event


def msg(body: str = "hello there", **content: Any) -> dict[str, Any]:
    return ev(content={"msgtype": "m.text", "body": body, **content})


def run(
    mod: ModuleType,
    event: dict[str, Any],
    ruleset: dict[str, Any] | None = None,
    *,
    count: int = 10,
    power: int = 0,
    levels: dict[str, Any] | None = None,
    name: str | None = None,
    user: str = USER,
) -> Any:
    compiled = mod.compile_rules(ruleset if ruleset is not None else build_ruleset(user), user)
    ctx = mod.PushContext(count, power, levels, name)
    return mod.evaluate_result(compiled, mod.flatten_event(event), ctx)


def winner(mod: ModuleType, event: dict[str, Any], **kw: Any) -> str | None:
    res = run(mod, event, **kw)
    return None if res is None else res.rule_id  # type: ignore[no-any-return]


def only(*conditions: Any, actions: list[Any] | None = None) -> dict[str, Any]:
    """A ruleset with one user override rule holding ``conditions``."""
    rule = {
        "rule_id": "mine",
        "default": False,
        "enabled": True,
        "conditions": list(conditions),
        "actions": ["notify"] if actions is None else actions,
    }
    return {"global": {"override": [rule]}}


def matches(mod: ModuleType, event: dict[str, Any], *conditions: Any, **kw: Any) -> bool:
    return run(mod, event, only(*conditions), **kw) is not None


# ----------------------------------------------------------------------------------------
# Every default rule: one event that triggers it, one that does not
# ----------------------------------------------------------------------------------------

MEMBER_INVITE = ev("m.room.member", state_key=USER, content={"membership": "invite"})
MASTER_ON = build_ruleset(
    USER, default_overrides={("override", ".m.rule.master"): {"enabled": True}}
)

DEFAULT_CASES: list[tuple[str, dict[str, Any], dict[str, Any], list[Any]]] = [
    (".m.rule.master", msg(), {"ruleset": MASTER_ON}, []),
    (".m.rule.suppress_notices", ev(content={"msgtype": "m.notice", "body": "bot"}), {}, []),
    (".m.rule.invite_for_me", MEMBER_INVITE, {}, NOTIFY_SOUND),
    (
        ".m.rule.member_event",
        ev("m.room.member", state_key=OTHER, content={"membership": "join"}),
        {},
        [],
    ),
    (
        ".m.rule.is_user_mention",
        msg("hi", **{"m.mentions": {"user_ids": [USER]}}),
        {},
        NOTIFY_SOUND_HL,
    ),
    (
        ".m.rule.contains_display_name",
        msg("hey Alice Smith!"),
        {"name": "Alice Smith"},
        NOTIFY_SOUND_HL,
    ),
    (
        ".m.rule.is_room_mention",
        msg("all", **{"m.mentions": {"room": True}}),
        {"power": 50},
        NOTIFY_HL,
    ),
    (".m.rule.roomnotif", msg("@room wake up"), {"power": 100}, NOTIFY_HL),
    (
        ".m.rule.tombstone",
        ev("m.room.tombstone", state_key="", content={"body": "moved"}),
        {},
        NOTIFY_HL,
    ),
    (
        ".m.rule.reaction",
        ev(
            "m.reaction",
            content={"m.relates_to": {"rel_type": "m.annotation", "event_id": "$x", "key": "+1"}},
        ),
        {},
        [],
    ),
    (
        ".m.rule.room.server_acl",
        ev("m.room.server_acl", state_key="", content={"allow": ["*"]}),
        {},
        [],
    ),
    (
        ".m.rule.suppress_edits",
        msg("* fix", **{"m.relates_to": {"rel_type": "m.replace", "event_id": "$x"}}),
        {},
        [],
    ),
    (".m.rule.contains_user_name", msg("ping ALICE please"), {}, NOTIFY_SOUND_HL),
    (
        ".m.rule.call",
        ev("m.call.invite", content={"call_id": "c"}),
        {},
        ["notify", {"set_tweak": "sound", "value": "ring"}],
    ),
    (
        ".m.rule.encrypted_room_one_to_one",
        ev("m.room.encrypted", content={"ciphertext": "x"}),
        {"count": 2},
        NOTIFY_SOUND,
    ),
    (".m.rule.room_one_to_one", msg(), {"count": 2}, NOTIFY_SOUND),
    (".m.rule.message", msg(), {"count": 3}, ["notify"]),
    (
        ".m.rule.encrypted",
        ev("m.room.encrypted", content={"ciphertext": "x"}),
        {"count": 3},
        ["notify"],
    ),
]

#: (rule that must NOT win, event, context, rule that wins instead or None)
NEGATIVE_CASES: list[tuple[str, dict[str, Any], dict[str, Any], str | None]] = [
    (".m.rule.master", msg(), {}, ".m.rule.message"),  # disabled by default
    (".m.rule.suppress_notices", msg(), {}, ".m.rule.message"),
    (
        ".m.rule.invite_for_me",
        ev("m.room.member", state_key=OTHER, content={"membership": "invite"}),
        {},
        ".m.rule.member_event",
    ),
    (".m.rule.member_event", msg(), {}, ".m.rule.message"),
    (
        ".m.rule.is_user_mention",
        msg("hi", **{"m.mentions": {"user_ids": [OTHER]}}),
        {},
        ".m.rule.message",
    ),
    (
        ".m.rule.contains_display_name",
        msg("hey AliceSmith!"),
        {"name": "Alice Smith"},
        ".m.rule.message",
    ),
    (
        ".m.rule.contains_display_name",
        msg("hey Alice Smith", **{"m.mentions": {}}),
        {"name": "Alice Smith"},
        ".m.rule.message",
    ),
    (
        ".m.rule.is_room_mention",
        msg("all", **{"m.mentions": {"room": True}}),
        {"power": 49},
        ".m.rule.message",
    ),
    (".m.rule.roomnotif", msg("@room wake up"), {"power": 0}, ".m.rule.message"),
    (
        ".m.rule.roomnotif",
        msg("@room wake up", **{"m.mentions": {}}),
        {"power": 100},
        ".m.rule.message",
    ),
    (".m.rule.roomnotif", msg("@roomy"), {"power": 100}, ".m.rule.message"),
    (".m.rule.tombstone", ev("m.room.tombstone", content={"body": "moved"}), {}, None),
    (".m.rule.reaction", ev("m.reactionx", content={}), {}, None),
    (".m.rule.room.server_acl", ev("m.room.server_acl", state_key="x", content={}), {}, None),
    (
        ".m.rule.suppress_edits",
        msg("reply", **{"m.relates_to": {"rel_type": "m.thread", "event_id": "$x"}}),
        {},
        ".m.rule.message",
    ),
    (".m.rule.contains_user_name", msg("ping alicex and xalice"), {}, ".m.rule.message"),
    (".m.rule.call", ev("m.call.answer", content={}), {}, None),
    (
        ".m.rule.encrypted_room_one_to_one",
        ev("m.room.encrypted", content={}),
        {"count": 3},
        ".m.rule.encrypted",
    ),
    (".m.rule.room_one_to_one", msg(), {"count": 3}, ".m.rule.message"),
    (".m.rule.message", ev("m.room.topic", state_key="", content={"topic": "t"}), {}, None),
    (".m.rule.encrypted", ev("m.room.encrypted.v2", content={}), {}, None),
]


def test_every_default_rule_has_cases() -> None:
    ids = {r["rule_id"] for rules in default_rules(USER).values() for r in rules}
    assert ids == {c[0] for c in DEFAULT_CASES}
    assert ids == {c[0] for c in NEGATIVE_CASES}


@pytest.mark.parametrize(
    ("rule_id", "event", "kw", "actions"),
    DEFAULT_CASES,
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_default_rule_triggers(
    mod: ModuleType, rule_id: str, event: dict[str, Any], kw: dict[str, Any], actions: list[Any]
) -> None:
    res = run(mod, event, **kw)
    assert res is not None and res.rule_id == rule_id
    assert list(res.actions) == actions
    compiled = mod.compile_rules(kw.get("ruleset", build_ruleset(USER)), USER)
    ctx = mod.PushContext(kw.get("count", 10), kw.get("power", 0), None, kw.get("name"))
    assert mod.evaluate(compiled, event, ctx) == actions  # raw mapping accepted too
    assert res.notify == ("notify" in actions)
    assert res.highlight == ({"set_tweak": "highlight"} in actions)


@pytest.mark.parametrize(
    ("rule_id", "event", "kw", "instead"),
    NEGATIVE_CASES,
    ids=lambda x: x if isinstance(x, str) else "",
)
def test_default_rule_does_not_trigger(
    mod: ModuleType, rule_id: str, event: dict[str, Any], kw: dict[str, Any], instead: str | None
) -> None:
    got = winner(mod, event, **kw)
    assert got != rule_id
    assert got == instead


def test_user_mention_beats_display_name_and_username(mod: ModuleType) -> None:
    event = msg("Alice alice", **{"m.mentions": {"user_ids": [USER]}})
    assert winner(mod, event, name="Alice") == ".m.rule.is_user_mention"


def test_own_events_never_notify(mod: ModuleType) -> None:
    event = msg("alice", **{"m.mentions": {"user_ids": [USER]}})
    event["sender"] = USER
    assert run(mod, event) is None
    compiled = mod.compile_rules(build_ruleset(USER), USER)
    assert mod.evaluate(compiled, mod.flatten_event(event), mod.PushContext(2)) is None


# ----------------------------------------------------------------------------------------
# build_ruleset / default_rules
# ----------------------------------------------------------------------------------------


def test_default_rules_substitute_user() -> None:
    rules = default_rules(USER)
    invite = next(r for r in rules["override"] if r["rule_id"] == ".m.rule.invite_for_me")
    assert invite["conditions"][2] == {"kind": "event_match", "key": "state_key", "pattern": USER}
    mention = next(r for r in rules["override"] if r["rule_id"] == ".m.rule.is_user_mention")
    assert mention["conditions"][0]["value"] == USER
    assert rules["content"][0]["pattern"] == "alice"
    assert all(r["rule_id"].startswith(".") and r["default"] for k in rules for r in rules[k])
    # fresh objects: mutating one result does not leak into the next
    rules["override"][0]["enabled"] = True
    assert default_rules(USER)["override"][0]["enabled"] is False


def test_default_rules_without_legacy() -> None:
    rules = default_rules(USER, legacy_mentions=False)
    ids = [r["rule_id"] for k in rules for r in rules[k]]
    assert ".m.rule.roomnotif" not in ids and ".m.rule.contains_display_name" not in ids
    assert rules["content"] == []
    assert [r["rule_id"] for r in rules["override"]][:2] == [
        ".m.rule.master",
        ".m.rule.suppress_notices",
    ]
    assert [r["rule_id"] for r in rules["underride"]] == [
        ".m.rule.call",
        ".m.rule.encrypted_room_one_to_one",
        ".m.rule.room_one_to_one",
        ".m.rule.message",
        ".m.rule.encrypted",
    ]


def test_build_ruleset_order_and_format() -> None:
    mine = {
        "override": [{"rule_id": "o1", "conditions": [], "actions": []}],
        "content": [{"rule_id": "c1", "pattern": "cake", "actions": ["notify"]}],
        "room": [{"rule_id": ROOM, "actions": [], "enabled": False}],
        "sender": [{"rule_id": OTHER, "actions": ["notify"]}],
        "underride": [{"rule_id": "u1", "conditions": [], "actions": ["notify"]}],
    }
    overrides = {
        ("underride", ".m.rule.message"): {
            "actions": ["notify", {"set_tweak": "sound", "value": "x"}]
        },
        ("override", ".m.rule.reaction"): {"enabled": False},
    }
    rs = build_ruleset(USER, mine, overrides)["global"]
    assert list(rs) == ["override", "content", "room", "sender", "underride"]
    assert [r["rule_id"] for r in rs["override"]][:3] == [
        ".m.rule.master",
        "o1",
        ".m.rule.suppress_notices",
    ]
    assert [r["rule_id"] for r in rs["content"]] == ["c1", ".m.rule.contains_user_name"]
    assert rs["room"] == [{"rule_id": ROOM, "default": False, "enabled": False, "actions": []}]
    assert rs["sender"][0] == {
        "rule_id": OTHER,
        "default": False,
        "enabled": True,
        "actions": ["notify"],
    }
    assert rs["underride"][0]["rule_id"] == "u1"
    message = next(r for r in rs["underride"] if r["rule_id"] == ".m.rule.message")
    assert message["actions"] == ["notify", {"set_tweak": "sound", "value": "x"}]
    reaction = next(r for r in rs["override"] if r["rule_id"] == ".m.rule.reaction")
    assert reaction["enabled"] is False and reaction["default"] is True
    assert rs["content"][0] == {
        "rule_id": "c1",
        "default": False,
        "enabled": True,
        "pattern": "cake",
        "actions": ["notify"],
    }


def test_selector_exports_a_twin() -> None:
    assert push_rules.compile_rules in {m.compile_rules for m in twins("push")}
    assert callable(push_rules.evaluate) and callable(push_rules.flatten_event)


# ----------------------------------------------------------------------------------------
# Ordering, user rules, enabled flags
# ----------------------------------------------------------------------------------------


def test_kind_priority(mod: ModuleType) -> None:
    mine = {
        "override": [
            {
                "rule_id": "o",
                "conditions": [
                    {"kind": "event_match", "key": "content.body", "pattern": "override"}
                ],
                "actions": ["notify"],
            }
        ],
        "content": [
            {
                "rule_id": "c",
                "pattern": "cake",
                "actions": ["notify", {"set_tweak": "sound", "value": "cake"}],
            }
        ],
        "room": [{"rule_id": ROOM, "actions": ["notify", {"set_tweak": "sound", "value": "room"}]}],
        "sender": [
            {"rule_id": OTHER, "actions": ["notify", {"set_tweak": "sound", "value": "sender"}]}
        ],
    }
    rs = build_ruleset(USER, mine)
    assert winner(mod, msg("override cake"), ruleset=rs) == "o"
    assert winner(mod, msg("cake!"), ruleset=rs) == "c"
    assert winner(mod, msg("pie"), ruleset=rs) == ROOM
    other_room = msg("pie")
    other_room["room_id"] = "!elsewhere:example.org"
    assert winner(mod, other_room, ruleset=rs) == OTHER
    other_room["sender"] = "@carol:example.org"
    assert winner(mod, other_room, ruleset=rs) == ".m.rule.message"
    # room/sender rule IDs are compared exactly, not as case-insensitive globs
    other_room["sender"] = OTHER.upper()
    assert winner(mod, other_room, ruleset=rs) == ".m.rule.message"


def test_user_override_beats_default_override(mod: ModuleType) -> None:
    mine = {
        "override": [
            {
                "rule_id": "mute",
                "conditions": [{"kind": "event_match", "key": "room_id", "pattern": ROOM}],
                "actions": [],
            }
        ]
    }
    rs = build_ruleset(USER, mine)
    res = run(mod, msg("Alice!"), rs, name="Alice")
    assert res.rule_id == "mute" and list(res.actions) == [] and not res.notify


def test_master_beats_user_override(mod: ModuleType) -> None:
    mine = {"override": [{"rule_id": "loud", "conditions": [], "actions": ["notify"]}]}
    rs = build_ruleset(USER, mine, {("override", ".m.rule.master"): {"enabled": True}})
    assert winner(mod, msg(), ruleset=rs) == ".m.rule.master"


def test_disabled_rules_are_skipped(mod: ModuleType) -> None:
    mine = {"content": [{"rule_id": "c", "pattern": "cake", "actions": [], "enabled": False}]}
    rs = build_ruleset(USER, mine, {("underride", ".m.rule.message"): {"enabled": False}})
    assert winner(mod, msg("cake"), ruleset=rs) is None
    compiled = mod.compile_rules(rs, USER)
    assert ("underride", ".m.rule.message") not in compiled.rule_ids
    assert ("content", "c") not in compiled.rule_ids


def test_default_actions_overridden(mod: ModuleType) -> None:
    rs = build_ruleset(
        USER,
        None,
        {
            ("underride", ".m.rule.message"): {
                "actions": ["notify", {"set_tweak": "sound", "value": "ping"}]
            }
        },
    )
    res = run(mod, msg(), rs)
    assert res.sound == "ping" and res.notify and not res.highlight


def test_first_matching_rule_in_kind_wins(mod: ModuleType) -> None:
    mine = {
        "content": [
            {"rule_id": "tea", "pattern": "tea", "actions": ["notify"]},
            {"rule_id": "time", "pattern": "time", "actions": []},
        ]
    }
    assert winner(mod, msg("It's time for tea"), ruleset=build_ruleset(USER, mine)) == "tea"


def test_bare_kinds_mapping_accepted(mod: ModuleType) -> None:
    rs = only({"kind": "event_match", "key": "type", "pattern": "m.room.message"})["global"]
    assert run(mod, msg(), rs).rule_id == "mine"


# ----------------------------------------------------------------------------------------
# event_match: globs, case, whole value, body word boundaries, paths
# ----------------------------------------------------------------------------------------


def em(key: str, pattern: str) -> dict[str, Any]:
    return {"kind": "event_match", "key": key, "pattern": pattern}


@pytest.mark.parametrize(
    ("topic", "hit"),
    [
        ("Lunch plans", True),
        ("LUNCH", True),
        ("lunch\nplans", True),
        (" lunch", False),
        ("lunc", False),
        (None, False),
        (5, False),
    ],
)
def test_event_match_spec_topic_example(mod: ModuleType, topic: Any, hit: bool) -> None:
    event = ev("m.room.topic", state_key="", content={"topic": topic})
    assert matches(mod, event, em("content.topic", "lunc?*")) is hit


@pytest.mark.parametrize(
    ("pattern", "value", "hit"),
    [
        ("m.room.message", "m.room.message", True),
        ("M.ROOM.MESSAGE", "m.room.Message", True),
        ("m.room.*", "m.room.message", True),
        ("m.room.*", "m.room.", True),
        ("m.room", "m.room.message", False),  # whole value, not a substring
        ("*.message", "m.room.message", True),
        ("m.?oom.*", "m.room.x", True),
        ("m.?oom.*", "m.oom.x", False),
        ("*", "", True),
        ("", "", True),
        ("", "x", False),
        ("a**b", "ab", True),
        ("[a]", "[a]", True),  # regex metacharacters are literal
        ("[a]", "a", False),
        ("a.c", "abc", False),
        ("é*", "ÉTÉ", True),
    ],
)
def test_event_match_globs(mod: ModuleType, pattern: str, value: str, hit: bool) -> None:
    assert matches(mod, ev(value), em("type", pattern)) is hit


def test_event_match_absent_or_non_string_never_matches(mod: ModuleType) -> None:
    assert not matches(mod, ev(), em("state_key", "*"))
    assert not matches(mod, ev(content={"n": 1}), em("content.n", "*"))
    assert not matches(mod, ev(content={"n": {"x": "y"}}), em("content.n", "*"))
    assert not matches(mod, ev(content={"n": ["y"]}), em("content.n", "*"))


@pytest.mark.parametrize(
    ("pattern", "body", "hit"),
    [
        ("ex*ple", "An example event.", True),
        ("ex*ple", "exple", True),
        ("ex*ple", "An exciting triple-whammy", True),
        ("ex*ple", "examplex", False),
        ("cake", "I like CAKE!", True),
        ("cake", "cakes", False),
        ("cake", "cheesecake", False),
        ("cake", "cake_", False),  # '_' is a word character
        ("cake", "cake9", False),
        ("cake", "(cake)", True),
        ("cake", "cheesecake then cake", True),
        ("c?ke", "a coke", True),
        ("@room", "hi @room", True),
        ("@room", "x@room", False),
        ("日本", "日本語", True),  # non-ASCII characters are boundaries per the spec wording
    ],
)
def test_body_word_boundary(mod: ModuleType, pattern: str, body: str, hit: bool) -> None:
    assert matches(mod, msg(body), em("content.body", pattern)) is hit
    content_rule = {
        "global": {"content": [{"rule_id": "c", "pattern": pattern, "actions": ["notify"]}]}
    }
    assert (run(mod, msg(body), content_rule) is not None) is hit


def test_body_rule_needs_string_body(mod: ModuleType) -> None:
    assert not matches(mod, ev(content={"body": 5}), em("content.body", "*"))
    assert not matches(mod, ev(content={}), em("content.body", "*"))


@pytest.mark.parametrize(
    ("key", "content", "hit"),
    [
        ("content.m\\.federate", {"m.federate": "yes"}, True),
        ("content.m.federate", {"m.federate": "yes"}, False),
        ("content.m.federate", {"m": {"federate": "yes"}}, True),
        ("content.m\\.federate", {"m": {"federate": "yes"}}, False),
        ("content.m\\\\foo", {"m\\foo": "yes"}, True),
        ("content.m\\foo", {"m\\foo": "yes"}, True),  # "\f" is not an escape: literal
        ("content.m\\x.y", {"m\\x": {"y": "yes"}}, True),
        ("content.a\\.b\\.c", {"a.b.c": "yes"}, True),
        ("content.a\\.b.c", {"a.b": {"c": "yes"}}, True),
        ("content.trailing\\", {"trailing\\": "yes"}, True),
    ],
)
def test_dotted_path_escaping(
    mod: ModuleType, key: str, content: dict[str, Any], hit: bool
) -> None:
    assert matches(mod, ev(content=content), em(key, "yes")) is hit


# ----------------------------------------------------------------------------------------
# event_property_is / event_property_contains
# ----------------------------------------------------------------------------------------


def pis(key: str, value: Any) -> dict[str, Any]:
    return {"kind": "event_property_is", "key": key, "value": value}


def pcon(key: str, value: Any) -> dict[str, Any]:
    return {"kind": "event_property_contains", "key": key, "value": value}


@pytest.mark.parametrize(
    ("value", "prop", "hit"),
    [
        (True, True, True),
        (True, "true", False),
        (True, 1, False),
        (1, True, False),
        (1, 1, True),
        (1, 1.0, False),
        (0, False, False),
        (False, False, True),
        (None, None, True),
        (None, "null", False),
        ("m.replace", "m.replace", True),
        ("m.replace", "M.REPLACE", False),  # exact, case-sensitive
        ("x", ["x"], False),
        ("x", {"x": "x"}, False),
        (2**53, 2**53, False),  # outside canonical JSON range: never matches
        (-(2**53) + 1, -(2**53) + 1, True),
    ],
)
def test_event_property_is(mod: ModuleType, value: Any, prop: Any, hit: bool) -> None:
    event = ev("m.room.create", state_key="", content={"m.federate": prop})
    assert matches(mod, event, pis("content.m\\.federate", value)) is hit


def test_event_property_is_absent_and_compound_values(mod: ModuleType) -> None:
    assert not matches(mod, ev(content={}), pis("content.x", None))
    assert not matches(mod, ev(content={"x": 1}), pis("content.x", [1]))
    assert not matches(mod, ev(content={"x": 1}), pis("content.x", 1.0))
    assert not matches(mod, ev(content={"x": 1}), {"kind": "event_property_is", "key": "content.x"})


@pytest.mark.parametrize(
    ("value", "arr", "hit"),
    [
        ("#myroom:example.com", ["#somewhere:example.org", "#myroom:example.com"], True),
        (":example.com", ["#somewhere:example.org", "#myroom:example.com"], False),
        ("#MYROOM:example.com", ["#myroom:example.com"], False),
        (1, [True, 1.0], False),
        (1, [True, 1], True),
        (True, [1], False),
        (True, [1, True], True),
        (None, [0, "", None], True),
        (None, [0, ""], False),
        ("x", "x", False),  # not an array
        ("x", [["x"], {"x": 1}], False),
        ("x", [], False),
    ],
)
def test_event_property_contains(mod: ModuleType, value: Any, arr: Any, hit: bool) -> None:
    event = ev("m.room.canonical_alias", state_key="", content={"alt_aliases": arr})
    assert matches(mod, event, pcon("content.alt_aliases", value)) is hit


def test_event_property_contains_absent(mod: ModuleType) -> None:
    assert not matches(mod, ev(content={}), pcon("content.alt_aliases", "x"))


# ----------------------------------------------------------------------------------------
# contains_display_name, room_member_count, sender_notification_permission
# ----------------------------------------------------------------------------------------

DN = {"kind": "contains_display_name"}


@pytest.mark.parametrize(
    ("name", "body", "hit"),
    [
        ("Alice", "hi alice", True),
        ("Alice", "ALICE: look", True),
        ("Alice", "malice", False),
        ("Alice", "alice_", False),
        ("Alice", "alice-bob", True),
        ("Dr. Who?", "is that dr. who? yes", True),
        ("a*b", "a*b", True),  # display names are literal, not globs
        ("a*b", "axxb", False),
        ("Zoë", "hey ZOË!", True),
        ("", "anything", False),
        (None, "anything", False),
    ],
)
def test_contains_display_name(mod: ModuleType, name: str | None, body: str, hit: bool) -> None:
    assert matches(mod, msg(body), DN, name=name) is hit


def test_contains_display_name_needs_body(mod: ModuleType) -> None:
    assert not matches(mod, ev(content={"body": ["Alice"]}), DN, name="Alice")


@pytest.mark.parametrize(
    ("spec", "count", "hit"),
    [
        ("2", 2, True),
        ("2", 3, False),
        ("==2", 2, True),
        ("==2", 1, False),
        ("<10", 9, True),
        ("<10", 10, False),
        (">10", 11, True),
        (">10", 10, False),
        ("<=10", 10, True),
        ("<=10", 11, False),
        (">=10", 10, True),
        (">=10", 9, False),
    ],
)
def test_room_member_count(mod: ModuleType, spec: str, count: int, hit: bool) -> None:
    assert matches(mod, msg(), {"kind": "room_member_count", "is": spec}, count=count) is hit


@pytest.mark.parametrize(
    "spec", ["", "=2", "=>2", "two", " 2", "2 ", "+2", "-1", "<", "2.0", "\uff12", 2, None]
)
def test_room_member_count_malformed_never_matches(mod: ModuleType, spec: Any) -> None:
    for count in (-1, 0, 1, 2, 3):
        assert not matches(mod, msg(), {"kind": "room_member_count", "is": spec}, count=count)


@pytest.mark.parametrize(
    ("power", "levels", "hit"),
    [
        (50, None, True),  # "room" defaults to 50
        (49, None, False),
        (10, {"room": 10}, True),
        (9, {"room": 10}, False),
        (100, {"room": 101}, False),
        (20, {"room": "20"}, True),  # old rooms: string levels
        (20, {"room": " -5 "}, True),
        (20, {"room": "twenty"}, False),  # unusable entry -> the default, 50
        (50, {"room": "twenty"}, True),
        (20, {"room": 1.5}, False),
    ],
)
def test_sender_notification_permission(
    mod: ModuleType, power: int, levels: dict[str, Any] | None, hit: bool
) -> None:
    cond = {"kind": "sender_notification_permission", "key": "room"}
    assert matches(mod, msg(), cond, power=power, levels=levels) is hit


def test_sender_notification_permission_other_keys(mod: ModuleType) -> None:
    cond = {"kind": "sender_notification_permission", "key": "custom"}
    assert matches(mod, msg(), cond, power=5, levels={"custom": 5})
    assert not matches(mod, msg(), cond, power=5, levels={"room": 0})
    assert not matches(mod, msg(), {"kind": "sender_notification_permission"}, power=100)


# ----------------------------------------------------------------------------------------
# Unknown / malformed conditions, actions
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cond",
    [
        {"kind": "org.example.future"},
        {"kind": "event_match", "key": "type"},
        {"kind": "event_match", "pattern": "*"},
        {"kind": "event_match", "key": 1, "pattern": "*"},
        {"key": "type", "pattern": "*"},
        "event_match",
        None,
    ],
)
def test_unknown_or_malformed_condition_disables_rule(mod: ModuleType, cond: Any) -> None:
    rs = only(em("type", "m.room.message"), cond)
    rs["global"]["underride"] = [{"rule_id": "next", "conditions": [], "actions": ["notify"]}]
    assert winner(mod, msg(), ruleset=rs) == "next"


def test_rule_without_conditions_always_matches(mod: ModuleType) -> None:
    assert winner(mod, ev("anything"), ruleset=only()) == "mine"


@pytest.mark.parametrize(
    ("actions", "stored", "notify", "highlight", "sound"),
    [
        (["dont_notify"], [], False, False, None),
        (["notify", "coalesce"], ["notify"], True, False, None),
        ([{"set_tweak": "highlight"}], [{"set_tweak": "highlight"}], False, True, None),
        (
            [{"set_tweak": "highlight", "value": False}],
            [{"set_tweak": "highlight", "value": False}],
            False,
            False,
            None,
        ),
        (
            ["notify", {"set_tweak": "sound", "value": "bell"}],
            ["notify", {"set_tweak": "sound", "value": "bell"}],
            True,
            False,
            "bell",
        ),
        (
            ["notify", {"set_tweak": "x-custom", "value": 1}],
            ["notify", {"set_tweak": "x-custom", "value": 1}],
            True,
            False,
            None,
        ),
    ],
)
def test_actions(
    mod: ModuleType,
    actions: list[Any],
    stored: list[Any],
    notify: bool,
    highlight: bool,
    sound: Any,
) -> None:
    res = run(mod, msg(), only(actions=actions))
    assert res.rule_id == "mine"
    assert list(res.actions) == stored
    assert (res.notify, res.highlight, res.sound) == (notify, highlight, sound)


def test_rule_with_bad_actions_or_id_is_ignored(mod: ModuleType) -> None:
    rs = {
        "global": {
            "override": [
                {"rule_id": "a", "conditions": [], "actions": "notify"},
                {"rule_id": 5, "conditions": [], "actions": ["notify"]},
                {"rule_id": "b", "conditions": {}, "actions": ["notify"]},
                {"rule_id": "c", "conditions": [], "actions": ["notify"], "enabled": "yes"},
                "junk",
                {"rule_id": "ok", "conditions": [], "actions": ["notify"]},
            ],
            "content": [{"rule_id": "p", "actions": ["notify"]}],
            "room": "junk",
        }
    }
    assert mod.compile_rules(rs, USER).rule_ids == (("override", "ok"),)


def test_evaluate_returns_fresh_list(mod: ModuleType) -> None:
    compiled = mod.compile_rules(build_ruleset(USER), USER)
    flat = mod.flatten_event(msg())
    ctx = mod.PushContext(5)
    first = mod.evaluate(compiled, flat, ctx)
    first.append("mutated")
    assert mod.evaluate(compiled, flat, ctx) == ["notify"]


# ----------------------------------------------------------------------------------------
# Flattening and typed errors on bad input
# ----------------------------------------------------------------------------------------


def test_flatten_event(mod: ModuleType) -> None:
    flat = mod.flatten_event(
        {
            "type": "t",
            "content": {"m.relates_to": {"rel_type": "r"}, "a\\b": 1, "l": [1, {"x": 2}]},
            5: "skip",
        }
    )
    assert flat.values == {
        "type": "t",
        "content.m\\.relates_to.rel_type": "r",
        "content.a\\\\b": 1,
        "content.l": [1, {"x": 2}],
    }
    assert flat.lowered("type") == "t" and flat.lowered("content.a\\\\b") is None
    assert flat.has_mentions is False
    assert mod.flatten_event({"content": {"m.mentions": {}}}).has_mentions is True


def test_deep_nesting_does_not_crash(mod: ModuleType) -> None:
    event: dict[str, Any] = {"type": "m.room.message"}
    cur = event
    for _ in range(100_000):
        cur["c"] = {}
        cur = cur["c"]
    cur["leaf"] = "x"
    flat = mod.flatten_event(event)
    assert len(flat.values) == 2
    assert run(mod, event) is not None


def test_type_errors(mod: ModuleType) -> None:
    with pytest.raises(TypeError):
        mod.flatten_event(["not", "a", "mapping"])
    with pytest.raises(TypeError):
        mod.compile_rules(["x"], USER)
    with pytest.raises(TypeError):
        mod.compile_rules({"global": []}, USER)
    with pytest.raises(TypeError):
        mod.compile_rules({}, None)
    with pytest.raises(TypeError):
        mod.PushContext("2")
    with pytest.raises(TypeError):
        mod.PushContext(2, 1.5)
    compiled = mod.compile_rules({}, USER)
    with pytest.raises(TypeError):
        mod.evaluate(compiled, msg(), None)
    with pytest.raises(TypeError):
        mod.evaluate(None, msg(), mod.PushContext(2))
    with pytest.raises(TypeError):
        mod.evaluate(compiled, 5, mod.PushContext(2))


# ----------------------------------------------------------------------------------------
# Property tests: hostile input never crashes; the twins agree
# ----------------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ruleset=json_values, event=st.dictionaries(st.text(max_size=6), json_values, max_size=5))
def test_hostile_rules_and_events_never_crash(ruleset: Any, event: dict[str, Any]) -> None:
    outcomes = []
    for m in twins("push"):
        try:
            compiled = m.compile_rules(ruleset, USER)
        except TypeError:
            # only a ruleset that is not a mapping (or whose "global" is not) is refused
            assert not isinstance(ruleset, dict) or not isinstance(
                ruleset.get("global", ruleset), dict
            )
            outcomes.append("refused")
            continue
        res = m.evaluate(compiled, event, m.PushContext(3, 50, None, "a"))
        assert res is None or isinstance(res, list)
        outcomes.append(res)
    assert all(o == outcomes[0] for o in outcomes)


KEYS = [
    "type",
    "content.body",
    "content.msgtype",
    "content.m\\.x",
    "content.m\\.x.y",
    "state_key",
    "content.arr",
    "sender",
]
ALPHABET = "abAB.*?_ -é"
glob_text = st.text(alphabet=ALPHABET, max_size=6)
scalar = st.none() | st.booleans() | st.integers(-3, 3) | glob_text

conditions = st.one_of(
    st.builds(
        lambda k, p: {"kind": "event_match", "key": k, "pattern": p},
        st.sampled_from(KEYS),
        glob_text,
    ),
    st.builds(
        lambda k, v: {"kind": "event_property_is", "key": k, "value": v},
        st.sampled_from(KEYS),
        scalar,
    ),
    st.builds(
        lambda k, v: {"kind": "event_property_contains", "key": k, "value": v},
        st.sampled_from(KEYS),
        scalar,
    ),
    st.just({"kind": "contains_display_name"}),
    st.builds(
        lambda op, n: {"kind": "room_member_count", "is": op + str(n)},
        st.sampled_from(["", "==", "<", ">", "<=", ">=", "=", "!"]),
        st.integers(0, 4),
    ),
    st.builds(
        lambda k: {"kind": "sender_notification_permission", "key": k},
        st.sampled_from(["room", "other"]),
    ),
    st.just({"kind": "unknown"}),
)
actions = st.lists(
    st.sampled_from(
        [
            "notify",
            "dont_notify",
            "coalesce",
            {"set_tweak": "highlight"},
            {"set_tweak": "highlight", "value": False},
            {"set_tweak": "sound", "value": "default"},
        ]
    ),
    max_size=3,
)


@st.composite
def rulesets(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("override", "underride"):
        out[kind] = [
            {
                "rule_id": f"{kind}{i}",
                "enabled": draw(st.booleans()),
                "conditions": draw(st.lists(conditions, max_size=3)),
                "actions": draw(actions),
            }
            for i in range(draw(st.integers(0, 4)))
        ]
    out["content"] = [
        {
            "rule_id": f"c{i}",
            "enabled": draw(st.booleans()),
            "pattern": draw(glob_text),
            "actions": draw(actions),
        }
        for i in range(draw(st.integers(0, 3)))
    ]
    out["room"] = [{"rule_id": draw(st.sampled_from([ROOM, "!x:y"])), "actions": draw(actions)}]
    out["sender"] = [
        {"rule_id": draw(st.sampled_from([OTHER, USER, "@z:y"])), "actions": draw(actions)}
    ]
    return {"global": out}


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    content: dict[str, Any] = {}
    if draw(st.booleans()):
        content["body"] = draw(st.text(alphabet=ALPHABET + "xyz!", max_size=24))
    if draw(st.booleans()):
        content["msgtype"] = draw(st.sampled_from(["m.text", "m.notice", "M.NOTICE"]))
    if draw(st.booleans()):
        content["m.x"] = draw(scalar | st.fixed_dictionaries({"y": scalar}))
    if draw(st.booleans()):
        content["arr"] = draw(st.lists(scalar, max_size=4))
    if draw(st.booleans()):
        content["m.mentions"] = {}
    event: dict[str, Any] = {
        "type": draw(st.sampled_from(["m.room.message", "m.room.member", "a.b", "A*B"])),
        "sender": draw(st.sampled_from([OTHER, USER, "@z:y"])),
        "room_id": draw(st.sampled_from([ROOM, "!x:y"])),
        "content": content,
    }
    if draw(st.booleans()):
        event["state_key"] = draw(glob_text)
    return event


def _fields(res: Any) -> Any:
    if res is None:
        return None
    return (res.rule_id, res.kind, tuple(res.actions), res.notify, res.highlight, res.sound)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ruleset=rulesets(),
    event=events(),
    count=st.integers(0, 4),
    power=st.integers(0, 100),
    name=st.none() | glob_text,
)
def test_twins_agree(
    ruleset: dict[str, Any], event: dict[str, Any], count: int, power: int, name: str | None
) -> None:
    mods = twins("push")
    if len(mods) < 2:
        pytest.skip("_push_c not built")
    results = []
    for m in mods:
        compiled = m.compile_rules(ruleset, USER)
        ctx = m.PushContext(count, power, {"room": 50, "other": 20}, name)
        results.append(
            (compiled.rule_ids, _fields(m.evaluate_result(compiled, m.flatten_event(event), ctx)))
        )
    assert results[0] == results[1]


@settings(max_examples=300, deadline=None)
@given(
    haystack=st.text(alphabet=ALPHABET + "xyz", max_size=30),
    needle=st.text(alphabet=ALPHABET + "xyz", max_size=4),
)
def test_find_word_twins_agree_with_regex(haystack: str, needle: str) -> None:
    import re

    expected = (
        re.search(r"(?<![A-Za-z0-9_])" + re.escape(needle) + r"(?![A-Za-z0-9_])", haystack)
        is not None
    )
    py = importlib.import_module("hs._native._push_py")
    assert py.find_word(haystack, needle) is expected
    for m in twins("push"):
        if hasattr(m, "find_word"):
            assert bool(m.find_word(haystack, needle)) is expected


def test_build_ruleset_skips_unusable_user_rules() -> None:
    mine = {
        "override": [{"conditions": [], "actions": []}, "junk", {"rule_id": "ok", "actions": []}],
        "content": [{"rule_id": "nopattern", "actions": ["notify"]}],
    }
    rs = build_ruleset(USER, mine)["global"]
    assert [r["rule_id"] for r in rs["override"]][:2] == [".m.rule.master", "ok"]
    assert rs["override"][1]["conditions"] == []
    assert [r["rule_id"] for r in rs["content"]] == [".m.rule.contains_user_name"]


def test_one_flat_event_many_recipients(mod: ModuleType) -> None:
    """The flattened view is shared: per-recipient answers must not leak between users."""
    flat = mod.flatten_event(msg("Carol and Dave, lunch?"))
    results = {}
    for user, name in [("@carol:x", "Carol"), ("@dave:x", "Dave"), ("@erin:x", "Erin")] * 2:
        compiled = mod.compile_rules(build_ruleset(user), user)
        res = mod.evaluate_result(compiled, flat, mod.PushContext(10, 0, None, name))
        results.setdefault(user, set()).add(res.rule_id)
    assert results == {
        "@carol:x": {".m.rule.contains_display_name"},
        "@dave:x": {".m.rule.contains_display_name"},
        "@erin:x": {".m.rule.message"},
    }


def test_compiled_rules_cache() -> None:
    cache = CompiledRulesCache(max_entries=2)
    loads: list[str] = []

    def loader(user: str) -> Any:
        def load() -> dict[str, Any]:
            loads.append(user)
            return build_ruleset(user)

        return load

    a1 = cache.get("@a:x", 1, loader("@a:x"))
    assert cache.get("@a:x", 1, loader("@a:x")) is a1
    assert cache.get("@a:x", 2, loader("@a:x")) is not a1
    cache.get("@b:x", 1, loader("@b:x"))
    assert len(cache) == 2 and loads == ["@a:x", "@a:x", "@b:x"]
    cache.get("@a:x", 1, loader("@a:x"))  # evicted (LRU) -> recompiled
    assert loads[-1] == "@a:x" and len(cache) == 2
    cache.invalidate("@a:x")
    assert len(cache) == 1
    assert a1.user_id == "@a:x" and len(a1) == 17


@settings(max_examples=500, deadline=None)
@given(
    s=st.text(alphabet="ab_ .c\n", max_size=14),
    pattern=st.text(alphabet="ab?*_ .", max_size=7),
    bounded=st.booleans(),
)
def test_glob_matcher_agrees_with_regex_oracle(s: str, pattern: str, bounded: bool) -> None:
    py = importlib.import_module("hs._native._push_py")
    rx = py.glob_to_regex(pattern, bounded)
    expected = (rx.search(s) if bounded else rx.fullmatch(s)) is not None
    for m in twins("push"):
        assert bool(m.glob_match(s, py.split_glob(pattern), bounded)) is expected


def test_glob_has_no_pathological_backtracking(mod: ModuleType) -> None:
    """``*a*a*...*b`` against a long run of ``a`` is exponential for a backtracking regex."""
    import time

    body = "a" * 20_000
    rule = em("content.body", "*a*a*a*a*a*a*a*a*b")
    start = time.process_time()
    assert not matches(mod, msg(body), rule)
    assert not matches(mod, ev(body), em("type", "*a*a*a*a*a*a*a*a*b"))
    assert time.process_time() - start < 2.0
