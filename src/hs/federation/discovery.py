"""Resolving a server name to where we connect (server-server API, "Resolving server names").

``ServerDiscovery.resolve(name)`` returns the candidate endpoints in preference order: the
host to connect to (an IP literal, or a name to look up with A/AAAA), the port, the ``Host``
header and the name the TLS certificate must match (also sent as SNI; None for IP literals,
which get no SNI and whose certificate must cover the address). Server names before
delegation are never changed here: X-Matrix signing always uses the original name.

The ``/.well-known/matrix/server`` fetch and the SRV lookup are injected, so the HTTP side
(TLS, IP blacklist, redirects) stays in ``hs.federation.client`` and tests can answer SRV
queries without DNS.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import importlib.util
import ipaddress
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import orjson

from hs.core.auth.identifiers import is_valid_server_name

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8448
#: Spec step 3: "The recommended sensible default is 24 hours" / "maximum cache time for
#: responses: 48 hours is recommended" / "Errors are recommended to be cached for up to an hour".
WELL_KNOWN_DEFAULT_TTL = 24 * 3600.0
WELL_KNOWN_MAX_TTL = 48 * 3600.0
#: Floor, so a ``Cache-Control: no-cache`` well-known does not cost a request per transaction.
WELL_KNOWN_MIN_TTL = 5 * 60.0
#: Errors: first cached this long, doubling per consecutive failure up to an hour.
WELL_KNOWN_ERROR_TTL_START = 2 * 60.0
WELL_KNOWN_ERROR_TTL_MAX = 3600.0
WELL_KNOWN_MAX_BODY = 50 * 1024


class InvalidServerName(ValueError):
    """Not a server name per the appendix grammar."""


@dataclass(frozen=True, slots=True)
class ResolvedServer:
    """One endpoint for a server name."""

    server_name: str
    #: IP literal (no brackets) or a DNS name to resolve with A/AAAA.
    host: str
    port: int
    #: The ``Host`` header to send.
    host_header: str
    #: The name the certificate must be valid for (and SNI); None when ``host`` is an IP.
    tls_name: str | None


@dataclass(frozen=True, slots=True)
class SrvRecord:
    priority: int
    weight: int
    target: str
    port: int


@dataclass(frozen=True, slots=True)
class WellKnownResponse:
    """The final (post-redirect) answer to a well-known GET."""

    status: int
    headers: Mapping[str, str]
    body: bytes


#: ``SRV query name -> records`` ([] when there are none); errors may raise.
SrvResolver = Callable[[str], Awaitable[list[SrvRecord]]]
#: ``hostname -> response``; raises on network/TLS failure or an oversized body.
WellKnownFetcher = Callable[[str], Awaitable[WellKnownResponse]]


def parse_server_name(name: str) -> tuple[str, int | None]:
    """Split ``host[:port]``; IPv6 literals come back without brackets."""
    if not isinstance(name, str) or not is_valid_server_name(name):
        raise InvalidServerName(f"{name!r} is not a valid server name")
    if name.startswith("["):
        end = name.index("]")
        host, rest = name[1:end], name[end + 1 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise InvalidServerName(f"{name!r} has an invalid IPv6 literal") from None
        port_text = rest[1:] if rest else None
    else:
        host, sep, port_text_ = name.partition(":")
        port_text = port_text_ if sep else None
    port = None
    if port_text is not None:
        port = int(port_text)
        if not 0 < port < 65536:
            raise InvalidServerName(f"{name!r} has an out-of-range port")
    return host, port


def is_ip_literal(host: str) -> bool:
    """Whether a (bracket-less) hostname is an IPv4 or IPv6 literal."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def hostname_of(server_name: str) -> str:
    """The host part of a server name (unbracketed)."""
    return parse_server_name(server_name)[0]


async def no_srv_resolver(name: str) -> list[SrvRecord]:
    """Stand-in when dnspython is missing: no SRV records, so discovery falls back to 8448."""
    return []


