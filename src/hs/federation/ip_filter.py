"""Refusing outbound federation connections to private and special-purpose addresses.

Synapse's ``ip_range_blacklist`` / ``ip_range_whitelist`` semantics: an address inside a
blacklisted range is refused unless it is also inside a whitelisted range. The check runs on
the *resolved* address (``FilteringResolver`` wraps aiohttp's resolver), so a public name
pointing at 127.0.0.1 is refused just like the literal; IP literals, which aiohttp never
resolves, are checked by the client before connecting (``IPFilter.check_host``).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult

logger = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Used when ``ip_range_blacklist`` is not configured: loopback, RFC 1918, CGNAT, link-local,
#: IETF protocol assignments, documentation and benchmarking nets, 6to4 relay, multicast,
#: reserved, and their IPv6 counterparts (ULA, link/site-local, documentation, multicast).
DEFAULT_IP_RANGE_BLACKLIST: tuple[str, ...] = (
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "192.0.0.0/24",
    "169.254.0.0/16",
    "192.88.99.0/24",
    "198.18.0.0/15",
    "192.0.2.0/24",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "::1/128",
    "fe80::/10",
    "fc00::/7",
    "2001:db8::/32",
    "ff00::/8",
    "fec0::/10",
)

#: Always refused whatever the configuration says ("this host" addresses).
_ALWAYS_BLOCKED: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("0.0.0.0/32"),
    ipaddress.ip_network("::/128"),
)


class BlockedAddressError(OSError):
    """Every address of the destination is in a blacklisted range."""


def _networks(ranges: Iterable[Any]) -> tuple[IPNetwork, ...]:
    return tuple(
        r if isinstance(r, ipaddress.IPv4Network | ipaddress.IPv6Network)
        else ipaddress.ip_network(str(r), strict=False)
        for r in ranges
    )


class IPFilter:
    """Blacklist minus whitelist; ``blacklist=None`` means ``DEFAULT_IP_RANGE_BLACKLIST``."""

    def __init__(
        self, blacklist: Iterable[Any] | None = None, whitelist: Iterable[Any] = ()
    ) -> None:
        self.blacklist = _networks(DEFAULT_IP_RANGE_BLACKLIST if blacklist is None else blacklist)
        self.whitelist = _networks(whitelist)

    def is_allowed(self, address: str | IPAddress) -> bool:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        # An IPv4-mapped IPv6 address (::ffff:127.0.0.1) reaches the IPv4 host: judge that.
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in net for net in _ALWAYS_BLOCKED):
            return False
        if any(ip in net for net in self.whitelist):
            return True
        return not any(ip in net for net in self.blacklist)

    def check_host(self, host: str) -> None:
        """Raise ``BlockedAddressError`` if ``host`` is a refused IP literal (names pass)."""
        try:
            ip = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return
        if not self.is_allowed(ip):
            raise BlockedAddressError(f"refusing to connect to blacklisted address {ip}")


class FilteringResolver(AbstractResolver):
    """An aiohttp resolver that drops blacklisted addresses from another resolver's answer."""

    def __init__(self, ip_filter: IPFilter, inner: AbstractResolver | None = None) -> None:
        if inner is None:
            from aiohttp.resolver import DefaultResolver

            inner = DefaultResolver()
        self._filter = ip_filter
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if self._filter.is_allowed(r["host"])]
        if not allowed:
            blocked = ", ".join(sorted({r["host"] for r in results}))
            logger.info("blocked outbound connection to %s (%s)", host, blocked)
            raise BlockedAddressError(f"{host} resolves only to blacklisted addresses ({blocked})")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


class StaticResolver(AbstractResolver):
    """Resolve names from a fixed table (tests; hosts without DNS). Unknown names fail."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self._table = table

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = self._table.get(host.lower())
        if not addresses:
            raise OSError(f"cannot resolve {host!r}")
        return [
            ResolveResult(
                hostname=host,
                host=a,
                port=port,
                family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for a in addresses
        ]

    async def close(self) -> None:
        return None
