"""Our /_matrix/key/v2/server and the notary /_matrix/key/v2/query endpoints, checked with
signedjson as another implementation would."""

from __future__ import annotations

from typing import Any

import pytest
import signedjson.key
import signedjson.sign
from aiohttp.test_utils import TestClient, TestServer
from tests.federation.helpers import app_with
from tests.federation.keyfakes import Clock, FakeKeyClient, key_server

from hs.core.keys import KeyFormatError, generate_signing_key, get_verify_key
from hs.federation.key_server import KeyServer, setup_key_routes
from hs.federation.keyring import Keyring
from hs.federation.local_keys import LocalKeys, OldVerifyKey, parse_old_signing_keys
from hs.storage.database import open_database
from hs.storage.server_keys import ServerKeysStore

DAY = 24 * 3600 * 1000


def _check_keys_object(body: dict[str, Any], server: str, signers: dict[str, Any]) -> None:
    """Verify like a remote would: signedjson over every signer's keys."""
    for name, keys in signers.items():
        for key in keys:
            signedjson.sign.verify_signed_json(body, name, key)
    assert body["server_name"] == server


def test_server_keys_response_signed_by_every_current_key() -> None:
    clock = Clock()
    keys = [generate_signing_key("a"), generate_signing_key("b")]
    old = generate_signing_key("old")
    local = LocalKeys("me.test", keys, parse_old_signing_keys({"ed25519:old": {
        "key": signedjson.key.encode_verify_key_base64(get_verify_key(old)),
        "expired_ts": 1234}}), key_validity_ms=DAY)
    ks = KeyServer(local, clock=clock)
    body = ks.server_keys()
    _check_keys_object(body, "me.test", {"me.test": [get_verify_key(k) for k in keys]})
    assert body["valid_until_ts"] == int(clock() * 1000) + DAY
    assert set(body["verify_keys"]) == {"ed25519:a", "ed25519:b"}
    assert body["verify_keys"]["ed25519:a"]["key"] == signedjson.key.encode_verify_key_base64(
        get_verify_key(keys[0]))
    assert body["old_verify_keys"] == {"ed25519:old": {
        "key": signedjson.key.encode_verify_key_base64(get_verify_key(old)), "expired_ts": 1234}}
    assert set(body["signatures"]["me.test"]) == {"ed25519:a", "ed25519:b"}
    # Reused until half its lifetime, then rebuilt with a later valid_until_ts.
    clock.now += 3600
    assert ks.server_keys() is body
    clock.now += 12 * 3600
    assert ks.server_keys()["valid_until_ts"] == int(clock() * 1000) + DAY


@pytest.mark.parametrize("raw", [
    {"ed25519:x": "notadict"}, {"ed25519:x": {"key": "AAAA"}}, {"nocolon": {}},
    {"ed25519:x": {"key": "!!", "expired_ts": 1}}, {"ed25519:x": {"key": "A", "expired_ts": "1"}},
])
def test_old_signing_keys_config_errors(raw: dict) -> None:
    with pytest.raises(KeyFormatError):
        parse_old_signing_keys(raw)


async def _serve(ks: KeyServer) -> TestClient:
    app = app_with({})
    setup_key_routes(app, ks)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_http_endpoints_and_notary(database_config) -> None:
    db = await open_database(database_config)
    clock = Clock()
    origin = key_server("origin.test", "o1", "o2", clock=clock)
    fake = FakeKeyClient({"origin.test": origin})
    notary = key_server("notary.test", "n1", clock=clock)
    notary.store = ServerKeysStore(db)
    notary.keyring = Keyring(notary.store, fake, clock=clock)
    http = await _serve(notary)
    try:
        origin_vks = [get_verify_key(k) for k in origin.local_keys.signing_keys]
        notary_vk = get_verify_key(notary.local_keys.signing_key)

        resp = await http.get("/_matrix/key/v2/server")
        assert resp.status == 200 and resp.content_type == "application/json"
        _check_keys_object(await resp.json(), "notary.test", {"notary.test": [notary_vk]})

        resp = await http.get("/_matrix/key/v2/query/origin.test")
        [entry] = (await resp.json())["server_keys"]
        _check_keys_object(entry, "origin.test",
                           {"origin.test": origin_vks, "notary.test": [notary_vk]})
        assert set(entry["signatures"]) == {"origin.test", "notary.test"}
        assert fake.calls == [("GET", "origin.test")]

        # POST, several servers incl. ourselves; served from the cache this time.
        body = {"server_keys": {"origin.test": {"ed25519:o2": {}},
                                "notary.test": {},
                                "nowhere.test": {"ed25519:x": {"minimum_valid_until_ts": 1}}}}
        resp = await http.post("/_matrix/key/v2/query", json=body)
        entries = {e["server_name"]: e for e in (await resp.json())["server_keys"]}
        assert set(entries) == {"origin.test", "notary.test"}
        _check_keys_object(entries["origin.test"], "origin.test",
                           {"origin.test": origin_vks, "notary.test": [notary_vk]})
        _check_keys_object(entries["notary.test"], "notary.test", {"notary.test": [notary_vk]})
        assert fake.calls == [("GET", "origin.test"), ("GET", "nowhere.test")]

        # The origin goes offline: the cached response is still served (keys_server.yaml).
        fake.down.add("origin.test")
        clock.now += 86400 * 3
        resp = await http.get("/_matrix/key/v2/query/origin.test",
                              params={"minimum_valid_until_ts": str(int(clock() * 1000))})
        [entry] = (await resp.json())["server_keys"]
        _check_keys_object(entry, "origin.test",
                           {"origin.test": origin_vks, "notary.test": [notary_vk]})
        assert fake.calls[-1] == ("GET", "origin.test")

        # No cached keys and unreachable: an empty list.
        resp = await http.get("/_matrix/key/v2/query/nowhere.test")
        assert (await resp.json()) == {"server_keys": []}
        resp = await http.post("/_matrix/key/v2/query", json={"server_keys": {}})
        assert (await resp.json()) == {"server_keys": []}
    finally:
        await http.close()
        await db.close()


