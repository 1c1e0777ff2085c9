"""/keys/upload, /keys/query and /keys/claim on both dialects."""

from __future__ import annotations

import asyncio

from tests.e2e.helpers import V3, new_device, sign, uid
from tests.server.harness import running_server


async def test_upload_device_keys_and_query(database_config):
    async with running_server(database_config) as hs:
        alice = await new_device(hs, "alice", display_name="Alice's phone")
        bob = await new_device(hs, "bob")
        status, body = await alice.upload(device_keys=alice.device_keys())
        assert (status, body) == (200, {"one_time_key_counts": {"signed_curve25519": 0}})

        status, body = await bob.req("POST", "/keys/query", {"device_keys": {alice.user_id: []}})
        assert status == 200, body
        got = body["device_keys"][alice.user_id][alice.device_id]
        expected = alice.device_keys()
        assert got["keys"] == expected["keys"]
        assert got["signatures"] == expected["signatures"]
        assert got["unsigned"] == {"device_display_name": "Alice's phone"}
        assert body["failures"] == {}
        assert body["master_keys"] == {} and body["user_signing_keys"] == {}

        # A second device of alice without keys is not listed; asking for a named device
        # returns only it; unknown devices are simply absent.
        await new_device(hs, "alice", register=False)
        status, body = await bob.req("POST", "/keys/query", {"device_keys": {
            alice.user_id: [alice.device_id, "NOPE"], bob.user_id: []}})
        assert list(body["device_keys"][alice.user_id]) == [alice.device_id]
        assert body["device_keys"][bob.user_id] == {}

        # Remote users fail per server instead of erroring.
        status, body = await bob.req("POST", "/keys/query", {"device_keys": {
            "@carol:elsewhere.example": []}})
        assert status == 200 and "elsewhere.example" in body["failures"]


async def test_upload_device_keys_rejects_bad_input(database_config):
    async with running_server(database_config) as hs:
        alice = await new_device(hs, "alice")
        bob = await new_device(hs, "bob")
        # Somebody else's keys, or another device's.
        status, err = await alice.upload(device_keys=bob.device_keys())
        assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
        other = alice.device_keys()
        other["device_id"] = "OTHER"
        status, err = await alice.upload(device_keys=sign(
            other, alice.user_id, f"ed25519:{alice.device_id}", alice.key))
        assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
        # Tampered after signing.
        keys = alice.device_keys()
        keys["algorithms"].append("evil")
        status, err = await alice.upload(device_keys=keys)
        assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
        # Signed with the wrong key.
        keys = alice.device_keys()
        keys = sign({k: v for k, v in keys.items() if k != "signatures"}, alice.user_id,
                    f"ed25519:{alice.device_id}", bob.key)
        status, err = await alice.upload(device_keys=keys)
        assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
        # Malformed shapes.
        for bad in ({"device_keys": "x"}, {"device_keys": {**alice.device_keys(), "keys": 1}},
                    {"one_time_keys": []}, {"one_time_keys": {"nocolon": "k"}},
                    {"one_time_keys": {"signed_curve25519:A": 5}},
                    {"one_time_keys": {"signed_curve25519:A": {"nokey": 1}}},
                    {"fallback_keys": "x"}):
            status, err = await alice.upload(**bad)
            assert status == 400 and err["errcode"] in ("M_BAD_JSON", "M_INVALID_PARAM"), bad
        status, _ = await hs.request("POST", V3 + "/keys/upload", data=b"{not json",
                                     token=alice.token)
        assert status == 400
        status, body = await alice.req("POST", "/keys/query", {"device_keys": {"bad": []}})
        assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
        status, body = await alice.req("POST", "/keys/query", {"device_keys": {
            alice.user_id: "x"}})
        assert (status, body["errcode"]) == (400, "M_BAD_JSON")
        status, body = await alice.req("POST", "/keys/query", {})
        assert (status, body["errcode"]) == (400, "M_MISSING_PARAM")
        status, _ = await hs.request("POST", V3 + "/keys/upload", {})
        assert status == 401


async def test_one_time_keys_idempotent_and_conflicting(database_config):
    async with running_server(database_config) as hs:
        alice = await new_device(hs, "alice")
        keys = alice.otks(5)
        status, body = await alice.upload(one_time_keys=keys)
        assert body == {"one_time_key_counts": {"signed_curve25519": 5}}
        # The same keys again (a retried request) are fine and not double counted.
        status, body = await alice.upload(one_time_keys=keys)
        assert (status, body["one_time_key_counts"]) == (200, {"signed_curve25519": 5})
        # Same ID, different key: refused, and nothing of that upload is stored.
        clash = {**alice.otks(1, 10), "signed_curve25519:K0": alice.otks(1, 99)[
            "signed_curve25519:K99"]}
        status, err = await alice.upload(one_time_keys=clash)
        assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
        status, body = await alice.upload()
        assert body["one_time_key_counts"] == {"signed_curve25519": 5}
        services = hs.services
        assert await services.e2e_keys.one_time_key_counts(alice.user_id, alice.device_id) \
            == {"signed_curve25519": 5}
        # Other algorithms are counted separately.
        status, body = await alice.upload(one_time_keys={"curve25519:X": "plainkey"})
        assert body["one_time_key_counts"] == {"signed_curve25519": 5, "curve25519": 1}


