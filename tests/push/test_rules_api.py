"""/pushrules/ endpoints: CRUD, ordering, default-rule enabled/actions, validation errors,
and the version bump that wakes /sync (``rules_for_sync``)."""

from __future__ import annotations

from typing import Any

from tests.rooms.helpers import User, new_user
from tests.server.harness import running_server

from hs.storage.database import DatabaseConfig

RULES = "/pushrules/global"


def _ids(ruleset: dict[str, Any], kind: str) -> list[str]:
    return [r["rule_id"] for r in ruleset["global"][kind]]


async def _put(u: User, kind: str, rule_id: str, body: dict[str, Any], query: str = ""
               ) -> tuple[int, Any]:
    return await u.call("PUT", f"{RULES}/{kind}/{rule_id}{query}", body)


async def test_get_defaults(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        for path in ("/pushrules/", "/pushrules"):
            status, body = await alice.call("GET", path)
            assert status == 200
            assert _ids(body, "override")[0] == ".m.rule.master"
            assert ".m.rule.message" in _ids(body, "underride")
            assert body["global"]["content"][0]["pattern"] == "alice"
        status, body = await alice.call("GET", "/pushrules/global/")
        assert status == 200 and set(body) == {"override", "content", "room", "sender",
                                               "underride"}
        status, rule = await alice.call("GET", f"{RULES}/override/.m.rule.is_user_mention")
        assert status == 200 and rule["default"] is True
        assert rule["conditions"][0]["value"] == alice.user_id
        status, body = await alice.call("GET", "/pushrules/")
        assert status == 200
        status, _ = await hs.request("GET", "/_matrix/client/v3/pushrules/")
        assert status == 401


async def test_crud_and_ordering(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        cond = [{"kind": "event_match", "key": "content.body", "pattern": "cake*"}]
        for rid in ("a", "b", "c"):
            status, body = await _put(alice, "override", rid,
                                      {"conditions": cond, "actions": ["notify"]})
            assert status == 200, body
        status, rs = await alice.call("GET", "/pushrules/")
        # New rules go first among user rules; master stays above all.
        assert _ids(rs, "override")[:4] == [".m.rule.master", "c", "b", "a"]
        status, _ = await _put(alice, "override", "d", {"conditions": cond, "actions": []},
                               "?before=a")
        assert status == 200
        status, _ = await _put(alice, "override", "e", {"conditions": cond, "actions": []},
                               "?after=c")
        assert status == 200
        status, rs = await alice.call("GET", "/pushrules/")
        assert _ids(rs, "override")[:6] == [".m.rule.master", "c", "e", "b", "d", "a"]
        # Updating keeps the place and the enabled flag; an anchor moves it.
        assert (await alice.call("PUT", f"{RULES}/override/b/enabled",
                                 {"enabled": False}))[0] == 200
        status, _ = await _put(alice, "override", "b", {"conditions": [], "actions": ["notify"]})
        assert status == 200
        status, rule = await alice.call("GET", f"{RULES}/override/b")
        assert rule == {"rule_id": "b", "default": False, "enabled": False,
                        "conditions": [], "actions": ["notify"]}
        status, _ = await _put(alice, "override", "b", {"conditions": [], "actions": []},
                               "?after=a")
        status, rs = await alice.call("GET", "/pushrules/")
        assert _ids(rs, "override")[:6] == [".m.rule.master", "c", "e", "d", "a", "b"]
        # content / room / sender rules
        status, _ = await _put(alice, "content", "cake", {"pattern": "cake*lie",
                                                          "actions": ["notify"]})
        assert status == 200
        status, _ = await _put(alice, "room", "!r:test.local", {"actions": []})
        assert status == 200
        status, _ = await _put(alice, "sender", "@bob:test.local", {"actions": ["notify"]})
        assert status == 200
        status, rs = await alice.call("GET", "/pushrules/")
        assert rs["global"]["content"][0] == {"rule_id": "cake", "default": False,
                                              "enabled": True, "pattern": "cake*lie",
                                              "actions": ["notify"]}
        assert _ids(rs, "room") == ["!r:test.local"]
        assert _ids(rs, "sender") == ["@bob:test.local"]
        # actions / enabled of a user rule
        status, _ = await alice.call("PUT", f"{RULES}/content/cake/actions",
                                     {"actions": ["notify", {"set_tweak": "highlight"}]})
        assert status == 200
        assert (await alice.call("GET", f"{RULES}/content/cake/actions"))[1] == {
            "actions": ["notify", {"set_tweak": "highlight"}]}
        assert (await alice.call("GET", f"{RULES}/content/cake/enabled"))[1] == {
            "enabled": True}
        # delete
        assert (await alice.call("DELETE", f"{RULES}/override/e"))[0] == 200
        status, body = await alice.call("DELETE", f"{RULES}/override/e")
        assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
        status, body = await alice.call("GET", f"{RULES}/override/e")
        assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
        # other users do not see alice's rules
        bob = await new_user(hs, "bob")
        status, rs = await bob.call("GET", "/pushrules/")
        assert _ids(rs, "override")[1] == ".m.rule.suppress_notices"


async def test_default_rules_enabled_and_actions(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        path = f"{RULES}/override/.m.rule.master"
        assert (await alice.call("GET", path + "/enabled"))[1] == {"enabled": False}
        assert (await alice.call("PUT", path + "/enabled", {"enabled": True}))[0] == 200
        assert (await alice.call("GET", path + "/enabled"))[1] == {"enabled": True}
        msg = f"{RULES}/underride/.m.rule.message"
        status, _ = await alice.call("PUT", msg + "/actions",
                                     {"actions": ["notify", {"set_tweak": "sound",
                                                             "value": "default"}]})
        assert status == 200
        status, rule = await alice.call("GET", msg)
        assert rule["actions"] == ["notify", {"set_tweak": "sound", "value": "default"}]
        assert rule["default"] is True and rule["enabled"] is True
        # defaults cannot be deleted or created; unknown defaults are 404
        status, body = await alice.call("DELETE", msg)
        assert status == 400
        status, body = await alice.call("PUT", f"{RULES}/override/.m.rule.mine",
                                        {"conditions": [], "actions": []})
        assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
        status, body = await alice.call("PUT", f"{RULES}/override/.m.rule.nope/enabled",
                                        {"enabled": False})
        assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
        status, body = await alice.call("GET", f"{RULES}/underride/.m.rule.master/enabled")
        assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


async def test_invalid_rules(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        cases: list[tuple[str, str, Any, str, str]] = [
            ("override", "x", {"conditions": []}, "", "M_MISSING_PARAM"),
            ("override", "x", {"actions": "notify"}, "", "M_BAD_JSON"),
            ("override", "x", {"actions": ["explode"]}, "", "M_BAD_JSON"),
            ("override", "x", {"actions": [5]}, "", "M_BAD_JSON"),
            ("override", "x", {"actions": [], "conditions": {}}, "", "M_BAD_JSON"),
            ("override", "x", {"actions": [], "conditions": [{"key": "a"}]}, "",
             "M_BAD_JSON"),
            ("override", "x", {"actions": [], "conditions": [
                {"kind": "event_match", "key": "type"}]}, "", "M_BAD_JSON"),
            ("override", "x", {"actions": [], "conditions": [
                {"kind": "room_member_count", "is": "about 3"}]}, "", "M_BAD_JSON"),
            ("override", "x", {"actions": [], "conditions": [
                {"kind": "event_property_is", "key": "a", "value": [1]}]}, "", "M_BAD_JSON"),
            ("content", "x", {"actions": []}, "", "M_MISSING_PARAM"),
            ("content", "x", {"actions": [], "pattern": 3}, "", "M_BAD_JSON"),
            ("room", "notaroom", {"actions": []}, "", "M_INVALID_PARAM"),
            ("sender", "!room:test.local", {"actions": []}, "", "M_INVALID_PARAM"),
            ("nokind", "x", {"actions": []}, "", "M_INVALID_PARAM"),
            ("override", "x", {"actions": []}, "?before=missing", "M_UNKNOWN"),
            ("override", "x", {"actions": []}, "?after=.m.rule.master", "M_INVALID_PARAM"),
        ]
        for kind, rid, body, query, errcode in cases:
            status, resp = await _put(alice, kind, rid, body, query)
            assert (status, resp["errcode"]) == (400, errcode), (kind, body, resp)
        status, resp = await alice.call("PUT", "/pushrules/device/override/x", {"actions": []})
        assert (status, resp["errcode"]) == (400, "M_INVALID_PARAM")
        status, resp = await hs.request("PUT", f"/_matrix/client/v3{RULES}/override/x",
                                        data=b"{nope", token=alice.token)
        assert (status, resp["errcode"]) == (400, "M_NOT_JSON")
        for body in ({}, {"enabled": "yes"}):
            status, resp = await alice.call("PUT", f"{RULES}/override/.m.rule.master/enabled",
                                            body)
            assert status == 400, resp
        status, resp = await alice.call("PUT", f"{RULES}/override/x/enabled",
                                        {"enabled": True})
        assert (status, resp["errcode"]) == (404, "M_NOT_FOUND")
        status, resp = await alice.call("GET", f"{RULES}/override/.m.rule.master/bogus")
        assert status == 404
        # An unknown condition kind is accepted (it just never matches).
        status, _ = await _put(alice, "override", "future", {"actions": [], "conditions": [
            {"kind": "org.example.future"}]})
        assert status == 200
        # Nothing invalid was stored.
        status, rs = await alice.call("GET", "/pushrules/")
        user_rules = [r["rule_id"] for k in rs["global"].values() for r in k
                      if not r["default"]]
        assert user_rules == ["future"]


async def test_changes_bump_version_for_sync(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        push = hs.services.push
        stream = hs.services.streams["push_rules"]
        initial = await push.rules_for_sync(alice.user_id, None)
        assert initial is not None and ".m.rule.master" in str(initial)
        since = stream.current()
        assert await push.rules_for_sync(alice.user_id, since) is None
        with hs.services.notifier.watch(users=[alice.user_id]) as waiter:
            status, _ = await _put(alice, "override", "x", {"conditions": [], "actions": []})
            assert status == 200 and waiter.woken_by == {"push_rules"}
        changed = await push.rules_for_sync(alice.user_id, since)
        assert changed is not None and changed["global"]["override"][1]["rule_id"] == "x"
        assert await push.rules_for_sync(alice.user_id, stream.current()) is None