async def test_notary_without_store_serves_what_it_fetched() -> None:
    clock = Clock()
    origin = key_server("origin.test", "o1", clock=clock, key_validity_ms=DAY)
    fake = FakeKeyClient({"origin.test": origin})
    notary = key_server("notary.test", "n1", clock=clock)
    notary.keyring = Keyring(None, fake, clock=clock, min_refetch_interval_ms=0)
    # Without a store every query fetches: the answer is what was just verified.
    [entry] = await notary.query({"origin.test": {}})
    assert entry["server_name"] == "origin.test"
    assert len(fake.calls) == 1


async def test_notary_cache_policy(database_config) -> None:
    db = await open_database(database_config)
    try:
        clock = Clock()
        origin = key_server("origin.test", "o1", clock=clock, key_validity_ms=DAY)
        fake = FakeKeyClient({"origin.test": origin})
        notary = key_server("notary.test", "n1", clock=clock)
        notary.store = ServerKeysStore(db)
        notary.keyring = Keyring(notary.store, fake, clock=clock, min_refetch_interval_ms=0)
        await notary.query({"origin.test": {}})
        await notary.query({"origin.test": {"ed25519:o1": None}})
        assert len(fake.calls) == 1
        await notary.query({"origin.test": {"ed25519:unknown": None}})  # missing key: refetch
        assert len(fake.calls) == 2
        clock.now += 13 * 3600  # past half of the 24h lifetime
        await notary.query({"origin.test": {}})
        assert len(fake.calls) == 3
        # A minimum beyond the cached validity refetches too.
        now = int(clock() * 1000)
        await notary.query({"origin.test": {"ed25519:o1": now + 2 * DAY}})
        assert len(fake.calls) == 4
    finally:
        await db.close()


@pytest.mark.parametrize("method, path, body, status, errcode", [
    ("GET", "/_matrix/key/v2/query/o.test?minimum_valid_until_ts=soon", None, 400,
     "M_INVALID_PARAM"),
    ("POST", "/_matrix/key/v2/query", b"nope", 400, "M_NOT_JSON"),
    ("POST", "/_matrix/key/v2/query", b"{}", 400, "M_BAD_JSON"),
    ("POST", "/_matrix/key/v2/query", b'{"server_keys": {"o.test": []}}', 400, "M_BAD_JSON"),
    ("POST", "/_matrix/key/v2/query", b'{"server_keys": {"o.test": {"k": 1}}}', 400,
     "M_BAD_JSON"),
    ("POST", "/_matrix/key/v2/query",
     b'{"server_keys": {"o.test": {"k": {"minimum_valid_until_ts": "x"}}}}', 400, "M_BAD_JSON"),
])
async def test_bad_queries(method: str, path: str, body: bytes | None, status: int,
                           errcode: str) -> None:
    http = await _serve(key_server("notary.test", "n1"))
    try:
        resp = await http.request(method, path, data=body)
        assert resp.status == status
        assert (await resp.json())["errcode"] == errcode
    finally:
        await http.close()


def test_local_keys_require_a_key() -> None:
    with pytest.raises(ValueError):
        LocalKeys("me.test", [])
    old = OldVerifyKey(get_verify_key(generate_signing_key("o")), 5)
    local = LocalKeys("me.test", [generate_signing_key("a")], {"ed25519:o": old})
    assert local.lookup("ed25519:o", 0) == (old.verify_key, 5)
    assert local.lookup("ed25519:zz", 0) is None


async def test_one_query_fetches_a_bounded_number_of_origins(monkeypatch) -> None:
    import hs.federation.key_server as module

    monkeypatch.setattr(module, "MAX_ORIGIN_FETCHES_PER_QUERY", 3)
    fake = FakeKeyClient({})
    notary = key_server("notary.test", "n1")
    notary.keyring = Keyring(None, fake)
    assert await notary.query({f"s{i}.test": {} for i in range(10)}) == []
    assert len(fake.calls) == 3