def default_srv_resolver() -> SrvResolver:
    """dnspython's async resolver when installed; otherwise ``no_srv_resolver`` (logged once).

    dnspython is imported at the first lookup, not here: its ~60 modules cost ~3 MB of
    resident memory, which a server that never federates has no use for."""
    if importlib.util.find_spec("dns") is None:
        logger.warning(
            "dnspython is not installed: SRV records are unavailable, servers without "
            "an explicit port or .well-known delegation are reached on port %d", DEFAULT_PORT
        )
        return no_srv_resolver

    async def resolve(name: str) -> list[SrvRecord]:
        import dns.asyncresolver  # type: ignore[import-not-found,unused-ignore]
        import dns.resolver  # type: ignore[import-not-found,unused-ignore]

        try:
            answer = await dns.asyncresolver.resolve(name, "SRV")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        return [
            SrvRecord(r.priority, r.weight, r.target.to_text(omit_final_dot=True), r.port)
            for r in answer
        ]

    return resolve


def order_srv(records: list[SrvRecord], rng: random.Random | None = None) -> list[SrvRecord]:
    """RFC 2782 order: ascending priority, weighted-random within a priority.

    Records with target ``.`` ("service decidedly not available") are dropped.
    """
    rng = rng or random.Random()
    usable = [r for r in records if r.target not in (".", "")]
    ordered: list[SrvRecord] = []
    for priority in sorted({r.priority for r in usable}):
        group = [r for r in usable if r.priority == priority]
        while group:
            total = sum(r.weight for r in group)
            if total == 0:
                pick = group[0]
            else:
                point, acc = rng.uniform(0, total), 0
                pick = group[-1]
                for r in group:
                    acc += r.weight
                    if acc >= point:
                        pick = r
                        break
            ordered.append(pick)
            group.remove(pick)
    return ordered


def cache_ttl(headers: Mapping[str, str], now: float) -> float:
    """How long to cache a valid well-known: Cache-Control max-age, else Expires, else 24h;
    clamped to [5 minutes, 48 hours] (spec step 3)."""
    ttl: float | None = None
    control = headers.get("Cache-Control") or headers.get("cache-control") or ""
    directives = [d.strip().lower() for d in control.split(",")]
    if "no-store" in directives or "no-cache" in directives:
        ttl = 0.0
    for directive in directives:
        if ttl is None and directive.startswith("max-age="):
            with contextlib.suppress(ValueError):
                ttl = float(int(directive[len("max-age=") :].strip('"')))
    if ttl is None:
        expires = headers.get("Expires") or headers.get("expires")
        if expires:
            try:
                ttl = email.utils.parsedate_to_datetime(expires).timestamp() - now
            except (TypeError, ValueError):
                ttl = 0.0  # RFC 9111: an invalid Expires means "already expired"
    if ttl is None:
        ttl = WELL_KNOWN_DEFAULT_TTL
    return min(max(ttl, WELL_KNOWN_MIN_TTL), WELL_KNOWN_MAX_TTL)


def parse_well_known(response: WellKnownResponse) -> str:
    """The validated ``m.server`` value; ``ValueError`` for anything spec step 3 calls invalid."""
    if response.status != 200:
        raise ValueError(f"status {response.status}")
    try:
        # "servers parsing the response should assume that the body is JSON regardless of type"
        body = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        raise ValueError("body is not JSON") from None
    if not isinstance(body, dict):
        raise ValueError("body is not a JSON object")
    delegated = body.get("m.server")
    if not isinstance(delegated, str):
        raise ValueError("'m.server' is missing or not a string")
    parse_server_name(delegated)  # raises InvalidServerName (a ValueError)
    return delegated


@dataclass(slots=True)
class _WellKnownEntry:
    expires: float
    delegated: str | None
    failures: int


