"""/login, /refresh, /logout(/all), whoami, token auth errors, login tokens."""

from __future__ import annotations

from tests.server.harness import running_server

WHOAMI = "/_matrix/client/v3/account/whoami"


async def test_login_flows_and_password_login(database_config):
    async with running_server(database_config) as hs:
        _, flows = await hs.request("GET", "/_matrix/client/v3/login")
        types = [f["type"] for f in flows["flows"]]
        assert "m.login.password" in types and "m.login.token" in types
        await hs.register("alice", "secret")
        # m.id.user with a localpart, a full user ID, and the legacy "user" field.
        status, body = await hs.login("alice", "secret")
        assert status == 200 and body["user_id"] == "@alice:test.local"
        status, body = await hs.login("@alice:test.local", "secret", device_id="MYDEV")
        assert status == 200 and body["device_id"] == "MYDEV"
        status, legacy = await hs.request("POST", "/_matrix/client/r0/login", {
            "type": "m.login.password", "user": "alice", "password": "secret"})
        assert status == 200 and legacy["user_id"] == "@alice:test.local"
        # Logging in again on MYDEV invalidates the device's previous token.
        status, again = await hs.login("alice", "secret", device_id="MYDEV")
        status, err = await hs.request("GET", WHOAMI, token=body["access_token"])
        assert (status, err["errcode"]) == (401, "M_UNKNOWN_TOKEN")
        status, who = await hs.request("GET", WHOAMI, token=again["access_token"])
        assert who["device_id"] == "MYDEV"


async def test_wrong_password_unknown_user_and_bad_type(database_config):
    async with running_server(database_config) as hs:
        await hs.register("alice", "secret")
        status, body = await hs.login("alice", "nope")
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
        status, body = await hs.login("nobody", "secret")
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
        status, body = await hs.request("POST", "/_matrix/client/v3/login",
                                        {"type": "m.login.magic"})
        assert (status, body["errcode"]) == (400, "M_UNKNOWN")
        status, body = await hs.request("POST", "/_matrix/client/v3/login", {
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": 5},
            "password": "x"})
        assert (status, body["errcode"]) == (400, "M_BAD_JSON")


async def test_token_errors(database_config):
    async with running_server(database_config) as hs:
        status, body = await hs.request("GET", WHOAMI)
        assert (status, body["errcode"]) == (401, "M_MISSING_TOKEN")
        status, body = await hs.request("GET", WHOAMI, token="hsat_bogus")
        assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")
        status, body = await hs.request("GET", WHOAMI, headers={"Authorization": "Basic xyz"})
        assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")


async def test_logout_and_logout_all(database_config):
    async with running_server(database_config) as hs:
        first = await hs.register("alice")
        _, second = await hs.login("alice")
        _, third = await hs.login("alice")
        status, _ = await hs.request("POST", "/_matrix/client/v3/logout",
                                     token=first["access_token"])
        assert status == 200
        status, body = await hs.request("GET", WHOAMI, token=first["access_token"])
        assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")
        _, devices = await hs.request("GET", "/_matrix/client/v3/devices",
                                      token=second["access_token"])
        assert {d["device_id"] for d in devices["devices"]} == {second["device_id"],
                                                                 third["device_id"]}
        status, _ = await hs.request("POST", "/_matrix/client/v3/logout/all",
                                     token=second["access_token"])
        assert status == 200
        for session in (second, third):
            status, body = await hs.request("GET", WHOAMI, token=session["access_token"])
            assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")


async def test_refresh_tokens(database_config):
    async with running_server(database_config) as hs:
        await hs.register("alice")
        status, login = await hs.login("alice", refresh_token=True)
        assert status == 200 and login["refresh_token"] and login["expires_in_ms"] > 0
        status, new = await hs.request("POST", "/_matrix/client/v3/refresh",
                                       {"refresh_token": login["refresh_token"]})
        assert status == 200 and new["refresh_token"] != login["refresh_token"]
        # Until the new access token is used, the old refresh token still works (retry).
        status, retry = await hs.request("POST", "/_matrix/client/v3/refresh",
                                         {"refresh_token": login["refresh_token"]})
        assert status == 200
        status, who = await hs.request("GET", WHOAMI, token=retry["access_token"])
        assert who["device_id"] == login["device_id"]
        status, body = await hs.request("POST", "/_matrix/client/v3/refresh",
                                        {"refresh_token": login["refresh_token"]})
        assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")
        status, body = await hs.request("GET", WHOAMI, token=login["access_token"])
        assert status == 401
        status, body = await hs.request("POST", "/_matrix/client/v3/refresh", {})
        assert (status, body["errcode"]) == (400, "M_MISSING_PARAM")


async def test_expired_access_token_is_soft_logout(database_config):
    async with running_server(database_config, refreshable_access_token_lifetime=1) as hs:
        await hs.register("alice")
        _, login = await hs.login("alice", refresh_token=True)
        import asyncio

        await asyncio.sleep(0.01)
        status, body = await hs.request("GET", WHOAMI, token=login["access_token"])
        assert (status, body["errcode"], body["soft_logout"]) == (401, "M_UNKNOWN_TOKEN", True)


async def test_login_token_via_existing_session(database_config):
    async with running_server(database_config,
                              login_via_existing_session={"enabled": True}) as hs:
        alice = await hs.register("alice", "secret")
        url = "/_matrix/client/v1/login/get_token"
        status, challenge = await hs.request("POST", url, {}, token=alice["access_token"])
        assert status == 401 and challenge["flows"] == [{"stages": ["m.login.password"]}]
        status, body = await hs.request("POST", url, {"auth": {
            "type": "m.login.password", "session": challenge["session"], "password": "secret",
            "identifier": {"type": "m.id.user", "user": "alice"}}}, token=alice["access_token"])
        assert status == 200, body
        token = body["login_token"]
        status, login = await hs.request("POST", "/_matrix/client/v3/login",
                                         {"type": "m.login.token", "token": token})
        assert status == 200 and login["user_id"] == "@alice:test.local"
        status, again = await hs.request("POST", "/_matrix/client/v3/login",
                                         {"type": "m.login.token", "token": token})
        assert (status, again["errcode"]) == (403, "M_FORBIDDEN")


async def test_query_string_token_still_accepted(database_config):
    async with running_server(database_config) as hs:
        alice = await hs.register("alice")
        status, who = await hs.request(
            "GET", f"/_matrix/client/v3/account/whoami?access_token={alice['access_token']}")
        assert status == 200 and who["user_id"] == "@alice:test.local"
