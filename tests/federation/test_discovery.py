"""Server name resolution, each step of the spec's "Resolving server names", with a fake
well-known fetcher and an injected SRV resolver (no DNS here)."""

from __future__ import annotations

import asyncio
import email.utils
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from tests.federation.helpers import static_srv

from hs.federation.discovery import (
    WELL_KNOWN_DEFAULT_TTL,
    WELL_KNOWN_ERROR_TTL_MAX,
    WELL_KNOWN_ERROR_TTL_START,
    WELL_KNOWN_MAX_TTL,
    WELL_KNOWN_MIN_TTL,
    InvalidServerName,
    ResolvedServer,
    ServerDiscovery,
    SrvRecord,
    WellKnownResponse,
    cache_ttl,
    order_srv,
    parse_server_name,
)


class FakeWellKnown:
    """Answers per hostname; counts fetches; an Exception value is raised."""

    def __init__(self, answers: dict[str, object]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def __call__(self, hostname: str) -> WellKnownResponse:
        self.calls.append(hostname)
        await asyncio.sleep(0)
        answer = self.answers.get(hostname, WellKnownResponse(404, {}, b"{}"))
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, bytes):
            return WellKnownResponse(200, {}, answer)
        assert isinstance(answer, WellKnownResponse)
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def _disco(answers: dict[str, object], srv: dict[str, list[SrvRecord]] | None = None,
           clock: Clock | None = None) -> tuple[ServerDiscovery, FakeWellKnown]:
    fetch = FakeWellKnown(answers)
    return ServerDiscovery(fetch, static_srv(srv or {}), clock=clock or Clock(),
                           rng=random.Random(1)), fetch


@pytest.mark.parametrize("name, host, port", [
    ("example.com", "example.com", None),
    ("example.com:8080", "example.com", 8080),
    ("1.2.3.4", "1.2.3.4", None),
    ("1.2.3.4:1234", "1.2.3.4", 1234),
    ("[1234:5678::abcd]", "1234:5678::abcd", None),
    ("[1234:5678::abcd]:5678", "1234:5678::abcd", 5678),
])
def test_parse_server_name(name: str, host: str, port: int | None) -> None:
    assert parse_server_name(name) == (host, port)


@pytest.mark.parametrize("name", ["", "a b", "example.com:", "example.com:0",
                                  "example.com:70000", "[not:v6:zz]", "[::1", "ex_ample.com"])
def test_parse_server_name_invalid(name: str) -> None:
    with pytest.raises(InvalidServerName):
        parse_server_name(name)


async def test_step1_ip_literals_skip_well_known() -> None:
    disco, fetch = _disco({})
    assert await disco.resolve("1.2.3.4") == [
        ResolvedServer("1.2.3.4", "1.2.3.4", 8448, "1.2.3.4", None)]
    assert await disco.resolve("1.2.3.4:99") == [
        ResolvedServer("1.2.3.4:99", "1.2.3.4", 99, "1.2.3.4:99", None)]
    assert await disco.resolve("[::1]") == [ResolvedServer("[::1]", "::1", 8448, "[::1]", None)]
    assert await disco.resolve("[::1]:7") == [
        ResolvedServer("[::1]:7", "::1", 7, "[::1]:7", None)]
    assert fetch.calls == []


async def test_step2_explicit_port_skips_well_known() -> None:
    disco, fetch = _disco({})
    assert await disco.resolve("example.com:8000") == [
        ResolvedServer("example.com:8000", "example.com", 8000, "example.com:8000",
                       "example.com")]
    assert fetch.calls == []


