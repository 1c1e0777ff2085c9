"""IP range blacklist/whitelist semantics and the filtering aiohttp resolver."""

from __future__ import annotations

import pytest

from hs.federation.ip_filter import BlockedAddressError, FilteringResolver, IPFilter, StaticResolver


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.5.5", "192.168.1.1", "100.64.0.1",
    "169.254.1.1", "224.0.0.1", "0.0.0.0", "::1", "fe80::1", "fc00::1", "fd12::1", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::", "198.18.0.1", "192.0.2.1",
])
def test_default_blacklist_blocks_private_and_special(address: str) -> None:
    assert not IPFilter().is_allowed(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_allowed(address: str) -> None:
    assert IPFilter().is_allowed(address)


def test_whitelist_overrides_blacklist_but_not_unspecified() -> None:
    f = IPFilter(whitelist=["127.0.0.0/8"])
    assert f.is_allowed("127.0.0.1")
    assert not f.is_allowed("10.0.0.1")
    assert not IPFilter(whitelist=["0.0.0.0/0"]).is_allowed("0.0.0.0")


def test_explicit_blacklist_replaces_default() -> None:
    f = IPFilter(blacklist=["8.8.8.0/24"])
    assert not f.is_allowed("8.8.8.8")
    assert f.is_allowed("127.0.0.1")


def test_check_host_only_judges_literals() -> None:
    f = IPFilter()
    f.check_host("example.com")
    f.check_host("8.8.8.8")
    for host in ("127.0.0.1", "[::1]", "::1"):
        with pytest.raises(BlockedAddressError):
            f.check_host(host)


async def test_filtering_resolver_drops_blocked_answers() -> None:
    inner = StaticResolver({"mixed.test": ["127.0.0.1", "8.8.8.8"], "local.test": ["10.1.1.1"]})
    resolver = FilteringResolver(IPFilter(), inner)
    assert [r["host"] for r in await resolver.resolve("mixed.test", 443)] == ["8.8.8.8"]
    with pytest.raises(BlockedAddressError):
        await resolver.resolve("local.test", 443)
    with pytest.raises(OSError):
        await resolver.resolve("unknown.test", 443)
    await resolver.close()
