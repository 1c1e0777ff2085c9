"""Account data (global and per room) and room tags, through their endpoints and /sync."""

from __future__ import annotations

from tests.server.harness import running_server
from tests.sync.helpers import new_user


async def test_global_and_room_account_data(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room = await alice.create_room()
        me = alice.user_id
        token = (await alice.sync())["next_batch"]
        await alice.ok("PUT", f"/user/{me}/account_data/org.example.a", {"v": 1})
        await alice.ok("PUT", f"/user/{me}/account_data/org.example.a", {"v": 2})
        await alice.ok("PUT", f"/user/{me}/rooms/{room}/account_data/org.example.r", {"x": True})
        assert await alice.ok("GET", f"/user/{me}/account_data/org.example.a") == {"v": 2}
        assert await alice.ok("GET", f"/user/{me}/rooms/{room}/account_data/org.example.r") == {
            "x": True}
        body = await alice.sync(token)
        # Only the latest value of each type.
        assert body["account_data"]["events"] == [{"type": "org.example.a",
                                                   "content": {"v": 2}}]
        assert body["rooms"]["join"][room]["account_data"]["events"] == [
            {"type": "org.example.r", "content": {"x": True}}]
        initial = await alice.sync()
        assert {"type": "org.example.a", "content": {"v": 2}} in initial["account_data"]["events"]
        # Filtered out by type.
        filtered = await alice.sync(flt={"account_data": {"not_types": ["org.example.*"]}})
        assert not [e for e in filtered["account_data"]["events"]
                    if e["type"].startswith("org.example.")]

        # Errors: someone else's data, server-managed types, missing data, bad body.
        status, err = await bob.req("PUT", f"/user/{me}/account_data/x", {})
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        status, err = await bob.req("GET", f"/user/{me}/account_data/org.example.a")
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        for path in (f"/user/{me}/account_data/m.fully_read",
                     f"/user/{me}/account_data/m.push_rules",
                     f"/user/{me}/rooms/{room}/account_data/m.fully_read"):
            status, err = await alice.req("PUT", path, {"event_id": "$x"})
            assert (status, err["errcode"]) == (405, "M_BAD_JSON"), path
        status, err = await alice.req("GET", f"/user/{me}/account_data/org.example.none")
        assert (status, err["errcode"]) == (404, "M_NOT_FOUND")
        status, err = await alice.req("PUT", f"/user/{me}/account_data/org.example.a", [1])
        assert status == 400 and err["errcode"] in ("M_NOT_JSON", "M_BAD_JSON")
        status, err = await alice.req("PUT", f"/user/{me}/rooms/not-a-room/account_data/x", {})
        assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")


async def test_room_tags(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room = await alice.create_room()
        me = alice.user_id
        base = f"/user/{me}/rooms/{room}/tags"
        assert await alice.ok("GET", base) == {"tags": {}}
        token = (await alice.sync())["next_batch"]
        await alice.ok("PUT", f"{base}/m.favourite", {"order": 0.25})
        await alice.ok("PUT", f"{base}/u.work", {})
        assert await alice.ok("GET", base) == {"tags": {"m.favourite": {"order": 0.25},
                                                        "u.work": {}}}
        body = await alice.sync(token)
        assert body["rooms"]["join"][room]["account_data"]["events"] == [
            {"type": "m.tag", "content": {"tags": {"m.favourite": {"order": 0.25},
                                                   "u.work": {}}}}]
        await alice.ok("DELETE", f"{base}/u.work")
        await alice.ok("DELETE", f"{base}/u.never-set")
        assert await alice.ok("GET", base) == {"tags": {"m.favourite": {"order": 0.25}}}
        body = await alice.sync(body["next_batch"])
        assert body["rooms"]["join"][room]["account_data"]["events"][0]["content"] == {
            "tags": {"m.favourite": {"order": 0.25}}}
        for bad in ({"order": 2}, {"order": -0.1}, {"order": "1"}, {"order": True}):
            status, err = await alice.req("PUT", f"{base}/m.lowpriority", bad)
            assert (status, err["errcode"]) == (400, "M_BAD_JSON"), bad
        status, err = await bob.req("PUT", f"{base}/m.favourite", {})
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        status, err = await bob.req("GET", base)
        assert status == 403


async def test_push_rules_arrive_as_account_data(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        initial = await alice.sync()
        (rules,) = [e["content"] for e in initial["account_data"]["events"]
                    if e["type"] == "m.push_rules"]
        assert {".m.rule.master", ".m.rule.message"} <= {
            r["rule_id"] for kind in rules["global"].values() for r in kind}
        token = initial["next_batch"]
        quiet = await alice.sync(token)
        assert not [e for e in quiet["account_data"]["events"] if e["type"] == "m.push_rules"]
        status, body = await alice.req("PUT", "/pushrules/global/content/cake",
                                       {"pattern": "cake", "actions": ["notify"]})
        assert status == 200, body
        body = await alice.sync(token)
        (rules,) = [e["content"] for e in body["account_data"]["events"]
                    if e["type"] == "m.push_rules"]
        assert "cake" in [r["rule_id"] for r in rules["global"]["content"]]
        # A token from before the push-rules field (seven positions) is still accepted.
        seven = "_".join(body["next_batch"].split("_")[:7])
        status, _ = await alice.sync_raw(seven)
        assert status == 200