async def test_step3_delegation_forms() -> None:
    srv = {"_matrix-fed._tcp.srv.deleg": [SrvRecord(10, 0, "target.deleg", 9000)],
           "_matrix._tcp.old.deleg": [SrvRecord(10, 0, "oldtarget.deleg", 9001)]}
    disco, _ = _disco({
        "ip.test": b'{"m.server": "5.6.7.8"}',
        "ipport.test": b'{"m.server": "[2001:db8::1]:444"}',
        "hostport.test": b'{"m.server": "deleg.example:4433"}',
        "srv.test": b'{"m.server": "srv.deleg"}',
        "old.test": b'{"m.server": "old.deleg"}',
        "plain.test": b'{"m.server": "plain.deleg"}',
    }, srv)
    # 3.1: IP literal, Host is the delegated IP (with port when given), no SNI.
    assert await disco.resolve("ip.test") == [
        ResolvedServer("ip.test", "5.6.7.8", 8448, "5.6.7.8", None)]
    assert await disco.resolve("ipport.test") == [
        ResolvedServer("ipport.test", "2001:db8::1", 444, "[2001:db8::1]:444", None)]
    # 3.2: hostname and port.
    assert await disco.resolve("hostport.test") == [
        ResolvedServer("hostport.test", "deleg.example", 4433, "deleg.example:4433",
                       "deleg.example")]
    # 3.3: _matrix-fed SRV of the delegated host; certificate/Host stay the delegated host.
    assert await disco.resolve("srv.test") == [
        ResolvedServer("srv.test", "target.deleg", 9000, "srv.deleg", "srv.deleg")]
    # 3.4: deprecated _matrix SRV.
    assert await disco.resolve("old.test") == [
        ResolvedServer("old.test", "oldtarget.deleg", 9001, "old.deleg", "old.deleg")]
    # 3.5: no SRV, port 8448.
    assert await disco.resolve("plain.test") == [
        ResolvedServer("plain.test", "plain.deleg", 8448, "plain.deleg", "plain.deleg")]


async def test_steps_4_to_6_without_well_known() -> None:
    srv = {"_matrix-fed._tcp.fed.test": [SrvRecord(5, 0, "fedtarget.test", 1111)],
           "_matrix._tcp.fed.test": [SrvRecord(5, 0, "unused.test", 2222)],
           "_matrix._tcp.legacy.test": [SrvRecord(5, 0, "legacytarget.test", 3333)]}
    resolver = static_srv(srv)
    disco = ServerDiscovery(FakeWellKnown({}), resolver, clock=Clock())
    assert await disco.resolve("fed.test") == [
        ResolvedServer("fed.test", "fedtarget.test", 1111, "fed.test", "fed.test")]
    assert await disco.resolve("legacy.test") == [
        ResolvedServer("legacy.test", "legacytarget.test", 3333, "legacy.test", "legacy.test")]
    assert await disco.resolve("none.test") == [
        ResolvedServer("none.test", "none.test", 8448, "none.test", "none.test")]
    assert resolver.queries == [  # type: ignore[attr-defined]
        "_matrix-fed._tcp.fed.test", "_matrix-fed._tcp.legacy.test", "_matrix._tcp.legacy.test",
        "_matrix-fed._tcp.none.test", "_matrix._tcp.none.test"]


async def test_srv_failure_falls_back_to_8448() -> None:
    async def broken(name: str) -> list[SrvRecord]:
        raise OSError("SERVFAIL")

    disco = ServerDiscovery(FakeWellKnown({}), broken, clock=Clock())
    assert await disco.resolve("x.test") == [ResolvedServer("x.test", "x.test", 8448, "x.test",
                                                            "x.test")]


@pytest.mark.parametrize("answer", [
    WellKnownResponse(404, {}, b'{"m.server": "a.test"}'),
    WellKnownResponse(500, {}, b""),
    b"not json", b"[]", b'"m.server"', b"{}", b'{"m.server": 1}', b'{"m.server": "bad host!"}',
    b'{"m.server": "a.test:99999"}', OSError("connection refused"), ValueError("too large"),
])
async def test_invalid_well_known_means_no_delegation(answer: object) -> None:
    disco, _ = _disco({"h.test": answer})
    assert await disco.well_known("h.test") is None
    assert (await disco.resolve("h.test"))[0].port == 8448


async def test_well_known_body_is_json_whatever_the_content_type() -> None:
    disco, _ = _disco({"h.test": WellKnownResponse(
        200, {"Content-Type": "text/plain"}, b'{"m.server": "d.test:1"}')})
    assert await disco.well_known("h.test") == "d.test:1"


def test_cache_ttl_rules() -> None:
    now = 1_700_000_000.0
    assert cache_ttl({}, now) == WELL_KNOWN_DEFAULT_TTL
    assert cache_ttl({"Cache-Control": "public, max-age=7200"}, now) == 7200
    assert cache_ttl({"Cache-Control": "max-age=9999999"}, now) == WELL_KNOWN_MAX_TTL
    assert cache_ttl({"Cache-Control": "max-age=1"}, now) == WELL_KNOWN_MIN_TTL
    assert cache_ttl({"Cache-Control": "no-store"}, now) == WELL_KNOWN_MIN_TTL
    expires = email.utils.formatdate(now + 3 * 3600, usegmt=True)
    assert cache_ttl({"Expires": expires}, now) == pytest.approx(3 * 3600)
    # max-age wins over Expires
    assert cache_ttl({"Expires": expires, "Cache-Control": "max-age=4000"}, now) == 4000
    assert cache_ttl({"Expires": "garbage"}, now) == WELL_KNOWN_MIN_TTL


