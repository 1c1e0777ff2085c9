"""/register: disabled, dummy UIA, registration tokens, guests, availability, admin API."""

from __future__ import annotations

import hashlib
import hmac

from tests.server.harness import running_server

REGISTER = "/_matrix/client/v3/register"


async def test_registration_disabled_by_default(database_config):
    async with running_server(database_config, enable_registration=False) as hs:
        status, body = await hs.request("POST", REGISTER, {"username": "a", "password": "p"})
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


async def test_dummy_flow_and_login_response(database_config):
    async with running_server(database_config) as hs:
        body = {"username": "Alice", "password": "pw", "initial_device_display_name": "phone"}
        status, challenge = await hs.request("POST", REGISTER, body)
        assert status == 401
        assert challenge["flows"] == [{"stages": ["m.login.dummy"]}]
        assert challenge["session"]
        # A session is bound to its endpoint.
        status, err = await hs.request("POST", "/_matrix/client/v3/delete_devices",
                                       {"devices": [], "auth": {"session": challenge["session"],
                                                                "type": "m.login.dummy"}})
        assert status == 401 and err["errcode"] == "M_MISSING_TOKEN"
        body["auth"] = {"type": "m.login.dummy", "session": challenge["session"]}
        status, result = await hs.request("POST", REGISTER, body)
        assert status == 200, result
        assert result["user_id"] == "@alice:test.local"  # lower-cased
        assert result["access_token"] and result["device_id"]
        status, who = await hs.request("GET", "/_matrix/client/v3/account/whoami",
                                       token=result["access_token"])
        assert who == {"user_id": "@alice:test.local", "device_id": result["device_id"],
                       "is_guest": False}
        status, dev = await hs.request("GET", f"/_matrix/client/v3/devices/{result['device_id']}",
                                       token=result["access_token"])
        assert dev["display_name"] == "phone"
        # The session is used up; the username is now taken.
        status, again = await hs.request("POST", REGISTER, {"username": "alice", "password": "x"})
        assert (status, again["errcode"]) == (400, "M_USER_IN_USE")


async def test_register_r0_alias_inhibit_login_and_generated_username(database_config):
    async with running_server(database_config) as hs:
        body = {"password": "pw", "inhibit_login": True}
        _, challenge = await hs.request("POST", "/_matrix/client/r0/register", body)
        body["auth"] = {"type": "m.login.dummy", "session": challenge["session"]}
        status, result = await hs.request("POST", "/_matrix/client/r0/register", body)
        assert status == 200
        assert result["user_id"].endswith(":test.local")
        assert "access_token" not in result and "device_id" not in result


async def test_invalid_username_and_availability(database_config):
    async with running_server(database_config) as hs:
        status, body = await hs.request("POST", REGISTER, {"username": "bad name", "password": "p"})
        assert (status, body["errcode"]) == (400, "M_INVALID_USERNAME")
        status, body = await hs.request("GET", "/_matrix/client/v3/register/available?username=bob")
        assert (status, body) == (200, {"available": True})
        await hs.register("bob")
        status, body = await hs.request("GET", "/_matrix/client/v3/register/available?username=bob")
        assert (status, body["errcode"]) == (400, "M_USER_IN_USE")
        status, body = await hs.request(
            "GET", "/_matrix/client/v3/register/available?username=B%20")
        assert (status, body["errcode"]) == (400, "M_INVALID_USERNAME")


