"""Synapse-compatible admin API: users, password reset, deactivation, token management."""

from __future__ import annotations

from tests.server.harness import running_server

USERS = "/_synapse/admin/v2/users/"


async def _admin_token(hs) -> str:
    await hs.services.store.register_user("@root:test.local", None, 0, admin=True)
    await hs.services.store.ensure_device("@root:test.local", "ROOT", None, 0)
    session = await hs.services.auth.issue_session("@root:test.local", "ROOT", refreshable=False)
    return session["access_token"]


async def test_non_admin_is_refused(database_config):
    async with running_server(database_config) as hs:
        alice = await hs.register("alice")
        status, body = await hs.request("GET", USERS + "@alice:test.local",
                                        token=alice["access_token"])
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
        status, body = await hs.request("GET", "/_synapse/admin/v1/registration_tokens")
        assert (status, body["errcode"]) == (401, "M_MISSING_TOKEN")


async def test_create_modify_reset_and_deactivate(database_config):
    async with running_server(database_config) as hs:
        root = await _admin_token(hs)
        status, user = await hs.request("PUT", USERS + "@bob:test.local",
                                        {"password": "pw1", "displayname": "Bob"}, token=root)
        assert status == 201
        assert user["name"] == "@bob:test.local" and user["displayname"] == "Bob"
        assert user["admin"] is False and user["deactivated"] is False
        status, login = await hs.login("bob", "pw1")
        assert status == 200
        status, user = await hs.request("PUT", USERS + "@bob:test.local", {"admin": True},
                                        token=root)
        assert (status, user["admin"]) == (200, True)
        status, err = await hs.request("PUT", USERS + "@bob:test.local", {"admin": "yes"},
                                       token=root)
        assert (status, err["errcode"]) == (400, "M_BAD_JSON")

        status, _ = await hs.request("POST", "/_synapse/admin/v1/reset_password/@bob:test.local",
                                     {"new_password": "pw2"}, token=root)
        assert status == 200
        assert (await hs.request("GET", "/_matrix/client/v3/account/whoami",
                                 token=login["access_token"]))[0] == 401
        assert (await hs.login("bob", "pw2"))[0] == 200

        status, _ = await hs.request("POST", "/_synapse/admin/v1/deactivate/@bob:test.local",
                                     {}, token=root)
        assert status == 200
        _, user = await hs.request("GET", USERS + "@bob:test.local", token=root)
        assert user["deactivated"] is True
        assert (await hs.login("bob", "pw2"))[0] == 403
        status, err = await hs.request("GET", USERS + "@nobody:test.local", token=root)
        assert (status, err["errcode"]) == (404, "M_NOT_FOUND")
        status, err = await hs.request("GET", USERS + "@x:elsewhere.org", token=root)
        assert status == 400


async def test_registration_token_admin(database_config):
    async with running_server(database_config) as hs:
        root = await _admin_token(hs)
        base = "/_synapse/admin/v1/registration_tokens"
        status, made = await hs.request("POST", base + "/new", {"length": 10}, token=root)
        assert status == 200 and len(made["token"]) == 10 and made["uses_allowed"] is None
        status, err = await hs.request("POST", base + "/new", {"token": made["token"]},
                                       token=root)
        assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
        status, err = await hs.request("POST", base + "/new", {"token": "bad token!"},
                                       token=root)
        assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
        _, listing = await hs.request("GET", base, token=root)
        assert [t["token"] for t in listing["registration_tokens"]] == [made["token"]]
        _, one = await hs.request("GET", f"{base}/{made['token']}", token=root)
        assert one == made
        assert (await hs.request("DELETE", f"{base}/{made['token']}", token=root))[0] == 200
        assert (await hs.request("GET", f"{base}/{made['token']}", token=root))[0] == 404
        _, version = await hs.request("GET", "/_synapse/admin/v1/server_version")
        assert version["server_version"].startswith("hs ")