async def test_well_known_cached_until_expiry() -> None:
    clock = Clock()
    disco, fetch = _disco({"h.test": WellKnownResponse(
        200, {"Cache-Control": "max-age=3600"}, b'{"m.server": "d.test:1"}')}, clock=clock)
    for _ in range(3):
        assert await disco.well_known("h.test") == "d.test:1"
    assert fetch.calls == ["h.test"]
    clock.now += 3599
    await disco.well_known("h.test")
    assert len(fetch.calls) == 1
    clock.now += 2
    await disco.well_known("h.test")
    assert len(fetch.calls) == 2


async def test_errors_cached_with_exponential_backoff() -> None:
    clock = Clock()
    disco, fetch = _disco({"h.test": OSError("down")}, clock=clock)
    ttl = WELL_KNOWN_ERROR_TTL_START
    for attempt in range(1, 10):
        assert await disco.well_known("h.test") is None
        assert len(fetch.calls) == attempt
        cached = disco.cached_well_known("h.test")
        assert cached is not None
        assert cached[1] - clock.now == pytest.approx(min(ttl, WELL_KNOWN_ERROR_TTL_MAX))
        assert await disco.well_known("h.test") is None  # served from the error cache
        assert len(fetch.calls) == attempt
        clock.now = cached[1] + 1
        ttl *= 2
    # Success resets the failure count.
    fetch.answers["h.test"] = b'{"m.server": "d.test:2"}'
    assert await disco.well_known("h.test") == "d.test:2"
    assert disco.cached_well_known("h.test")[1] - clock.now == WELL_KNOWN_DEFAULT_TTL


async def test_concurrent_well_known_lookups_share_one_fetch() -> None:
    gate = asyncio.Event()
    calls = 0

    async def slow(hostname: str) -> WellKnownResponse:
        nonlocal calls
        calls += 1
        await gate.wait()
        return WellKnownResponse(200, {}, b'{"m.server": "d.test:3"}')

    disco = ServerDiscovery(slow, static_srv({}), clock=Clock())
    tasks = [asyncio.create_task(disco.resolve("h.test")) for _ in range(20)]
    await asyncio.sleep(0.01)
    gate.set()
    results = await asyncio.gather(*tasks)
    assert calls == 1
    assert {r[0].host_header for r in results} == {"d.test:3"}


async def test_cache_is_bounded() -> None:
    disco = ServerDiscovery(FakeWellKnown({}), static_srv({}), clock=Clock(),
                            max_cache_entries=10)
    for i in range(50):
        await disco.well_known(f"h{i}.test")
    assert len(disco._cache) == 10
    assert disco.cached_well_known("h49.test") is not None
    assert disco.cached_well_known("h0.test") is None


def test_srv_ordering_priority_then_weight() -> None:
    records = [SrvRecord(20, 0, "c", 1), SrvRecord(10, 1, "b", 1), SrvRecord(10, 1000, "a", 1),
               SrvRecord(5, 0, ".", 1)]
    firsts = [order_srv(records, random.Random(seed))[0].target for seed in range(200)]
    assert firsts.count("a") > 150
    for seed in range(20):
        ordered = order_srv(records, random.Random(seed))
        assert [r.target for r in ordered][2] == "c"
        assert "." not in [r.target for r in ordered]
        assert len(ordered) == 3


async def test_multiple_srv_targets_all_returned_in_order() -> None:
    srv = {"_matrix-fed._tcp.m.test": [SrvRecord(20, 0, "backup.test", 2),
                                       SrvRecord(10, 0, "main.test", 1)]}
    disco, _ = _disco({}, srv)
    assert [(r.host, r.port) for r in await disco.resolve("m.test")] == [
        ("main.test", 1), ("backup.test", 2)]


def test_dnspython_is_imported_at_the_first_lookup_not_at_startup() -> None:
    """dnspython costs ~3 MB of resident memory; a server that never federates skips it."""
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [src, os.environ.get("PYTHONPATH", "")]))}
    code = ("import sys; from hs.federation.discovery import default_srv_resolver;"
            " resolve = default_srv_resolver(); assert callable(resolve);"
            " print(any(m == 'dns' or m.startswith('dns.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    assert out.stdout.strip() == "False"
