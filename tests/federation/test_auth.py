"""Inbound request authentication end to end: two servers on 127.0.0.1 over TLS, the
destination fetching the origin's keys from its key endpoint, then every tampering case."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from multidict import CIMultiDict
from tests.federation.helpers import app_with, make_ca, make_client, server_ssl_context, tls_server

from hs.core.json_decode import decode_json
from hs.core.keys import generate_signing_key, get_verify_key
from hs.core.signing import sign_json
from hs.core.x_matrix import XMatrixAuth, format_x_matrix, request_object, sign_request
from hs.federation.auth import FEDERATION_AUTH, FederationAuthenticator, authenticate_request
from hs.federation.client import FederationClient, HttpResponseError
from hs.federation.key_server import KeyServer, setup_key_routes
from hs.federation.keyring import Keyring
from hs.federation.local_keys import LocalKeys, OldVerifyKey

ORIGIN_KEY = generate_signing_key("o1")
OLD_KEY = generate_signing_key("old")
ROGUE_KEY = generate_signing_key("o1")


async def _whoami(request: web.Request) -> web.Response:
    raw = await request.read()
    origin = await authenticate_request(request, decode_json(raw) if raw else None)
    return web.json_response({"origin": origin})


@dataclass
class Pair:
    origin: str
    dest: str
    dest_port: int
    client: FederationClient  # the origin's client
    keyring: Keyring  # the destination's
    ssl: ssl.SSLContext


@contextlib.asynccontextmanager
async def pair(tmp_path: Path, **auth_kw: Any) -> AsyncIterator[Pair]:
    ca = make_ca(tmp_path)
    ctx = server_ssl_context(ca, tmp_path, ["origin.test", "dest.test", "127.0.0.1"])
    hosts = {"origin.test": ["127.0.0.1"], "dest.test": ["127.0.0.1"]}
    origin_app = app_with({})
    key_server = KeyServer(LocalKeys("placeholder", [ORIGIN_KEY]))
    setup_key_routes(origin_app, key_server)
    dest_app = app_with({"/_matrix/federation/v1/whoami{tail:.*}": _whoami})
    dest_client = make_client("placeholder", generate_signing_key("d1"), ca, hosts)
    keyring = Keyring(None, dest_client, min_refetch_interval_ms=0)
    authenticator = FederationAuthenticator("placeholder", keyring, **auth_kw)
    dest_app[FEDERATION_AUTH] = authenticator
    async with tls_server(origin_app, ctx) as o_port, tls_server(dest_app, ctx) as d_port:
        # Server names carry the ports, known only now (explicit port: no well-known).
        origin, dest = f"origin.test:{o_port}", f"dest.test:{d_port}"
        key_server.local_keys = LocalKeys(
            origin, [ORIGIN_KEY],
            {"ed25519:old": OldVerifyKey(get_verify_key(OLD_KEY), 1_000)})
        dest_client.server_name = authenticator.server_name = dest
        origin_client = make_client(origin, ORIGIN_KEY, ca, hosts)
        client_ctx = ssl.create_default_context(cafile=str(ca.path))
        try:
            yield Pair(origin, dest, d_port, origin_client, keyring, client_ctx)
        finally:
            await origin_client.close()
            await dest_client.close()


async def test_signed_requests_authenticate(tmp_path: Path) -> None:
    async with pair(tmp_path) as p:
        path = "/_matrix/federation/v1/whoami/%24a%2Fb"
        assert await p.client.get_json(p.dest, path, {"x": "1"}) == {"origin": p.origin}
        assert await p.client.put_json(p.dest, path, {"k": ["é", 1]}) == {"origin": p.origin}
        assert await p.client.post_json(p.dest, path, {}) == {"origin": p.origin}
        # The destination fetched the origin's key once and cached it.
        assert p.keyring.fetch_count == 1


async def _raw(p: Pair, headers: list[str], *, method: str = "PUT",
               uri: str = "/_matrix/federation/v1/whoami/x?a=1", body: Any = None
               ) -> tuple[int, dict[str, Any]]:
    data = None if body is None else orjson.dumps(body)
    hdrs = [("Authorization", h) for h in headers] + [("Host", p.dest)]
    async with aiohttp.ClientSession() as session, session.request(
        method, f"https://127.0.0.1:{p.dest_port}{uri}", data=data, ssl=p.ssl,
        headers=CIMultiDict(hdrs),
    ) as resp:
        return resp.status, await resp.json()


def _sign(p: Pair, *, key: Any = ORIGIN_KEY, origin: str | None = None,
          destination: str | None = "", method: str = "PUT",
          uri: str = "/_matrix/federation/v1/whoami/x?a=1", content: Any = None) -> str:
    origin = origin or p.origin
    dest = p.dest if destination == "" else destination
    if dest is not None:
        return sign_request(key, origin, dest, method, uri, content)
    obj = sign_json(request_object(method, uri, origin, None, content), origin, key)
    kid = f"ed25519:{key.version}"
    return format_x_matrix(XMatrixAuth(origin, None, kid, obj["signatures"][origin][kid]))


async def test_every_failure_is_401(tmp_path: Path) -> None:
    async with pair(tmp_path) as p:
        body = {"pdus": [1]}
        good = _sign(p, content=body)
        assert await _raw(p, [good], body=body) == (200, {"origin": p.origin})
        # Older senders omit destination: still accepted.
        assert (await _raw(p, [_sign(p, destination=None, content=body)], body=body))[0] == 200
        # A bad header next to a good one does not spoil it.
        assert (await _raw(p, [_sign(p, key=ROGUE_KEY, content=body), good], body=body))[0] == 200
        failures = {
            "no header": ([], body),
            "bearer only": (["Bearer abc"], body),
            "malformed": (["X-Matrix origin="], body),
            "other body": ([good], {"pdus": [2]}),
            "no body": ([good], None),
            "wrong destination": ([_sign(p, destination="dest.test:1", content=body)], body),
            "other query": ([_sign(p, uri="/_matrix/federation/v1/whoami/x?a=2",
                                   content=body)], body),
            "other method": ([_sign(p, method="POST", content=body)], body),
            "rogue key": ([_sign(p, key=ROGUE_KEY, content=body)], body),
            "unknown key id": ([_sign(p, key=generate_signing_key("zz"), content=body)], body),
            "old key": ([_sign(p, key=OLD_KEY, content=body)], body),
            "unreachable origin": ([_sign(p, origin="nowhere.test:1", content=body)], body),
            "two origins": ([good, _sign(p, origin="other.test", content=body)], body),
        }
        for name, (headers, sent) in failures.items():
            status, error = await _raw(p, headers, body=sent)
            assert (status, error.get("errcode")) == (401, "M_UNAUTHORIZED"), name


async def test_domain_whitelist_forbids_other_origins(tmp_path: Path) -> None:
    async with pair(tmp_path, domain_whitelist=["someone.else"]) as p:
        try:
            await p.client.get_json(p.dest, "/_matrix/federation/v1/whoami")
        except HttpResponseError as exc:
            assert (exc.status, exc.errcode) == (403, "M_FORBIDDEN")
        else:
            raise AssertionError("request was accepted")
