"""Test helpers: a throwaway CA, certificates for loopback "hosts", TLS aiohttp servers."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hs.federation.client import FederationClient, FederationClientConfig
from hs.federation.discovery import SrvRecord
from hs.federation.ip_filter import StaticResolver

LOOPBACK = "127.0.0.0/8"


@dataclass
class CA:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    path: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(tmp: Path, cn: str = "hs test CA") -> CA:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn)).issuer_name(_name(cn))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    path = tmp / f"ca-{x509.random_serial_number()}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return CA(key, cert, path)


def server_ssl_context(ca: CA, tmp: Path, names: list[str]) -> ssl.SSLContext:
    """A server context whose certificate (issued by ``ca``) covers ``names`` (DNS or IP)."""
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for n in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            sans.append(x509.DNSName(n))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0])).issuer_name(ca.cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                       critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    stem = tmp / f"srv-{x509.random_serial_number()}"
    cert_path, key_path = stem.with_suffix(".crt"), stem.with_suffix(".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


@contextlib.asynccontextmanager
async def tls_server(app: web.Application, ctx: ssl.SSLContext | None) -> AsyncIterator[int]:
    """Serve ``app`` on 127.0.0.1 (TLS when ``ctx``); yields the port."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


def app_with(routes: dict[str, Callable[[web.Request], Any]]) -> web.Application:
    """An app answering GET/POST/PUT on each path with the given handler."""
    app = web.Application(middlewares=[error_middleware])
    for path, handler in routes.items():
        app.router.add_route("*", path, handler)
    return app


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turns ``MatrixError`` into its response, as the real server's middleware does."""
    from hs.http.errors import MatrixError

    try:
        return await handler(request)  # type: ignore[no-any-return]
    except MatrixError as exc:
        return web.json_response(exc.body(), status=exc.status)


def static_srv(table: dict[str, list[SrvRecord]]) -> Callable[[str], Any]:
    """An injected SRV resolver answering from a table and recording the queries."""
    queries: list[str] = []

    async def resolve(name: str) -> list[SrvRecord]:
        queries.append(name)
        return list(table.get(name, []))

    resolve.queries = queries  # type: ignore[attr-defined]
    return resolve


def make_client(
    server_name: str,
    signing_key: Any,
    ca: CA | None,
    hosts: dict[str, list[str]],
    *,
    well_known_port: int = 443,
    srv: Callable[[str], Any] | None = None,
    **config: Any,
) -> FederationClient:
    """A client trusting ``ca``, allowed to reach loopback, resolving names from ``hosts``."""
    config.setdefault("ip_range_whitelist", (LOOPBACK,))
    if ca is not None:
        config.setdefault("custom_ca_list", (str(ca.path),))
    cfg = FederationClientConfig(well_known_port=well_known_port, request_timeout=10,
                                 connect_timeout=5, well_known_timeout=5, **config)
    return FederationClient(server_name, signing_key, cfg,
                            srv_resolver=srv or static_srv({}),
                            address_resolver=StaticResolver(hosts))
