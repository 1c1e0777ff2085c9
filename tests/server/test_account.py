"""Password change, deactivation, devices (with UIA deletion) and profiles."""

from __future__ import annotations

from tests.server.harness import running_server

WHOAMI = "/_matrix/client/v3/account/whoami"


def _password_auth(session: str, password: str, user: str = "alice") -> dict:
    return {"type": "m.login.password", "session": session, "password": password,
            "identifier": {"type": "m.id.user", "user": user}}


async def test_password_change_logs_out_other_sessions(database_config):
    async with running_server(database_config) as hs:
        me = await hs.register("alice", "old-pass")
        _, other = await hs.login("alice", "old-pass")
        url = "/_matrix/client/v3/account/password"
        body = {"new_password": "new-pass"}
        status, challenge = await hs.request("POST", url, body, token=me["access_token"])
        assert status == 401 and challenge["flows"] == [{"stages": ["m.login.password"]}]
        body["auth"] = _password_auth(challenge["session"], "wrong")
        status, err = await hs.request("POST", url, body, token=me["access_token"])
        assert (status, err["errcode"]) == (401, "M_FORBIDDEN")
        assert err["session"] == challenge["session"]
        body["auth"] = _password_auth(challenge["session"], "old-pass")
        status, _ = await hs.request("POST", url, body, token=me["access_token"])
        assert status == 200
        status, _ = await hs.request("GET", WHOAMI, token=me["access_token"])
        assert status == 200
        status, err = await hs.request("GET", WHOAMI, token=other["access_token"])
        assert (status, err["errcode"]) == (401, "M_UNKNOWN_TOKEN")
        assert (await hs.login("alice", "old-pass"))[0] == 403
        assert (await hs.login("alice", "new-pass"))[0] == 200


async def test_password_auth_for_other_user_is_refused(database_config):
    async with running_server(database_config) as hs:
        me = await hs.register("alice", "pw")
        await hs.register("bob", "pw")
        url = "/_matrix/client/v3/account/password"
        _, challenge = await hs.request("POST", url, {"new_password": "x"},
                                        token=me["access_token"])
        status, err = await hs.request(
            "POST", url, {"new_password": "x", "auth": _password_auth(challenge["session"],
                                                                      "pw", "bob")},
            token=me["access_token"])
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")


async def test_deactivate(database_config):
    async with running_server(database_config) as hs:
        me = await hs.register("alice", "pw")
        url = "/_matrix/client/v3/account/deactivate"
        _, challenge = await hs.request("POST", url, {}, token=me["access_token"])
        status, body = await hs.request("POST", url, {"auth": _password_auth(
            challenge["session"], "pw")}, token=me["access_token"])
        assert (status, body) == (200, {"id_server_unbind_result": "no-support"})
        status, err = await hs.request("GET", WHOAMI, token=me["access_token"])
        assert (status, err["errcode"]) == (401, "M_UNKNOWN_TOKEN")
        assert (await hs.login("alice", "pw"))[0] == 403
        status, err = await hs.request("GET", "/_matrix/client/v3/profile/@alice:test.local")
        assert status == 404
        status, err = await hs.request("GET", "/_matrix/client/v3/register/available"
                                              "?username=alice")
        assert err["errcode"] == "M_USER_IN_USE"  # IDs are never reused


async def test_devices_crud_and_uia_delete(database_config):
    async with running_server(database_config) as hs:
        me = await hs.register("alice", "pw")
        _, other = await hs.login("alice", "pw", initial_device_display_name="laptop")
        _, third = await hs.login("alice", "pw")
        token = me["access_token"]
        status, listing = await hs.request("GET", "/_matrix/client/v3/devices", token=token)
        assert status == 200 and len(listing["devices"]) == 3
        dev_url = f"/_matrix/client/v3/devices/{other['device_id']}"
        _, dev = await hs.request("GET", dev_url, token=token)
        assert dev["display_name"] == "laptop" and dev["device_id"] == other["device_id"]
        status, _ = await hs.request("PUT", dev_url, {"display_name": "work"}, token=token)
        assert status == 200
        assert (await hs.request("GET", dev_url, token=token))[1]["display_name"] == "work"
        status, err = await hs.request("PUT", "/_matrix/client/v3/devices/NOPE",
                                       {"display_name": "x"}, token=token)
        assert (status, err["errcode"]) == (404, "M_NOT_FOUND")
        status, err = await hs.request("GET", "/_matrix/client/v3/devices/NOPE", token=token)
        assert status == 404

        status, challenge = await hs.request("DELETE", dev_url, {}, token=token)
        assert status == 401 and "session" in challenge
        status, _ = await hs.request("DELETE", dev_url, {"auth": _password_auth(
            challenge["session"], "pw")}, token=token)
        assert status == 200
        assert (await hs.request("GET", WHOAMI, token=other["access_token"]))[0] == 401

        url = "/_matrix/client/v3/delete_devices"
        body = {"devices": [third["device_id"]]}
        status, challenge = await hs.request("POST", url, body, token=token)
        assert status == 401
        body["auth"] = _password_auth(challenge["session"], "pw")
        status, _ = await hs.request("POST", url, body, token=token)
        assert status == 200
        _, listing = await hs.request("GET", "/_matrix/client/v3/devices", token=token)
        assert [d["device_id"] for d in listing["devices"]] == [me["device_id"]]
        status, err = await hs.request("POST", url, {"devices": "x"}, token=token)
        assert (status, err["errcode"]) == (400, "M_BAD_JSON")


async def test_profile(database_config):
    async with running_server(database_config) as hs:
        me = await hs.register("alice")
        bob = await hs.register("bob")
        base = "/_matrix/client/v3/profile/@alice:test.local"
        status, profile = await hs.request("GET", base)
        assert (status, profile) == (200, {"displayname": "alice"})
        status, _ = await hs.request("PUT", base + "/displayname", {"displayname": "Alice A"},
                                     token=me["access_token"])
        assert status == 200
        status, _ = await hs.request("PUT", base + "/avatar_url",
                                     {"avatar_url": "mxc://test.local/abc"},
                                     token=me["access_token"])
        assert status == 200
        _, profile = await hs.request("GET", base)
        assert profile == {"displayname": "Alice A", "avatar_url": "mxc://test.local/abc"}
        _, name = await hs.request("GET", base + "/displayname")
        assert name == {"displayname": "Alice A"}
        status, err = await hs.request("PUT", base + "/displayname", {"displayname": "Evil"},
                                       token=bob["access_token"])
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        status, err = await hs.request("PUT", base + "/displayname", {"displayname": 42},
                                       token=me["access_token"])
        assert (status, err["errcode"]) == (400, "M_BAD_JSON")
        status, err = await hs.request("PUT", base + "/displayname", {},
                                       token=me["access_token"])
        assert (status, err["errcode"]) == (400, "M_MISSING_PARAM")
        status, err = await hs.request("GET", "/_matrix/client/v3/profile/@nobody:test.local")
        assert (status, err["errcode"]) == (404, "M_NOT_FOUND")
        # Custom fields (v1.16) and deletion.
        status, _ = await hs.request("PUT", base + "/m.tz", {"m.tz": "Europe/London"},
                                     token=me["access_token"])
        assert status == 200
        status, _ = await hs.request("DELETE", base + "/avatar_url", token=me["access_token"])
        _, profile = await hs.request("GET", base)
        assert profile == {"displayname": "Alice A", "m.tz": "Europe/London"}
