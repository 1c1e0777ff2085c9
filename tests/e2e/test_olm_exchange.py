"""Two devices with real Olm accounts (vodozemac, the library Element X's crypto is built
on) set up an encrypted channel through this server: keys uploaded and queried, a one-time
key (and later the fallback key) claimed, pre-key and normal Olm messages carried by
/sendToDevice and read from the inbox with the API /sync uses. Only the /sync HTTP call
itself is bypassed (``get_to_device`` is what it will return).

Needs the ``vodozemac`` wheel from PyPI; skipped when it is not installed.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from tests.e2e.helpers import Device, new_device
from tests.server.harness import running_server

from hs.core.canonical_json import encode_canonical_json
from hs.core.unpadded_base64 import decode_base64, encode_base64

vodozemac = pytest.importorskip("vodozemac")
OLM = "m.olm.v1.curve25519-aes-sha2"


class OlmDevice:
    """A device whose keys come from a real Olm account."""

    def __init__(self, dev: Device) -> None:
        self.dev = dev
        self.account = vodozemac.Account()
        self.curve = self.account.curve25519_key.to_base64()
        self.ed = self.account.ed25519_key.to_base64()

    def signed(self, obj: dict[str, Any]) -> dict[str, Any]:
        payload = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
        sig = self.account.sign(encode_canonical_json(payload)).to_base64()
        return {**obj, "signatures": {self.dev.user_id: {
            f"ed25519:{self.dev.device_id}": sig}}}

    def device_keys(self) -> dict[str, Any]:
        d = self.dev.device_id
        return self.signed({"user_id": self.dev.user_id, "device_id": d,
                            "algorithms": [OLM, "m.megolm.v1.aes-sha2"],
                            "keys": {f"curve25519:{d}": self.curve, f"ed25519:{d}": self.ed}})

    async def publish(self, otks: int) -> None:
        self.account.generate_one_time_keys(otks)
        self.account.generate_fallback_key()
        one_time = {f"signed_curve25519:{kid}": self.signed({"key": k.to_base64()})
                    for kid, k in self.account.one_time_keys.items()}
        fallback = {f"signed_curve25519:{kid}": self.signed({"key": k.to_base64(),
                                                             "fallback": True})
                    for kid, k in self.account.fallback_key.items()}
        status, body = await self.dev.upload(device_keys=self.device_keys(),
                                             one_time_keys=one_time, fallback_keys=fallback)
        assert status == 200, body
        assert body["one_time_key_counts"]["signed_curve25519"] == otks
        self.account.mark_keys_as_published()

    def check_signed(self, obj: dict[str, Any], user_id: str, device_id: str,
                     ed_key: str) -> None:
        """Verify as a client does, with the crypto library rather than our own code."""
        payload = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
        sig = vodozemac.Ed25519Signature.from_base64(
            obj["signatures"][user_id][f"ed25519:{device_id}"])
        vodozemac.Ed25519PublicKey.from_base64(ed_key).verify_signature(
            encode_canonical_json(payload), sig)

    def encrypt(self, session: Any, recipient: OlmDevice, payload: dict[str, Any]
                ) -> dict[str, Any]:
        plaintext = orjson.dumps({**payload, "sender": self.dev.user_id,
                                  "recipient": recipient.dev.user_id,
                                  "recipient_keys": {"ed25519": recipient.ed},
                                  "keys": {"ed25519": self.ed}})
        msg_type, body = session.encrypt(plaintext).to_parts()
        return {"algorithm": OLM, "sender_key": self.curve,
                "ciphertext": {recipient.curve: {"type": msg_type,
                                                 "body": encode_base64(body)}}}


async def _send(sender: OlmDevice, to: OlmDevice, content: dict[str, Any], txn: str) -> None:
    status, body = await sender.dev.req(
        "PUT", f"/sendToDevice/m.room.encrypted/{txn}",
        {"messages": {to.dev.user_id: {to.dev.device_id: content}}})
    assert status == 200, body


async def _receive(hs: Any, dev: OlmDevice, since: int) -> tuple[list[dict[str, Any]], int]:
    to_device = hs.services.to_device
    messages, pos = await to_device.get_to_device(dev.dev.user_id, dev.dev.device_id, since)
    await to_device.ack_to_device(dev.dev.user_id, dev.dev.device_id, pos)
    return messages, pos


def _olm_body(content: dict[str, Any], me: OlmDevice) -> tuple[int, bytes]:
    part = content["ciphertext"][me.curve]
    return part["type"], decode_base64(part["body"])


async def test_olm_session_through_the_server(database_config):
    async with running_server(database_config) as hs:
        alice = OlmDevice(await new_device(hs, "alice"))
        bob = OlmDevice(await new_device(hs, "bob"))
        await alice.publish(otks=1)
        await bob.publish(otks=1)

        # Bob looks up Alice's device and checks her self-signature.
        status, q = await bob.dev.req("POST", "/keys/query", {"device_keys": {
            alice.dev.user_id: []}})
        keys = q["device_keys"][alice.dev.user_id][alice.dev.device_id]
        ed = keys["keys"][f"ed25519:{alice.dev.device_id}"]
        curve = keys["keys"][f"curve25519:{alice.dev.device_id}"]
        bob.check_signed(keys, alice.dev.user_id, alice.dev.device_id, ed)
        assert (ed, curve) == (alice.ed, alice.curve)

        # Claims a one-time key (signature checked) and starts an Olm session with it.
        claim = {"one_time_keys": {alice.dev.user_id: {alice.dev.device_id:
                                                       "signed_curve25519"}}}
        status, c = await bob.dev.req("POST", "/keys/claim", claim)
        (_kid, otk), = c["one_time_keys"][alice.dev.user_id][alice.dev.device_id].items()
        bob.check_signed(otk, alice.dev.user_id, alice.dev.device_id, ed)
        session = bob.account.create_outbound_session(
            vodozemac.Curve25519PublicKey.from_base64(curve),
            vodozemac.Curve25519PublicKey.from_base64(otk["key"]))
        since = hs.services.to_device.current()
        await _send(bob, alice, bob.encrypt(session, alice, {"type": "m.dummy",
                                                             "content": {}}), "t1")

        # Alice receives the pre-key message and opens the inbound session.
        messages, since = await _receive(hs, alice, since)
        (msg,) = messages
        assert (msg["sender"], msg["type"]) == (bob.dev.user_id, "m.room.encrypted")
        msg_type, body = _olm_body(msg["content"], alice)
        assert msg_type == 0
        inbound, plaintext = alice.account.create_inbound_session(
            vodozemac.Curve25519PublicKey.from_base64(msg["content"]["sender_key"]),
            vodozemac.AnyOlmMessage.from_parts(msg_type, body).to_pre_key())
        decrypted = orjson.loads(plaintext)
        assert decrypted["sender"] == bob.dev.user_id and decrypted["keys"]["ed25519"] == bob.ed

        # Alice answers over the established session; Bob decrypts a normal message.
        bob_since = hs.services.to_device.current()
        await _send(alice, bob, alice.encrypt(inbound, bob, {"type": "org.example.ping",
                                                             "content": {"n": 1}}), "r1")
        (reply,), _ = await _receive(hs, bob, bob_since)
        msg_type, body = _olm_body(reply["content"], bob)
        assert msg_type == 1
        answer = orjson.loads(session.decrypt(vodozemac.AnyOlmMessage.from_parts(
            msg_type, body)))
        assert answer["content"] == {"n": 1}

        # Alice's one-time key is gone; a second device of Bob gets her fallback key,
        # which works for a session just the same.
        bob2 = OlmDevice(await new_device(hs, "bob", register=False))
        status, c = await bob2.dev.req("POST", "/keys/claim", claim)
        assert status == 200, c
        (_kid, fallback), = c["one_time_keys"][alice.dev.user_id][alice.dev.device_id].items()
        assert fallback["fallback"] is True
        bob2.check_signed(fallback, alice.dev.user_id, alice.dev.device_id, ed)
        session2 = bob2.account.create_outbound_session(
            vodozemac.Curve25519PublicKey.from_base64(curve),
            vodozemac.Curve25519PublicKey.from_base64(fallback["key"]))
        await _send(bob2, alice, bob2.encrypt(session2, alice, {"type": "m.dummy",
                                                                "content": {}}), "t2")
        (msg,), _ = await _receive(hs, alice, since)
        msg_type, body = _olm_body(msg["content"], alice)
        _, plaintext = alice.account.create_inbound_session(
            vodozemac.Curve25519PublicKey.from_base64(msg["content"]["sender_key"]),
            vodozemac.AnyOlmMessage.from_parts(msg_type, body).to_pre_key())
        assert orjson.loads(plaintext)["sender"] == bob2.dev.user_id
        assert await hs.services.e2e_keys.unused_fallback_key_types(
            alice.dev.user_id, alice.dev.device_id) == []
