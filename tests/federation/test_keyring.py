"""Keyring: verification of key responses, notaries, caching, coalescing, persistence
(on SQLite and PostgreSQL), expiry and old keys."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
import signedjson.key
import signedjson.sign
from tests.federation.keyfakes import Clock, FakeKeyClient, key_server

from hs.core.keys import generate_signing_key, get_verify_key, key_id
from hs.core.signing import sign_json
from hs.federation.key_server import KeyServer
from hs.federation.keyring import (
    InvalidKeyResponse,
    KeyLookupError,
    Keyring,
    TrustedKeyServer,
    parse_key_response,
    trusted_key_servers_from_config,
)
from hs.federation.local_keys import LocalKeys, OldVerifyKey
from hs.storage.database import open_database
from hs.storage.server_keys import ServerKeysStore

DAY = 24 * 3600 * 1000


def _vk(ks: KeyServer, index: int = 0) -> Any:
    return get_verify_key(ks.local_keys.signing_keys[index])


async def test_direct_fetch_is_cached_and_persisted(database_config) -> None:
    db = await open_database(database_config)
    try:
        clock = Clock()
        origin = key_server("origin.test", "a", "b", clock=clock)
        client = FakeKeyClient({"origin.test": origin})
        store = ServerKeysStore(db)
        keyring = Keyring(store, client, clock=clock)
        vk, until = await keyring.get_verify_key("origin.test", "ed25519:a", int(clock() * 1000))
        assert bytes(vk) == bytes(_vk(origin)) and key_id(vk) == "ed25519:a"
        assert until == origin.server_keys()["valid_until_ts"]
        assert (await keyring.get_verify_key("origin.test", "ed25519:b"))[0] == _vk(origin, 1)
        assert client.calls == [("GET", "origin.test")]
        # A restart: a new keyring without any client finds the keys in the database.
        restarted = Keyring(ServerKeysStore(db), None, clock=clock)
        vk2, until2 = await restarted.get_verify_key("origin.test", "ed25519:b")
        assert (bytes(vk2), until2) == (bytes(_vk(origin, 1)), until)
        # The stored response is the origin's, still verifiable with signedjson.
        [row] = await store.get_key_responses("origin.test")
        stored = orjson.loads(row.key_json)
        for index in (0, 1):
            signedjson.sign.verify_signed_json(stored, "origin.test", _vk(origin, index))
        assert (row.from_server, row.valid_until_ts) == ("origin.test", until)
    finally:
        await db.close()


async def test_concurrent_lookups_share_one_fetch(database_config) -> None:
    db = await open_database(database_config)
    try:
        origin = key_server("origin.test", "a")
        client = FakeKeyClient({"origin.test": origin}, delay=0.05)
        keyring = Keyring(ServerKeysStore(db), client)
        results = await asyncio.gather(*(keyring.get_verify_key("origin.test", "ed25519:a")
                                         for _ in range(25)))
        assert {bytes(r[0]) for r in results} == {bytes(_vk(origin))}
        assert client.calls == [("GET", "origin.test")]
        assert keyring.fetch_count == 1
        assert len(await ServerKeysStore(db).get_key_responses("origin.test")) == 1
    finally:
        await db.close()


async def test_batch_lookup_fetches_each_server_once() -> None:
    servers = {f"s{i}.test": key_server(f"s{i}.test", "a") for i in range(4)}
    client = FakeKeyClient(servers, delay=0.01)
    keyring = Keyring(None, client)
    requests = [(s, "ed25519:a", 0) for s in servers] * 3 + [("s0.test", "ed25519:zz", 0)]
    found = await keyring.get_verify_keys(requests)
    assert set(found) == {(s, "ed25519:a") for s in servers}
    assert sorted(client.calls) == sorted(("GET", s) for s in servers)
    lookup = await keyring.key_lookup_for([("s1.test", "ed25519:a", 0)])
    assert lookup("s1.test", "ed25519:a")[0] == _vk(servers["s1.test"])
    assert lookup("s1.test", "ed25519:nope") is None


async def test_minimum_validity_triggers_refetch_and_expired_keys_fail() -> None:
    clock, origin_clock = Clock(), Clock()
    origin = key_server("origin.test", "a", clock=origin_clock, key_validity_ms=DAY)
    client = FakeKeyClient({"origin.test": origin})
    keyring = Keyring(None, client, clock=clock, min_refetch_interval_ms=0)
    now = int(clock() * 1000)
    _, until = await keyring.get_verify_key("origin.test", "ed25519:a", now)
    assert until == now + DAY
    # Needed beyond what the cached response promises: refetch; still too short -> error.
    with pytest.raises(KeyLookupError):
        await keyring.get_verify_key("origin.test", "ed25519:a", now + 2 * DAY)
    assert len(client.calls) == 2
    # Time passes, the origin republishes with a later valid_until_ts: accepted.
    clock.now += 2 * 86400
    origin_clock.now += 2 * 86400
    _, until = await keyring.get_verify_key("origin.test", "ed25519:a", now + 2 * DAY)
    assert until == now + 3 * DAY
    assert len(client.calls) == 3


async def test_old_verify_keys_valid_until_expired_ts(database_config) -> None:
    db = await open_database(database_config)
    try:
        old_key = generate_signing_key("old")
        expired = 1_600_000_000_000
        origin = key_server("origin.test", "new",
                            old={"ed25519:old": OldVerifyKey(get_verify_key(old_key), expired)})
        keyring = Keyring(ServerKeysStore(db), FakeKeyClient({"origin.test": origin}))
        vk, until = await keyring.get_verify_key("origin.test", "ed25519:old", expired - 1)
        assert (bytes(vk), until) == (bytes(get_verify_key(old_key)), expired)
        # Not usable for anything needing it later (e.g. a request signed now).
        with pytest.raises(KeyLookupError):
            await keyring.get_verify_key("origin.test", "ed25519:old", expired + 1)
        stored = await ServerKeysStore(db).get_keys(["origin.test"])
        assert stored["origin.test"]["ed25519:old"].expired_ts == expired
        assert stored["origin.test"]["ed25519:old"].valid_until == expired
        assert stored["origin.test"]["ed25519:new"].expired_ts is None
    finally:
        await db.close()


async def test_store_never_shortens_validity_and_keeps_expiry(database_config) -> None:
    from hs.storage.server_keys import StoredKey

    db = await open_database(database_config)
    try:
        store = ServerKeysStore(db)
        raw = bytes(32)
        put = store.store_server_keys
        await put("o.test", "o.test", 1, {"ed25519:a": StoredKey(raw, 500, None)}, b"{}", 500)
        await put("o.test", "n.test", 2, {"ed25519:a": StoredKey(raw, 300, None)}, None, 300)
        assert (await store.get_keys(["o.test"]))["o.test"]["ed25519:a"].valid_until_ts == 500
        await put("o.test", "o.test", 3, {"ed25519:a": StoredKey(raw, 400, 400)}, b"{}", 900)
        key = (await store.get_keys(["o.test", "x.test"]))["o.test"]["ed25519:a"]
        assert (key.valid_until_ts, key.expired_ts, key.valid_until) == (500, 400, 400)
        assert [r.valid_until_ts for r in await store.get_key_responses("o.test")] == [900]
        many = [f"s{i}.test" for i in range(450)]  # more than one IN (...) chunk
        assert await store.get_keys(many) == {}
    finally:
        await db.close()


def _resign(ks: KeyServer, body: dict[str, Any]) -> dict[str, Any]:
    body.pop("signatures", None)
    return sign_json(body, ks.local_keys.server_name, ks.local_keys.signing_key)


@pytest.mark.parametrize("tamper", [
    lambda ks, b: {**b, "server_name": "evil.test"},
    lambda ks, b: {**b, "valid_until_ts": b["valid_until_ts"] + 1},  # breaks the signature
    lambda ks, b: {**b, "signatures": {}},
    lambda ks, b: {**b, "signatures": {"origin.test": {"ed25519:other": "AAAA"}}},
    lambda ks, b: _resign(ks, {**b, "valid_until_ts": "soon"}),
    lambda ks, b: _resign(ks, {**b, "verify_keys": {"ed25519:a": {"key": "!!"}}}),
    lambda ks, b: _resign(ks, {**b, "verify_keys": []}),
    lambda ks, b: _resign(ks, {**b, "old_verify_keys": {"ed25519:o": {"key": "A" * 43}}}),
    # Signed by a key that is not among its verify_keys.
    lambda ks, b: sign_json({**b, "signatures": {}}, "origin.test", generate_signing_key("a")),
])
async def test_invalid_key_responses_rejected(tamper) -> None:
    origin = key_server("origin.test", "a")
    client = FakeKeyClient({"origin.test": origin})
    client.tamper["origin.test"] = lambda body: tamper(origin, body)
    keyring = Keyring(None, client)
    with pytest.raises(KeyLookupError):
        await keyring.get_verify_key("origin.test", "ed25519:a")
    assert client.calls == [("GET", "origin.test")]


def test_parse_key_response_skips_unknown_algorithms() -> None:
    origin = key_server("origin.test", "a")
    body = dict(origin.server_keys())
    body["verify_keys"] = {**body["verify_keys"], "curve25519:x": {"key": "whatever"}}
    body = _resign(origin, body)
    assert set(parse_key_response(body, "origin.test")) == {"ed25519:a"}
    with pytest.raises(InvalidKeyResponse):
        parse_key_response([], "origin.test")


def _notary_setup(notary_keys_ok: bool = True):
    origin = key_server("origin.test", "a")
    notary = key_server("notary.test", "n")
    # The notary fetches the origin directly.
    notary.keyring = Keyring(None, FakeKeyClient({"origin.test": origin}))
    ours = FakeKeyClient({"origin.test": origin, "notary.test": notary})
    notary_vk = _vk(notary) if notary_keys_ok else get_verify_key(generate_signing_key("n"))
    trusted = TrustedKeyServer("notary.test", {"ed25519:n": notary_vk})
    return origin, notary, ours, trusted


async def test_keys_via_trusted_notary() -> None:
    origin, _notary, client, trusted = _notary_setup()
    client.down.add("origin.test")
    keyring = Keyring(None, client, trusted_key_servers=[trusted])
    found = await keyring.get_verify_keys([("origin.test", "ed25519:a", 0),
                                           ("unknown.test", "ed25519:a", 0)])
    assert found[("origin.test", "ed25519:a")][0] == _vk(origin)
    assert ("unknown.test", "ed25519:a") not in found
    # One batched POST to the notary; the direct fallbacks only for what it lacked.
    assert client.calls[0] == ("POST", "notary.test")
    assert ("GET", "origin.test") not in client.calls
    assert ("GET", "unknown.test") in client.calls


async def test_notary_with_wrong_signature_is_ignored() -> None:
    origin, _notary, client, trusted = _notary_setup(notary_keys_ok=False)
    keyring = Keyring(None, client, trusted_key_servers=[trusted])
    assert (await keyring.get_verify_key("origin.test", "ed25519:a"))[0] == _vk(origin)
    assert client.calls == [("POST", "notary.test"), ("GET", "origin.test")]
    client.calls.clear()
    client.down.add("origin.test")
    fresh = Keyring(None, client, trusted_key_servers=[trusted])
    with pytest.raises(KeyLookupError):
        await fresh.get_verify_key("origin.test", "ed25519:a")


async def test_notary_without_keys_needs_accept_keys_insecurely() -> None:
    origin, _notary, client, _ = _notary_setup()
    client.down.add("origin.test")
    unusable = Keyring(None, client, trusted_key_servers=[TrustedKeyServer("notary.test")])
    with pytest.raises(KeyLookupError):
        await unusable.get_verify_key("origin.test", "ed25519:a")
    assert ("POST", "notary.test") not in client.calls
    insecure = Keyring(None, client, trusted_key_servers=[
        TrustedKeyServer("notary.test", accept_keys_insecurely=True)])
    assert (await insecure.get_verify_key("origin.test", "ed25519:a"))[0] == _vk(origin)


def test_trusted_key_servers_from_config() -> None:
    from hs.config.model import TrustedKeyServer as ConfigEntry

    key = generate_signing_key("x")
    b64 = signedjson.key.encode_verify_key_base64(get_verify_key(key))
    [t] = trusted_key_servers_from_config([ConfigEntry("n.org", {"ed25519:x": b64})])
    assert t.server_name == "n.org" and t.verify_keys["ed25519:x"] == get_verify_key(key)


async def test_own_keys_answered_locally_and_never_fetched() -> None:
    clock = Clock()
    key = generate_signing_key("me")
    old = OldVerifyKey(get_verify_key(generate_signing_key("gone")), 123)
    local = LocalKeys("me.test", [key], {"ed25519:gone": old})
    client = FakeKeyClient({})
    keyring = Keyring(None, client, local_keys=local, clock=clock)
    vk, until = await keyring.get_verify_key("me.test", "ed25519:me", int(clock() * 1000))
    assert vk == get_verify_key(key) and until > clock() * 1000
    assert (await keyring.get_verify_key("me.test", "ed25519:gone"))[1] == 123
    with pytest.raises(KeyLookupError):
        await keyring.get_verify_key("me.test", "ed25519:unknown")
    assert client.calls == []


async def test_missing_key_not_refetched_within_interval() -> None:
    clock = Clock()
    origin = key_server("origin.test", "a")
    client = FakeKeyClient({"origin.test": origin})
    keyring = Keyring(None, client, clock=clock, min_refetch_interval_ms=60_000)
    for _ in range(3):
        with pytest.raises(KeyLookupError):
            await keyring.get_verify_key("origin.test", "ed25519:missing")
    assert len(client.calls) == 1
    clock.now += 61
    with pytest.raises(KeyLookupError):
        await keyring.get_verify_key("origin.test", "ed25519:missing")
    assert len(client.calls) == 2


async def test_memory_cache_is_bounded() -> None:
    servers = {f"s{i}.test": key_server(f"s{i}.test", "a") for i in range(5)}
    keyring = Keyring(None, FakeKeyClient(servers), cache_size=2)
    for s in servers:
        await keyring.get_verify_key(s, "ed25519:a")
    assert len(keyring._cache) == 2


def test_matrix_org_is_usable_without_verify_keys_like_synapse_default() -> None:
    keyring = Keyring(None, None, trusted_key_servers=[
        TrustedKeyServer("matrix.org"), TrustedKeyServer("other.org")])
    assert [t.server_name for t in keyring.trusted_key_servers] == ["matrix.org"]
