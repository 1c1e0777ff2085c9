"""OpenID tokens: ``POST /user/{userId}/openid/request_token`` and the federation
``GET /openid/userinfo`` an integration server calls with the token."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from urllib.parse import quote

import aiohttp
from aiohttp.test_utils import TestServer
from tests.server.harness import FAST_HASHER, SERVER_NAME, Client, make_config

from hs.app import Services, create_app
from hs.handlers.openid import hash_token
from hs.handlers.passwords import Passwords
from hs.storage.database import DatabaseConfig, open_database

USERINFO = "/_matrix/federation/v1/openid/userinfo"


def request_token_path(user_id: str) -> str:
    return f"/_matrix/client/v3/user/{quote(user_id)}/openid/request_token"


@contextlib.asynccontextmanager
async def server_with_federation(database_config: DatabaseConfig) -> AsyncIterator[Client]:
    config = make_config()
    db = await open_database(database_config)
    services = await Services.build(config, db, passwords=Passwords(
        config.password_minimum_length, FAST_HASHER))
    app = create_app(services, resources=frozenset({"client", "federation"}))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield Client(session, str(server.make_url("")).rstrip("/"), services)
    finally:
        await server.close()
        await services.close()


async def test_request_token_and_userinfo(database_config):
    async with server_with_federation(database_config) as hs:
        me = await hs.register("alice")
        status, body = await hs.request("POST", request_token_path(me["user_id"]), {},
                                        token=me["access_token"])
        assert status == 200, body
        assert body["token_type"] == "Bearer"
        assert body["matrix_server_name"] == SERVER_NAME
        assert body["expires_in"] == 3600
        token = body["access_token"]
        assert isinstance(token, str) and len(token) >= 43
        status, info = await hs.request("GET", f"{USERINFO}?access_token={quote(token)}")
        assert (status, info) == (200, {"sub": me["user_id"]})
        # Only the hash is stored.
        stored = await hs.services.db.fetchall("SELECT token_hash FROM openid_tokens")
        assert stored == [(hash_token(token),)]
        # A second request gives a different token; both work.
        _, again = await hs.request("POST", request_token_path(me["user_id"]), {},
                                    token=me["access_token"])
        assert again["access_token"] != token
        status, info = await hs.request(
            "GET", f"{USERINFO}?access_token={quote(again['access_token'])}")
        assert (status, info) == (200, {"sub": me["user_id"]})


async def test_request_token_for_other_user_is_forbidden(database_config):
    async with server_with_federation(database_config) as hs:
        me = await hs.register("alice")
        bob = await hs.register("bob")
        status, err = await hs.request("POST", request_token_path(bob["user_id"]), {},
                                       token=me["access_token"])
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        status, err = await hs.request("POST", request_token_path(me["user_id"]), {})
        assert (status, err["errcode"]) == (401, "M_MISSING_TOKEN")


async def test_userinfo_unknown_missing_and_expired(database_config):
    async with server_with_federation(database_config) as hs:
        me = await hs.register("alice")
        status, err = await hs.request("GET", f"{USERINFO}?access_token=nope")
        assert (status, err["errcode"]) == (401, "M_UNKNOWN_TOKEN")
        status, err = await hs.request("GET", USERINFO)
        assert (status, err["errcode"]) == (401, "M_UNKNOWN_TOKEN")
        # The client access token is not an OpenID token.
        status, err = await hs.request("GET", f"{USERINFO}?access_token={me['access_token']}")
        assert (status, err["errcode"]) == (401, "M_UNKNOWN_TOKEN")

        real_clock = hs.services.clock
        _, body = await hs.request("POST", request_token_path(me["user_id"]), {},
                                   token=me["access_token"])
        token = body["access_token"]
        later = real_clock() + 3600 * 1000 + 1
        hs.services.clock = lambda: later
        try:
            status, err = await hs.request("GET", f"{USERINFO}?access_token={quote(token)}")
            assert (status, err["errcode"]) == (401, "M_UNKNOWN_TOKEN")
            # Issuing a new token sweeps the expired one away.
            hs.services.clock = lambda: later + 120_000
            _, fresh = await hs.request("POST", request_token_path(me["user_id"]), {},
                                        token=me["access_token"])
            stored = await hs.services.db.fetchall("SELECT token_hash FROM openid_tokens")
            assert stored == [(hash_token(fresh["access_token"]),)]
        finally:
            hs.services.clock = real_clock
