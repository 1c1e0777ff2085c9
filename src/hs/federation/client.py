"""Outbound federation HTTP: discovery, TLS policy, IP filtering, X-Matrix signing, limits.

Every request is signed (``hs.core.x_matrix``) with the destination's *server name* (never
the delegated host), sent to the endpoints ``ServerDiscovery`` finds, and its JSON response
decoded with ``decode_strict``. Admin knobs use Synapse's names: see ``FederationClientConfig``.
"""

from __future__ import annotations

import fnmatch
import logging
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import orjson
from aiohttp.abc import AbstractResolver
from nacl.signing import SigningKey
from yarl import URL

from hs.core.json_decode import JSONDecodeError, decode_strict
from hs.core.x_matrix import sign_request
from hs.federation.discovery import (
    WELL_KNOWN_MAX_BODY,
    ResolvedServer,
    ServerDiscovery,
    SrvResolver,
    WellKnownResponse,
    hostname_of,
)
from hs.federation.ip_filter import BlockedAddressError, FilteringResolver, IPFilter

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 5


@dataclass(frozen=True)
class FederationClientConfig:
    """Outbound settings; field names follow Synapse's config keys minus ``federation_``."""

    #: ``federation_verify_certificates``
    verify_certificates: bool = True
    #: ``federation_custom_ca_list``: PEM CA files that, as in Synapse, *replace* the
    #: operating system's trust store for federation (private federations).
    custom_ca_list: tuple[str, ...] = ()
    #: ``federation_certificate_verification_whitelist``: globs of hostnames not verified.
    certificate_verification_whitelist: tuple[str, ...] = ()
    #: ``federation_domain_whitelist``: when set, the only servers we federate with.
    domain_whitelist: tuple[str, ...] | None = None
    #: ``ip_range_blacklist``; None means ``ip_filter.DEFAULT_IP_RANGE_BLACKLIST``.
    ip_range_blacklist: tuple[Any, ...] | None = None
    #: ``ip_range_whitelist``
    ip_range_whitelist: tuple[Any, ...] = ()
    request_timeout: float = 60.0
    connect_timeout: float = 15.0
    well_known_timeout: float = 20.0
    max_response_size: int = 100 * 1024 * 1024
    user_agent: str = "hs"
    #: Port of ``https://<hostname>/.well-known``; only tests change it.
    well_known_port: int = 443

    @classmethod
    def from_homeserver_config(cls, config: Any) -> FederationClientConfig:
        """Build from ``HomeserverConfig``; keys it does not (yet) carry keep the defaults."""

        def opt(name: str, default: Any) -> Any:
            value = getattr(config, name, None)
            return default if value is None else value

        whitelist = getattr(config, "federation_domain_whitelist", None)
        blacklist = getattr(config, "ip_range_blacklist", None)
        return cls(
            verify_certificates=bool(opt("federation_verify_certificates", True)),
            custom_ca_list=tuple(opt("federation_custom_ca_list", ())),
            certificate_verification_whitelist=tuple(
                opt("federation_certificate_verification_whitelist", ())
            ),
            domain_whitelist=None if whitelist is None else tuple(whitelist),
            # None means "not configured": hs's default blacklist applies; [] blocks nothing.
            ip_range_blacklist=None if blacklist is None else tuple(blacklist),
            ip_range_whitelist=tuple(opt("ip_range_whitelist", ())),
        )


class FederationRequestError(Exception):
    """A request to ``destination`` failed."""

    def __init__(self, destination: str, message: str) -> None:
        super().__init__(f"{destination}: {message}")
        self.destination = destination


class DestinationNotAllowed(FederationRequestError):
    """``federation_domain_whitelist`` excludes the destination, or its name is invalid."""


class FederationConnectionError(FederationRequestError):
    """No endpoint could be reached (DNS, blacklisted address, TCP or TLS failure)."""


class FederationTimeout(FederationRequestError):
    """The request did not finish within its timeout."""


class ResponseTooLarge(FederationRequestError):
    """The response body exceeded the size limit."""


class InvalidResponse(FederationRequestError):
    """A 2xx response whose body is not acceptable JSON."""


