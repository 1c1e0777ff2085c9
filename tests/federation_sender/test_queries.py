"""Outbound queries for clients (``FederationQueries``) against a real TLS server on
127.0.0.1: profile, directory, device list, key query/claim with a ``failures`` map."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from tests.federation.helpers import app_with, make_ca, make_client, server_ssl_context, tls_server
from tests.federation_sender.helpers import free_port

from hs.core.keys import generate_signing_key
from hs.handlers.federation_queries import FederationQueries
from hs.http.errors import MatrixError

seen: list[tuple[str, Any]] = []


async def _profile(request: web.Request) -> web.Response:
    if request.query["user_id"].startswith("@missing"):
        return web.json_response({"errcode": "M_NOT_FOUND", "error": "no"}, status=404)
    return web.json_response({"displayname": "Bob", "avatar_url": "mxc://x/y"})


async def _directory(request: web.Request) -> web.Response:
    return web.json_response({"room_id": "!r:remote", "servers": ["remote"]})


async def _devices(request: web.Request) -> web.Response:
    return web.json_response({"user_id": request.match_info["user"], "stream_id": 3,
                              "devices": []})


async def _query(request: web.Request) -> web.Response:
    body = await request.json()
    seen.append(("query", body))
    users = body["device_keys"]
    return web.json_response({
        "device_keys": {u: {"D": {"user_id": u}} for u in users} | {"@intruder:x": {}},
        "master_keys": {u: {"user_id": u, "usage": ["master"]} for u in users}})


async def _claim(request: web.Request) -> web.Response:
    body = await request.json()
    return web.json_response({"one_time_keys": {
        u: {d: {f"{alg}:K": {"key": "k"}} for d, alg in devs.items()}
        for u, devs in body["one_time_keys"].items()}})


async def test_queries(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    ctx = server_ssl_context(ca, tmp_path, ["remote.test", "127.0.0.1"])
    hosts = {"remote.test": ["127.0.0.1"], "dead.test": ["127.0.0.1"]}
    fed = "/_matrix/federation/v1"
    app = app_with({f"{fed}/query/profile": _profile, f"{fed}/query/directory": _directory,
                    f"{fed}/user/devices/{{user}}": _devices, f"{fed}/user/keys/query": _query,
                    f"{fed}/user/keys/claim": _claim})
    async with tls_server(app, ctx) as port:
        remote, dead = f"remote.test:{port}", f"dead.test:{free_port()}"
        client = make_client("me.test", generate_signing_key("k"), ca, hosts)
        q = FederationQueries("me.test", client, timeout=5)
        try:
            assert (await q.query_profile(f"@bob:{remote}"))["displayname"] == "Bob"
            with pytest.raises(MatrixError) as err:
                await q.query_profile(f"@missing:{remote}")
            assert err.value.status == 404
            with pytest.raises(MatrixError) as err:
                await q.query_profile(f"@bob:{dead}")
            assert err.value.status == 502
            assert (await q.query_directory(f"#a:{remote}"))["room_id"] == "!r:remote"
            assert (await q.user_devices(f"@bob:{remote}"))["stream_id"] == 3

            bob, eve = f"@bob:{remote}", f"@eve:{dead}"
            result = await q.query_keys({bob: [], eve: ["X"]})
            assert result["device_keys"] == {bob: {"D": {"user_id": bob}}}
            assert result["master_keys"][bob]["usage"] == ["master"]
            assert set(result["failures"]) == {dead}
            assert result["failures"][dead]["status"] == 503
            claimed = await q.claim_keys({bob: {"D": "signed_curve25519"},
                                          eve: {"X": "signed_curve25519"}})
            assert claimed["one_time_keys"] == {
                bob: {"D": {"signed_curve25519:K": {"key": "k"}}}}
            assert set(claimed["failures"]) == {dead}
        finally:
            await client.close()
