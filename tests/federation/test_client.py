"""The outbound client against real TLS servers on 127.0.0.1: discovery over HTTPS,
X-Matrix signing, TLS policy knobs, IP blacklist, limits and error mapping."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from tests.federation.helpers import (
    CA,
    app_with,
    make_ca,
    make_client,
    server_ssl_context,
    static_srv,
    tls_server,
)

from hs.core.keys import generate_signing_key, get_verify_key
from hs.core.x_matrix import parse_x_matrix, verify_request
from hs.federation.client import (
    DestinationNotAllowed,
    FederationClientConfig,
    FederationConnectionError,
    FederationTimeout,
    HttpResponseError,
    InvalidResponse,
    ResponseTooLarge,
    encode_path,
)
from hs.federation.discovery import SrvRecord

KEY = generate_signing_key("c1")
ME = "me.test"
SEEN = web.AppKey("seen", list)
NAMES = ["remote.test", "delegated.test", "srv.test", "redir.test", "loop.test", "srvdeleg.test",
         "ipdeleg.test", "127.0.0.1"]


@dataclass
class Env:
    ca: CA
    port: int
    hosts: dict[str, list[str]]
    seen: list[dict[str, Any]]


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    record = {"host": request.headers.get("Host"), "auth": request.headers.get("Authorization"),
              "uri": request.raw_path, "method": request.method,
              "content": orjson.loads(body) if body else None}
    request.app[SEEN].append(record)
    return web.json_response(record)


def _well_known(port: int):
    async def handler(request: web.Request) -> web.Response:
        host = request.host.split(":")[0]
        if host == "remote.test":
            return web.json_response({"m.server": f"delegated.test:{port}"},
                                     headers={"Cache-Control": "max-age=600"})
        if host == "srvdeleg.test":
            return web.json_response({"m.server": "delegated.test"})
        if host == "ipdeleg.test":
            return web.json_response({"m.server": f"127.0.0.1:{port}"})
        if host == "redir.test":
            raise web.HTTPFound(f"https://remote.test:{port}/.well-known/matrix/server")
        if host == "loop.test":
            raise web.HTTPFound(f"https://loop.test:{port}/.well-known/matrix/server")
        return web.json_response({"errcode": "M_NOT_FOUND"}, status=404)
    return handler


async def _big(request: web.Request) -> web.StreamResponse:
    if request.query.get("chunked"):
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(40):
            await response.write(b" " * 65536)
        await response.write(b"{}")
        return response
    return web.Response(body=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                        content_type="application/json")


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.json_response({})


async def _err(request: web.Request) -> web.Response:
    return web.json_response({"errcode": "M_FORBIDDEN", "error": "nope"}, status=403)


async def _notjson(request: web.Request) -> web.Response:
    return web.Response(body=b'{"a": NaN}', content_type="application/json")


@contextlib.asynccontextmanager
async def env(tmp_path: Path, names: list[str] = NAMES) -> AsyncIterator[Env]:
    ca = make_ca(tmp_path)
    ctx = server_ssl_context(ca, tmp_path, names)
    seen: list[dict[str, Any]] = []
    holder: dict[str, int] = {}

    async def well_known(request: web.Request) -> web.Response:
        return await _well_known(holder["port"])(request)

    app = app_with({"/.well-known/matrix/server": well_known, "/_matrix/echo{tail:.*}": _echo,
                    "/big": _big, "/slow": _slow, "/err": _err, "/notjson": _notjson})
    app[SEEN] = seen
    async with tls_server(app, ctx) as port:
        holder["port"] = port
        hosts = {n: ["127.0.0.1"] for n in [*NAMES, "target.test", "other.test"]}
        yield Env(ca, port, hosts, seen)


def _client(e: Env, **kw: Any):
    return make_client(ME, KEY, kw.pop("ca", e.ca), e.hosts, well_known_port=e.port, **kw)


def _check_signed(record: dict[str, Any], destination: str) -> None:
    auth = parse_x_matrix(record["auth"])
    assert (auth.origin, auth.destination) == (ME, destination)
    verify_request(auth, record["method"], record["uri"], record["content"], get_verify_key(KEY))


async def test_well_known_delegation_host_header_and_signature(tmp_path: Path) -> None:
    async with env(tmp_path) as e:
        client = _client(e)
        try:
            path = "/_matrix/echo" + encode_path("a/b", "$ev:x")
            result = await client.get_json("remote.test", path, {"v": ["1", "2"], "q": "é"})
            assert result["host"] == f"delegated.test:{e.port}"
            assert result["uri"] == "/_matrix/echo/a%2Fb/%24ev%3Ax?v=1&v=2&q=%C3%A9"
            _check_signed(result, "remote.test")  # signed for the name, not the delegate
            result = await client.put_json("remote.test", "/_matrix/echo/x", {"k": [1, "é"]})
            assert result["content"] == {"k": [1, "é"]}
            _check_signed(result, "remote.test")
            # The well-known answer was cached: one more lookup does not refetch.
            assert client.discovery.cached_well_known("remote.test")[0] == \
                f"delegated.test:{e.port}"
        finally:
            await client.close()


async def test_well_known_redirects_followed_and_loops_refused(tmp_path: Path) -> None:
    async with env(tmp_path) as e:
        client = _client(e)
        try:
            assert await client.discovery.well_known("redir.test") == f"delegated.test:{e.port}"
            assert await client.discovery.well_known("loop.test") is None
            with pytest.raises(ValueError, match="redirect loop"):
                await client.fetch_well_known("loop.test")
        finally:
            await client.close()


async def test_srv_target_with_sni_and_host_of_the_server_name(tmp_path: Path) -> None:
    async with env(tmp_path) as e:
        srv = static_srv({"_matrix-fed._tcp.srv.test": [SrvRecord(1, 0, "target.test", e.port)]})
        client = _client(e, srv=srv)
        try:
            # The certificate covers srv.test but not target.test: SNI/verification must use
            # the server's hostname (spec step 4), and so must the Host header.
            result = await client.get_json("srv.test", "/_matrix/echo")
            assert result["host"] == "srv.test"
            _check_signed(result, "srv.test")
        finally:
            await client.close()


async def test_delegation_to_srv_and_to_ip_literal(tmp_path: Path) -> None:
    async with env(tmp_path) as e:
        srv = static_srv({"_matrix-fed._tcp.delegated.test": [
            SrvRecord(1, 0, "target.test", e.port)]})
        client = _client(e, srv=srv)
        try:
            # 3.3: SRV of the delegated host; Host and certificate are the delegated host's.
            result = await client.get_json("srvdeleg.test", "/_matrix/echo")
            assert result["host"] == "delegated.test"
            _check_signed(result, "srvdeleg.test")
            # 3.1: delegated to an IP literal with a port; Host is that IP and port.
            result = await client.get_json("ipdeleg.test", "/_matrix/echo")
            assert result["host"] == f"127.0.0.1:{e.port}"
            _check_signed(result, "ipdeleg.test")
        finally:
            await client.close()


async def test_ip_literal_destination(tmp_path: Path) -> None:
    async with env(tmp_path) as e:
        client = _client(e)
        try:
            result = await client.get_json(f"127.0.0.1:{e.port}", "/_matrix/echo")
            assert result["host"] == f"127.0.0.1:{e.port}"
            _check_signed(result, f"127.0.0.1:{e.port}")
        finally:
            await client.close()


async def test_blacklist_blocks_loopback_unless_whitelisted(tmp_path: Path) -> None:
    async with env(tmp_path) as e:
        client = _client(e, ip_range_whitelist=())
        try:
            for destination in (f"127.0.0.1:{e.port}", f"remote.test:{e.port}", "remote.test"):
                with pytest.raises(FederationConnectionError):
                    await client.get_json(destination, "/_matrix/echo")
            assert e.seen == []
            # The well-known fetch is filtered too.
            assert await client.discovery.well_known("redir.test") is None
        finally:
            await client.close()
        client = _client(e, ip_range_whitelist=("127.0.0.1/32",))
        try:
            await client.get_json(f"remote.test:{e.port}", "/_matrix/echo")
            assert len(e.seen) == 1
        finally:
            await client.close()


async def test_certificate_policy(tmp_path: Path) -> None:
    async with env(tmp_path) as e:
        dest = f"remote.test:{e.port}"
        untrusting = _client(e, ca=None)
        wrong_name = _client(e)
        insecure = _client(e, ca=None, verify_certificates=False)
        globbed = _client(e, ca=None, certificate_verification_whitelist=("*.TEST",))
        try:
            # The CA store is loaded at the first request, not at startup.
            assert untrusting._verifying_ssl is None and insecure._insecure_ssl is None
            with pytest.raises(FederationConnectionError):
                await untrusting.get_json(dest, "/_matrix/echo")
            with pytest.raises(FederationConnectionError):
                await wrong_name.get_json(f"other.test:{e.port}", "/_matrix/echo")
            # federation_custom_ca_list replaces the system store (Synapse semantics).
            assert len(wrong_name._verifying_ssl.get_ca_certs()) == 1
            assert wrong_name._verifying_ssl.verify_mode == ssl.CERT_REQUIRED
            await insecure.get_json(dest, "/_matrix/echo")
            await globbed.get_json(dest, "/_matrix/echo")
            assert len(e.seen) == 2
        finally:
            for c in (untrusting, wrong_name, insecure, globbed):
                await c.close()


async def test_domain_whitelist(tmp_path: Path) -> None:
    async with env(tmp_path) as e:
        client = _client(e, domain_whitelist=(f"remote.test:{e.port}",))
        try:
            await client.get_json(f"remote.test:{e.port}", "/_matrix/echo")
            with pytest.raises(DestinationNotAllowed):
                await client.get_json(f"delegated.test:{e.port}", "/_matrix/echo")
            with pytest.raises(DestinationNotAllowed):
                await client.get_json("not a name", "/_matrix/echo")
            assert len(e.seen) == 1
        finally:
            await client.close()


async def test_limits_and_error_mapping(tmp_path: Path) -> None:
    async with env(tmp_path) as e:
        dest = f"remote.test:{e.port}"
        client = _client(e, max_response_size=1024 * 1024)
        try:
            with pytest.raises(ResponseTooLarge):
                await client.get_json(dest, "/big")
            with pytest.raises(ResponseTooLarge):
                await client.get_json(dest, "/big", {"chunked": "1"})
            assert await client.get_json(dest, "/big", max_response_size=3 * 1024 * 1024) == {}
            with pytest.raises(FederationTimeout):
                await client.get_json(dest, "/slow", timeout=0.3)
            with pytest.raises(HttpResponseError) as info:
                await client.get_json(dest, "/err")
            assert (info.value.status, info.value.errcode, info.value.error) == (
                403, "M_FORBIDDEN", "nope")
            with pytest.raises(InvalidResponse):
                await client.get_json(dest, "/notjson")
            with pytest.raises(FederationConnectionError):
                await client.get_json("unknown.test:1", "/x")
        finally:
            await client.close()


def test_config_from_homeserver_config() -> None:
    class Cfg:
        federation_verify_certificates = False
        federation_custom_ca_list = ["/ca.pem"]
        federation_certificate_verification_whitelist = ["*.onion"]
        federation_domain_whitelist = ["a.org"]
        ip_range_blacklist: list[str] = []
        ip_range_whitelist = ["10.0.0.0/8"]

    cfg = FederationClientConfig.from_homeserver_config(Cfg())
    assert cfg == FederationClientConfig(
        verify_certificates=False, custom_ca_list=("/ca.pem",),
        certificate_verification_whitelist=("*.onion",), domain_whitelist=("a.org",),
        ip_range_blacklist=(), ip_range_whitelist=("10.0.0.0/8",))
    # An explicitly empty blacklist blocks nothing extra (Synapse); unset means the default.
    assert FederationClientConfig.from_homeserver_config(object()) == FederationClientConfig()
    assert FederationClientConfig().ip_range_blacklist is None