class HttpResponseError(FederationRequestError):
    """A non-2xx answer; ``errcode`` is the Matrix error code when the body carried one."""

    def __init__(self, destination: str, status: int, body: bytes) -> None:
        self.status = status
        self.body = body
        self.errcode: str | None = None
        self.error: str | None = None
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            errcode, error = parsed.get("errcode"), parsed.get("error")
            self.errcode = errcode if isinstance(errcode, str) else None
            self.error = error if isinstance(error, str) else None
        super().__init__(destination, f"HTTP {status} {self.errcode or ''} {self.error or ''}")


def _glob_match(name: str, patterns: Iterable[str]) -> bool:
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, p.lower()) for p in patterns)


def _verifying_context(ca_files: Sequence[str]) -> ssl.SSLContext:
    """Certificate and hostname checking against the system CAs, or only ``ca_files``."""
    if not ca_files:
        return ssl.create_default_context()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname and CERT_REQUIRED
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    for ca_file in ca_files:
        ctx.load_verify_locations(cafile=ca_file)
    return ctx


def encode_path(*segments: str) -> str:
    """``/seg1/seg2`` with each segment percent-encoded (IDs may contain ``/``, ``#``...)."""
    return "".join("/" + quote(s, safe="") for s in segments)


class FederationClient:
    """Signed JSON requests to other homeservers over one pooled aiohttp session."""

    def __init__(
        self,
        server_name: str,
        signing_key: SigningKey,
        config: FederationClientConfig | None = None,
        *,
        srv_resolver: SrvResolver | None = None,
        address_resolver: AbstractResolver | None = None,
        discovery: ServerDiscovery | None = None,
    ) -> None:
        self.server_name = server_name
        self.signing_key = signing_key
        self.config = config or FederationClientConfig()
        self.ip_filter = IPFilter(self.config.ip_range_blacklist, self.config.ip_range_whitelist)
        self._address_resolver = address_resolver
        self._session: aiohttp.ClientSession | None = None
        # Built at the first request: loading the CA store costs ~2 MB resident, which a
        # server that never federates (or not yet) need not pay.
        self._verifying_ssl: ssl.SSLContext | None = None
        self._insecure_ssl: ssl.SSLContext | None = None
        self.discovery = discovery or ServerDiscovery(self.fetch_well_known, srv_resolver)

    # -- lifecycle ------------------------------------------------------------------------

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=FilteringResolver(self.ip_filter, self._address_resolver),
                limit=200,
                limit_per_host=20,
                ttl_dns_cache=300,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.config.user_agent},
                auto_decompress=True,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- policy ---------------------------------------------------------------------------

    def is_destination_allowed(self, server_name: str) -> bool:
        """``federation_domain_whitelist`` check (our own name is always allowed)."""
        whitelist = self.config.domain_whitelist
        return whitelist is None or server_name == self.server_name or server_name in whitelist

    def _ssl_for(self, names: Sequence[str]) -> ssl.SSLContext:
        if not self.config.verify_certificates or any(
            _glob_match(n, self.config.certificate_verification_whitelist) for n in names
        ):
            if self._insecure_ssl is None:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no CA store: nothing checked
                ctx.minimum_version = ssl.TLSVersion.TLSv1_2
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                self._insecure_ssl = ctx
            return self._insecure_ssl
        if self._verifying_ssl is None:
            self._verifying_ssl = _verifying_context(self.config.custom_ca_list)
        return self._verifying_ssl

    # -- requests -------------------------------------------------------------------------

    async def get_json(
        self, destination: str, path: str, query: Mapping[str, Any] | None = None, **kw: Any
    ) -> Any:
        return await self.request("GET", destination, path, query=query, **kw)

    async def post_json(
        self, destination: str, path: str, content: Any, query: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> Any:
        return await self.request("POST", destination, path, query=query, content=content, **kw)

    async def put_json(
        self, destination: str, path: str, content: Any, query: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> Any:
        return await self.request("PUT", destination, path, query=query, content=content, **kw)

    async def request(
        self,
        method: str,
        destination: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        content: Any = None,
        timeout: float | None = None,
        max_response_size: int | None = None,
    ) -> Any:
        """Send a signed request; return the decoded JSON body of a 2xx response.

        ``path`` must already be percent-encoded (see ``encode_path``); ``query`` values may
        be lists (repeated parameters). The signed ``uri`` is exactly the target sent.
        """
        if not self.is_destination_allowed(destination):
            raise DestinationNotAllowed(destination, "not in federation_domain_whitelist")
        if not path.startswith("/"):
            raise ValueError("path must start with '/'")
        query_string = urlencode(query, doseq=True, quote_via=quote) if query else ""
        uri = path + ("?" + query_string if query_string else "")
        auth = sign_request(
            self.signing_key, self.server_name, destination, method, uri, content
        )
        body = None if content is None else orjson.dumps(content)
        try:
            targets = await self.discovery.resolve(destination)
        except ValueError as exc:
            raise DestinationNotAllowed(destination, str(exc)) from None
        limit = max_response_size or self.config.max_response_size
        client_timeout = aiohttp.ClientTimeout(
            total=timeout or self.config.request_timeout, sock_connect=self.config.connect_timeout
        )
        last_error: Exception | None = None
        for target in targets:
            headers = {"Host": target.host_header, "Authorization": auth}
            if body is not None:
                headers["Content-Type"] = "application/json"
            try:
                status, payload = await self._send(
                    method, target, path, query_string, headers, body, client_timeout, limit
                )
            except (aiohttp.ClientConnectorError, aiohttp.ClientSSLError, BlockedAddressError,
                    aiohttp.ServerDisconnectedError) as exc:
                logger.info("%s %s via %s:%d failed: %s", method, destination, target.host,
                            target.port, exc)
                last_error = exc
                continue
            except TimeoutError:
                raise FederationTimeout(destination, f"{method} {path} timed out") from None
            except aiohttp.ClientError as exc:
                raise FederationConnectionError(destination, str(exc)) from exc
            if payload is None:
                raise ResponseTooLarge(destination, f"response to {method} {path} over {limit}")
            if not 200 <= status < 300:
                raise HttpResponseError(destination, status, payload)
            try:
                return decode_strict(payload, allow_floats=True, allow_big_ints=True)
            except JSONDecodeError as exc:
                raise InvalidResponse(destination, f"bad JSON: {exc}") from None
        raise FederationConnectionError(destination, f"no endpoint reachable: {last_error}")

    async def _send(
        self,
        method: str,
        target: ResolvedServer,
        path: str,
        query_string: str,
        headers: dict[str, str],
        body: bytes | None,
        timeout: aiohttp.ClientTimeout,
        limit: int,
    ) -> tuple[int, bytes | None]:
        self.ip_filter.check_host(target.host)  # aiohttp never resolves IP literals
        host = f"[{target.host}]" if ":" in target.host else target.host
        url = URL.build(scheme="https", host=host, port=target.port, path=path,
                        query_string=query_string, encoded=True)
        names = [hostname_of(target.server_name), target.tls_name or target.host]
        async with self._get_session().request(
            method, url, data=body, headers=headers, timeout=timeout, allow_redirects=False,
            ssl=self._ssl_for(names), server_hostname=target.tls_name,
        ) as response:
            return response.status, await _read_limited(response, limit)

    async def fetch_well_known(self, hostname: str) -> WellKnownResponse:
        """GET ``https://hostname/.well-known/matrix/server``, following up to
        ``MAX_REDIRECTS`` https redirects without loops (spec "Resolving server names" step 3)."""
        url = URL.build(scheme="https", host=hostname, port=self.config.well_known_port,
                        path="/.well-known/matrix/server")
        seen: set[str] = set()
        timeout = aiohttp.ClientTimeout(total=self.config.well_known_timeout,
                                        sock_connect=self.config.connect_timeout)
        for _hop in range(MAX_REDIRECTS + 1):
            if str(url) in seen:
                raise ValueError(f"redirect loop at {url}")
            seen.add(str(url))
            if url.scheme != "https" or not url.host:
                raise ValueError(f"refusing non-https well-known URL {url}")
            self.ip_filter.check_host(url.host)
            async with self._get_session().get(
                url, timeout=timeout, allow_redirects=False, ssl=self._ssl_for([url.host]),
            ) as response:
                location = response.headers.get("Location")
                if response.status in (301, 302, 303, 307, 308) and location:
                    url = url.join(URL(location))
                    continue
                body = await _read_limited(response, WELL_KNOWN_MAX_BODY)
                if body is None:
                    raise ValueError("well-known response too large")
                return WellKnownResponse(response.status, dict(response.headers), body)
        raise ValueError(f"more than {MAX_REDIRECTS} redirects")


async def _read_limited(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The body, or None once it exceeds ``limit`` bytes (checked before and while reading)."""
    if response.content_length is not None and response.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
