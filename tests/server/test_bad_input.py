"""Malformed requests get the spec's error codes, never a 500."""

from __future__ import annotations

from tests.server.harness import running_server


async def test_malformed_json_and_wrong_types(database_config):
    async with running_server(database_config) as hs:
        url = "/_matrix/client/v3/login"
        status, body = await hs.request("POST", url, data=b"{not json")
        assert (status, body["errcode"]) == (400, "M_NOT_JSON")
        status, body = await hs.request("POST", url, data=b"[1, 2]")
        assert (status, body["errcode"]) == (400, "M_NOT_JSON")
        status, body = await hs.request("POST", url, data=b"")
        assert (status, body["errcode"]) == (400, "M_NOT_JSON")
        status, body = await hs.request("POST", url, {"type": 7})
        assert (status, body["errcode"]) == (400, "M_BAD_JSON")
        status, body = await hs.request("POST", "/_matrix/client/v3/register",
                                        {"username": ["x"], "password": "p"})
        assert (status, body["errcode"]) == (400, "M_BAD_JSON")
        status, body = await hs.request("POST", "/_matrix/client/v3/register",
                                        {"password": "p", "auth": "nope"})
        assert (status, body["errcode"]) == (400, "M_BAD_JSON")
        status, body = await hs.request("POST", "/_matrix/client/v3/register",
                                        {"password": "p", "refresh_token": "yes"})
        assert (status, body["errcode"]) == (400, "M_BAD_JSON")
        status, body = await hs.request("POST", url, data=b'{"type": "a", "type": "b"}')
        assert (status, body["errcode"]) == (400, "M_BAD_JSON")  # duplicate key
        status, body = await hs.request("POST", url, data=b'{"n": NaN}')
        assert (status, body["errcode"]) == (400, "M_NOT_JSON")
        status, body = await hs.request("POST", url, data=b"[" * 100_000 + b"]" * 100_000)
        assert (status, body["errcode"]) in ((400, "M_NOT_JSON"), (400, "M_BAD_JSON"))
        status, body = await hs.request("POST", url, data=b'{"type": "\xff"}')
        assert (status, body["errcode"]) == (400, "M_NOT_JSON")  # invalid UTF-8
        status, body = await hs.request("POST", "/_matrix/client/v3/register?kind=robot", {})
        assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")


async def test_unknown_uia_session(database_config):
    async with running_server(database_config) as hs:
        status, body = await hs.request("POST", "/_matrix/client/v3/register", {
            "password": "p", "auth": {"type": "m.login.dummy", "session": "nope"}})
        assert status == 400 and body["errcode"] and body["error"]


async def test_oversized_body(database_config):
    async with running_server(database_config, max_request_body_size=1024) as hs:
        big = b'{"type": "m.login.password", "password": "' + b"x" * 4096 + b'"}'
        status, body = await hs.request("POST", "/_matrix/client/v3/login", data=big)
        assert (status, body["errcode"]) == (413, "M_TOO_LARGE")

        async def chunks():
            for _ in range(8):
                yield b"x" * 512

        # Chunked upload: no Content-Length, the limit is enforced while reading.
        async with hs.session.post(hs.base + "/_matrix/client/v3/login", data=chunks()) as resp:
            assert resp.status == 413
            assert (await resp.json())["errcode"] == "M_TOO_LARGE"