class ServerDiscovery:
    """Resolves server names, caching ``/.well-known`` answers (bounded, per hostname)."""

    def __init__(
        self,
        fetch_well_known: WellKnownFetcher,
        srv_resolver: SrvResolver | None = None,
        *,
        clock: Callable[[], float] = time.time,
        max_cache_entries: int = 10_000,
        rng: random.Random | None = None,
    ) -> None:
        self._fetch = fetch_well_known
        self._srv = srv_resolver if srv_resolver is not None else default_srv_resolver()
        self._clock = clock
        self._max = max_cache_entries
        self._rng = rng or random.Random()
        self._cache: OrderedDict[str, _WellKnownEntry] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[str | None]] = {}

    async def resolve(self, server_name: str) -> list[ResolvedServer]:
        """Endpoints to try, best first (several only when SRV gives several targets)."""
        host, port = parse_server_name(server_name)
        # Step 1: IP literal, Host header is the server name as given.
        if is_ip_literal(host):
            return [ResolvedServer(server_name, host, port or DEFAULT_PORT, server_name, None)]
        # Step 2: hostname with an explicit port.
        if port is not None:
            return [ResolvedServer(server_name, host, port, server_name, host)]
        # Step 3: well-known delegation.
        delegated = await self.well_known(host)
        if delegated is not None:
            d_host, d_port = parse_server_name(delegated)
            if is_ip_literal(d_host):  # 3.1: Host header is the delegated IP (and port)
                return [ResolvedServer(server_name, d_host, d_port or DEFAULT_PORT, delegated,
                                       None)]
            if d_port is not None:  # 3.2
                return [ResolvedServer(server_name, d_host, d_port, delegated, d_host)]
            return await self._srv_or_default(server_name, d_host)  # 3.3 - 3.5
        return await self._srv_or_default(server_name, host)  # steps 4 - 6

    async def _srv_or_default(self, server_name: str, host: str) -> list[ResolvedServer]:
        # The certificate and Host stay <hostname>, never the SRV target (spec note on RFC 6125).
        for service in ("_matrix-fed._tcp", "_matrix._tcp"):
            try:
                records = order_srv(await self._srv(f"{service}.{host}"), self._rng)
            except Exception as exc:  # a DNS failure is "no record found"
                logger.info("SRV lookup %s.%s failed: %s", service, host, exc)
                records = []
            if records:
                return [ResolvedServer(server_name, r.target, r.port, host, host) for r in records]
        return [ResolvedServer(server_name, host, DEFAULT_PORT, host, host)]

    async def well_known(self, hostname: str) -> str | None:
        """The delegated server name from ``https://hostname/.well-known/matrix/server``,
        or None when there is no valid delegation (cached either way)."""
        now = self._clock()
        entry = self._cache.get(hostname)
        if entry is not None and entry.expires > now:
            self._cache.move_to_end(hostname)
            return entry.delegated
        pending = self._inflight.get(hostname)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._inflight[hostname] = future
        try:
            result = await self._refresh(hostname, entry)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters may not exist
            raise
        finally:
            del self._inflight[hostname]

    async def _refresh(self, hostname: str, previous: _WellKnownEntry | None) -> str | None:
        try:
            response = await self._fetch(hostname)
            delegated = parse_well_known(response)
        except Exception as exc:
            failures = (previous.failures if previous is not None else 0) + 1
            ttl = min(WELL_KNOWN_ERROR_TTL_START * 2 ** (failures - 1), WELL_KNOWN_ERROR_TTL_MAX)
            logger.info("no valid .well-known for %s (%s); retry in %ds", hostname, exc, ttl)
            self._store(hostname, _WellKnownEntry(self._clock() + ttl, None, failures))
            return None
        ttl = cache_ttl(response.headers, self._clock())
        self._store(hostname, _WellKnownEntry(self._clock() + ttl, delegated, 0))
        return delegated

    def _store(self, hostname: str, entry: _WellKnownEntry) -> None:
        self._cache[hostname] = entry
        self._cache.move_to_end(hostname)
        while len(self._cache) > self._max:
            self._cache.popitem(last=False)

    def cached_well_known(self, hostname: str) -> tuple[str | None, float] | None:
        """``(delegated, expiry)`` from the cache, for tests and diagnostics."""
        entry = self._cache.get(hostname)
        return None if entry is None else (entry.delegated, entry.expires)