async def test_registration_token_flow(database_config):
    async with running_server(database_config, registration_requires_token=True,
                              enable_registration_without_verification=False) as hs:
        await hs.services.store.register_user("@admin:test.local", None, 0, admin=True)
        admin = await hs.services.auth.issue_session("@admin:test.local", "ADM", refreshable=False)
        await hs.services.store.ensure_device("@admin:test.local", "ADM", None, 0)
        status, tok = await hs.request("POST", "/_synapse/admin/v1/registration_tokens/new",
                                       {"token": "abc", "uses_allowed": 1},
                                       token=admin["access_token"])
        assert status == 200 and tok["token"] == "abc"
        status, valid = await hs.request(
            "GET", "/_matrix/client/v1/register/m.login.registration_token/validity?token=abc")
        assert valid == {"valid": True}

        body = {"username": "carol", "password": "pw"}
        _, challenge = await hs.request("POST", REGISTER, body)
        assert challenge["flows"] == [{"stages": ["m.login.registration_token"]}]
        body["auth"] = {"type": "m.login.registration_token", "token": "wrong",
                        "session": challenge["session"]}
        status, err = await hs.request("POST", REGISTER, body)
        assert status == 401 and err["errcode"] == "M_FORBIDDEN" and "flows" in err
        body["auth"]["token"] = "abc"
        status, result = await hs.request("POST", REGISTER, body)
        assert status == 200, result
        # Single use: now exhausted.
        _, valid = await hs.request(
            "GET", "/_matrix/client/v1/register/m.login.registration_token/validity?token=abc")
        assert valid == {"valid": False}
        body = {"username": "dave", "password": "pw"}
        _, challenge = await hs.request("POST", REGISTER, body)
        body["auth"] = {"type": "m.login.registration_token", "token": "abc",
                        "session": challenge["session"]}
        status, err = await hs.request("POST", REGISTER, body)
        assert status == 401 and err["errcode"] == "M_FORBIDDEN"


async def test_guest_registration(database_config):
    async with running_server(database_config) as hs:
        status, body = await hs.request("POST", REGISTER + "?kind=guest", {})
        assert (status, body["errcode"]) == (403, "M_GUEST_ACCESS_FORBIDDEN")
    async with running_server(database_config, allow_guest_access=True) as hs:
        status, body = await hs.request("POST", REGISTER + "?kind=guest", {"username": "x"})
        assert status == 200
        assert body["user_id"][1:].split(":")[0].isdigit()
        _, who = await hs.request("GET", "/_matrix/client/v3/account/whoami",
                                  token=body["access_token"])
        assert who["is_guest"] is True


def _mac(secret: str, nonce: str, user: str, password: str, admin: bool) -> str:
    msg = b"\x00".join([nonce.encode(), user.encode(), password.encode(),
                        b"admin" if admin else b"notadmin"])
    return hmac.new(secret.encode(), msg, hashlib.sha1).hexdigest()


async def test_shared_secret_admin_registration(database_config):
    async with running_server(database_config, enable_registration=False) as hs:
        url = "/_synapse/admin/v1/register"
        _, n = await hs.request("GET", url)
        bad = {"nonce": n["nonce"], "username": "root", "password": "pw", "admin": True,
               "mac": "00" * 20}
        status, body = await hs.request("POST", url, bad)
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
        status, body = await hs.request("POST", url, bad)  # nonce consumed
        assert status == 400
        _, n = await hs.request("GET", url)
        good = {"nonce": n["nonce"], "username": "root", "password": "pw", "admin": True,
                "mac": _mac("s3cret", n["nonce"], "root", "pw", True)}
        status, body = await hs.request("POST", url, good)
        assert status == 200, body
        assert body["user_id"] == "@root:test.local"
        user = await hs.services.store.get_user("@root:test.local")
        assert user is not None and user.admin


async def test_uia_session_does_not_store_passwords(database_config):
    async with running_server(database_config) as hs:
        _, challenge = await hs.request("POST", REGISTER, {"username": "eve",
                                                           "password": "top-secret"})
        session = await hs.services.store.get_ui_session(challenge["session"])
        assert session is not None
        assert session.clientdict == {"username": "eve"}
        # Finishing with only the session (no body) uses the stored fields, minus the
        # password, which must then be sent again.
        status, body = await hs.request("POST", REGISTER, {"auth": {
            "type": "m.login.dummy", "session": challenge["session"]}})
        assert (status, body["errcode"]) == (400, "M_MISSING_PARAM")