async def test_claim_exhaustion_falls_back(database_config):
    async with running_server(database_config) as hs:
        alice = await new_device(hs, "alice")
        bob = await new_device(hs, "bob")
        fallback = alice.otks(1, 50, fallback=True)
        await alice.upload(one_time_keys=alice.otks(2), fallback_keys=fallback)
        e2e = hs.services.e2e_keys
        assert await e2e.unused_fallback_key_types(alice.user_id, alice.device_id) == [
            "signed_curve25519"]
        claim = {"one_time_keys": {alice.user_id: {alice.device_id: "signed_curve25519"}}}
        seen = []
        for _ in range(2):
            status, body = await bob.req("POST", "/keys/claim", claim)
            assert status == 200, body
            (key_id, key), = body["one_time_keys"][alice.user_id][alice.device_id].items()
            assert key_id in ("signed_curve25519:K0", "signed_curve25519:K1")
            assert "fallback" not in key
            seen.append(key_id)
        assert sorted(seen) == ["signed_curve25519:K0", "signed_curve25519:K1"]
        # Uploaded in that order, handed out in that order.
        assert seen == ["signed_curve25519:K0", "signed_curve25519:K1"]
        # Out of one-time keys: the fallback key, again and again, marked used.
        for _ in range(2):
            status, body = await bob.req("POST", "/keys/claim", claim)
            assert body["one_time_keys"][alice.user_id][alice.device_id] == fallback
        assert await e2e.unused_fallback_key_types(alice.user_id, alice.device_id) == []
        # Re-uploading the same fallback key keeps it used; a new one is unused.
        await alice.upload(fallback_keys=fallback)
        assert await e2e.unused_fallback_key_types(alice.user_id, alice.device_id) == []
        await alice.upload(fallback_keys=alice.otks(1, 51, fallback=True))
        assert await e2e.unused_fallback_key_types(alice.user_id, alice.device_id) == [
            "signed_curve25519"]
        # Nothing for unknown devices, algorithms; remote users land in failures.
        status, body = await bob.req("POST", "/keys/claim", {"one_time_keys": {
            alice.user_id: {"NODEVICE": "signed_curve25519"},
            "@x:remote.example": {"D": "signed_curve25519"}}})
        assert body["one_time_keys"] == {} and "remote.example" in body["failures"]
        status, err = await bob.req("POST", "/keys/claim", {"one_time_keys": {
            alice.user_id: {alice.device_id: 1}}})
        assert (status, err["errcode"]) == (400, "M_BAD_JSON")
        status, err = await bob.req("POST", "/keys/claim", {"one_time_keys": {},
                                                           "timeout": "soon"})
        assert (status, err["errcode"]) == (400, "M_BAD_JSON")


async def test_concurrent_claims_never_share_a_key(database_config):
    async with running_server(database_config) as hs:
        alice = await new_device(hs, "alice")
        claimers = [await new_device(hs, f"c{i}") for i in range(3)]
        await alice.upload(one_time_keys=alice.otks(20),
                           fallback_keys=alice.otks(1, 200, fallback=True))
        claim = {"one_time_keys": {alice.user_id: {alice.device_id: "signed_curve25519"}}}

        async def one(i: int) -> str:
            status, body = await claimers[i % 3].req("POST", "/keys/claim", claim)
            assert status == 200, body
            (key_id, _), = body["one_time_keys"][alice.user_id][alice.device_id].items()
            return key_id

        got = await asyncio.gather(*(one(i) for i in range(30)))
        otks = [k for k in got if k != "signed_curve25519:K200"]
        assert len(otks) == 20 and len(set(otks)) == 20
        assert got.count("signed_curve25519:K200") == 10
        # And directly on the store, one request batch for many devices at once.
        store = hs.services.e2e_keys.store
        assert await store.count_one_time_keys(alice.user_id, alice.device_id) == {}
        bob = await new_device(hs, "bob")
        await bob.upload(one_time_keys=bob.otks(3))
        results = await asyncio.gather(*(store.claim_keys([
            (bob.user_id, bob.device_id, "signed_curve25519"),
            (alice.user_id, alice.device_id, "signed_curve25519")]) for _ in range(4)))
        bob_keys = [r[(bob.user_id, bob.device_id, "signed_curve25519")][0]
                    for r in results if (bob.user_id, bob.device_id, "signed_curve25519") in r]
        assert sorted(bob_keys) == ["K0", "K1", "K2"]
        assert all(r[(alice.user_id, alice.device_id, "signed_curve25519")][0] == "K200"
                   for r in results)


async def test_deleting_a_device_clears_its_keys(database_config):
    async with running_server(database_config) as hs:
        alice = await new_device(hs, "alice")
        await alice.upload(device_keys=alice.device_keys(), one_time_keys=alice.otks(3),
                           fallback_keys=alice.otks(1, 9, fallback=True))
        second = await new_device(hs, "alice", register=False)
        await second.upload(device_keys=second.device_keys())
        before = hs.services.device_lists.current()
        status, challenge = await second.req("DELETE", f"/devices/{alice.device_id}", {})
        assert status == 401
        status, _ = await second.req("DELETE", f"/devices/{alice.device_id}", {"auth": {
            "type": "m.login.password", "session": challenge["session"],
            "password": "password1", "identifier": {"type": "m.id.user", "user": "alice"}}})
        assert status == 200
        status, body = await second.req("POST", "/keys/query", {"device_keys": {
            alice.user_id: []}})
        assert list(body["device_keys"][alice.user_id]) == [second.device_id]
        e2e = hs.services.e2e_keys
        assert await e2e.one_time_key_counts(alice.user_id, alice.device_id) == {
            "signed_curve25519": 0}
        assert await e2e.unused_fallback_key_types(alice.user_id, alice.device_id) == []
        changed, _ = await hs.services.device_lists.device_list_changes_since(
            second.user_id, before)
        assert changed == {uid("alice")}
