"""Cross-signing key upload (with UIA as the spec requires) and signature upload."""

from __future__ import annotations

from typing import Any

from nacl.signing import SigningKey
from tests.e2e.helpers import Device, cross_key, new_device, pub, sign
from tests.server.harness import running_server


class CrossSigning:
    """A user's master / self-signing / user-signing private keys."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.master, self.ssk, self.usk = (SigningKey.generate() for _ in range(3))

    def master_key(self) -> dict[str, Any]:
        return cross_key(self.user_id, "master", self.master)

    def by_master(self, obj: dict[str, Any]) -> dict[str, Any]:
        return sign(obj, self.user_id, f"ed25519:{pub(self.master)}", self.master)

    def body(self) -> dict[str, Any]:
        return {"master_key": self.master_key(),
                "self_signing_key": self.by_master(cross_key(self.user_id, "self_signing",
                                                             self.ssk)),
                "user_signing_key": self.by_master(cross_key(self.user_id, "user_signing",
                                                             self.usk))}


def password_auth(session: str, user: str, password: str = "password1") -> dict[str, Any]:
    return {"type": "m.login.password", "session": session, "password": password,
            "identifier": {"type": "m.id.user", "user": user}}


async def setup_cross_signing(dev: Device) -> CrossSigning:
    cs = CrossSigning(dev.user_id)
    status, body = await dev.req("POST", "/keys/device_signing/upload", cs.body())
    assert status == 200, body
    return cs


async def test_first_upload_without_uia_then_uia_required(database_config):
    async with running_server(database_config) as hs:
        alice = await new_device(hs, "alice")
        bob = await new_device(hs, "bob")
        cs = await setup_cross_signing(alice)
        # The identical keys again (a retry after a lost response): no UIA.
        status, _ = await alice.req("POST", "/keys/device_signing/upload", cs.body())
        assert status == 200
        # New keys: UIA with the account password.
        cs2 = CrossSigning(alice.user_id)
        status, challenge = await alice.req("POST", "/keys/device_signing/upload", cs2.body())
        assert status == 401 and challenge["flows"] == [{"stages": ["m.login.password"]}]
        body = {**cs2.body(), "auth": password_auth(challenge["session"], "alice", "wrong")}
        status, err = await alice.req("POST", "/keys/device_signing/upload", body)
        assert (status, err["errcode"]) == (401, "M_FORBIDDEN")
        body["auth"] = password_auth(challenge["session"], "alice")
        status, _ = await alice.req("POST", "/keys/device_signing/upload", body)
        assert status == 200

        status, q = await bob.req("POST", "/keys/query", {"device_keys": {alice.user_id: [],
                                                                         bob.user_id: []}})
        assert q["master_keys"][alice.user_id]["keys"] == cs2.master_key()["keys"]
        assert q["self_signing_keys"][alice.user_id]["usage"] == ["self_signing"]
        # The user-signing key is only shown to its owner.
        assert q["user_signing_keys"] == {}
        status, q = await alice.req("POST", "/keys/query", {"device_keys": {
            alice.user_id: []}})
        assert q["user_signing_keys"][alice.user_id]["keys"] == {
            f"ed25519:{pub(cs2.usk)}": pub(cs2.usk)}


async def test_bad_cross_signing_keys(database_config):
    async with running_server(database_config) as hs:
        alice = await new_device(hs, "alice")
        bob = await new_device(hs, "bob")
        url = "/keys/device_signing/upload"
        cs = CrossSigning(alice.user_id)
        # Self-signing key not signed by the master key.
        body = cs.body()
        body["self_signing_key"] = cross_key(alice.user_id, "self_signing", cs.ssk)
        status, err = await alice.req("POST", url, body)
        assert (status, err["errcode"]) == (400, "M_INVALID_SIGNATURE")
        # Somebody else's key, wrong usage, malformed keys.
        for bad in ({"master_key": cross_key(bob.user_id, "master", cs.master)},
                    {"master_key": cross_key(alice.user_id, "self_signing", cs.master)},
                    {"master_key": {**cs.master_key(), "keys": {"ed25519:x": "y"}}},
                    {"master_key": {**cs.master_key(), "keys": {}}},
                    {"master_key": "nope"},
                    {"self_signing_key": cs.body()["self_signing_key"]}):
            status, err = await alice.req("POST", url, bad)
            assert status == 400 and err["errcode"] in ("M_INVALID_PARAM", "M_BAD_JSON"), bad
        status, q = await alice.req("POST", "/keys/query", {"device_keys": {
            alice.user_id: []}})
        assert q["master_keys"] == {}


async def test_signatures_upload_verifies_each_signature(database_config):
    async with running_server(database_config) as hs:
        alice = await new_device(hs, "alice")
        bob = await new_device(hs, "bob")
        carol = await new_device(hs, "carol")
        await alice.upload(device_keys=alice.device_keys())
        alice_cs = await setup_cross_signing(alice)
        bob_cs = await setup_cross_signing(bob)

        # Alice's self-signing key signs her device; her device signs her master key;
        # a forged signature and an unknown key fail individually.
        signed_device = sign(alice.device_keys(), alice.user_id,
                             f"ed25519:{pub(alice_cs.ssk)}", alice_cs.ssk)
        signed_master = sign(alice_cs.master_key(), alice.user_id,
                             f"ed25519:{alice.device_id}", alice.key)
        forged = sign(alice.device_keys(), alice.user_id, f"ed25519:{pub(alice_cs.ssk)}",
                      alice_cs.usk)
        body = {alice.user_id: {alice.device_id: signed_device, pub(alice_cs.master):
                                signed_master, "UNKNOWN": signed_device}}
        status, result = await alice.req("POST", "/keys/signatures/upload", body)
        assert status == 200, result
        assert set(result["failures"][alice.user_id]) == {"UNKNOWN"}
        status, result = await alice.req("POST", "/keys/signatures/upload", {
            alice.user_id: {alice.device_id: forged}})
        assert result["failures"][alice.user_id][alice.device_id]["errcode"] == \
            "M_INVALID_SIGNATURE"
        # A signature over different content than the stored key is refused.
        tampered = alice.device_keys()
        tampered["algorithms"] = ["x"]
        tampered = sign(tampered, alice.user_id, f"ed25519:{pub(alice_cs.ssk)}", alice_cs.ssk)
        status, result = await alice.req("POST", "/keys/signatures/upload", {
            alice.user_id: {alice.device_id: tampered}})
        assert alice.device_id in result["failures"][alice.user_id]

        # Alice signs Bob's master key with her user-signing key: a change only she is
        # told about (nobody shares a room here).
        lists = hs.services.device_lists
        before = lists.current()
        bob_master = sign(bob_cs.master_key(), alice.user_id, f"ed25519:{pub(alice_cs.usk)}",
                          alice_cs.usk)
        status, result = await alice.req("POST", "/keys/signatures/upload", {
            bob.user_id: {pub(bob_cs.master): bob_master}})
        assert result["failures"] == {}
        assert await lists.device_list_changes_since(alice.user_id, before) == (
            {bob.user_id}, set())
        assert await lists.device_list_changes_since(carol.user_id, before) == (set(), set())
        bad = sign(bob_cs.master_key(), alice.user_id, f"ed25519:{pub(alice_cs.usk)}",
                   alice_cs.ssk)
        status, result = await alice.req("POST", "/keys/signatures/upload", {
            bob.user_id: {pub(bob_cs.master): bad}})
        assert result["failures"][bob.user_id][pub(bob_cs.master)]["errcode"] == \
            "M_INVALID_SIGNATURE"

        # What others see: the self-signatures, merged in.
        query = {"device_keys": {alice.user_id: [], bob.user_id: []}}
        status, q = await carol.req("POST", "/keys/query", query)
        dev_sigs = q["device_keys"][alice.user_id][alice.device_id]["signatures"][
            alice.user_id]
        assert set(dev_sigs) == {f"ed25519:{alice.device_id}", f"ed25519:{pub(alice_cs.ssk)}"}
        master_sigs = q["master_keys"][alice.user_id]["signatures"][alice.user_id]
        assert f"ed25519:{alice.device_id}" in master_sigs
        # Alice's signature on Bob's master key is hers alone to see.
        assert alice.user_id not in q["master_keys"][bob.user_id].get("signatures", {})
        status, q = await alice.req("POST", "/keys/query", query)
        assert f"ed25519:{pub(alice_cs.usk)}" in q["master_keys"][bob.user_id][
            "signatures"][alice.user_id]

        # Deleting the device drops its signature on the master key (and the ones on it).
        await hs.services.devices.delete(alice.user_id, [alice.device_id])
        status, q = await carol.req("POST", "/keys/query", query)
        assert f"ed25519:{alice.device_id}" not in q["master_keys"][alice.user_id].get(
            "signatures", {}).get(alice.user_id, {})
        alice = await new_device(hs, "alice", register=False)

        # Malformed bodies.
        status, err = await alice.req("POST", "/keys/signatures/upload", {alice.user_id: 1})
        assert (status, err["errcode"]) == (400, "M_BAD_JSON")
        status, result = await alice.req("POST", "/keys/signatures/upload", {
            alice.user_id: {alice.device_id: "x"}})
        assert result["failures"][alice.user_id][alice.device_id]["errcode"] == "M_BAD_JSON"
        # A fresh master key drops the signatures made on the old one.
        cs2 = CrossSigning(bob.user_id)
        status, challenge = await bob.req("POST", "/keys/device_signing/upload", cs2.body())
        status, _ = await bob.req("POST", "/keys/device_signing/upload", {
            **cs2.body(), "auth": password_auth(challenge["session"], "bob")})
        assert status == 200
        status, q = await alice.req("POST", "/keys/query", query)
        assert alice.user_id not in q["master_keys"][bob.user_id].get("signatures", {})


async def test_signing_without_cross_signing_keys_fails_per_key(database_config):
    async with running_server(database_config) as hs:
        alice = await new_device(hs, "alice")
        await alice.upload(device_keys=alice.device_keys())
        key = SigningKey.generate()
        signed = sign(alice.device_keys(), alice.user_id, f"ed25519:{pub(key)}", key)
        status, result = await alice.req("POST", "/keys/signatures/upload", {
            alice.user_id: {alice.device_id: signed}})
        assert status == 200
        assert alice.device_id in result["failures"][alice.user_id]
