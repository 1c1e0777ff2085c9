"""The real end-to-end proof: two vodozemac clients set up Olm over this server, share
Megolm room keys with Olm-encrypted to-device messages, and exchange Megolm-encrypted room
messages, each *receiving only through /sync* (long-polling) and decrypting the other's.

Needs the ``vodozemac`` wheel; skipped when it is not installed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from tests.e2e.helpers import new_device
from tests.server.harness import running_server
from tests.sync.helpers import User

from hs.core.unpadded_base64 import decode_base64

vodozemac = pytest.importorskip("vodozemac")
from tests.e2e.test_olm_exchange import OlmDevice  # noqa: E402

MEGOLM = "m.megolm.v1.aes-sha2"


class Client:
    """One E2EE device: its Olm account, Olm sessions, Megolm sessions and /sync token."""

    def __init__(self, olm: OlmDevice) -> None:
        self.olm = olm
        self.user = User(olm.dev.hs, olm.dev.user_id, olm.dev.device_id, olm.dev.token)
        self.token: str | None = None
        self.olm_session: Any = None
        self.outbound = vodozemac.GroupSession()
        self.inbound: dict[str, Any] = {}

    async def sync(self) -> dict[str, Any]:
        body = await self.user.sync(self.token, timeout=5000 if self.token else 0)
        self.token = body["next_batch"]
        return body

    async def sync_until(self, pred: Any) -> dict[str, Any]:
        """Long-poll until a response satisfies ``pred`` (collecting across responses)."""
        for _ in range(10):
            body = await self.sync()
            if pred(body):
                return body
        raise AssertionError("never received")

    def decrypt_to_device(self, event: dict[str, Any]) -> dict[str, Any]:
        content = event["content"]
        part = content["ciphertext"][self.olm.curve]
        message = vodozemac.AnyOlmMessage.from_parts(part["type"], decode_base64(part["body"]))
        if part["type"] == 0 and self.olm_session is None:
            self.olm_session, plaintext = self.olm.account.create_inbound_session(
                vodozemac.Curve25519PublicKey.from_base64(content["sender_key"]),
                message.to_pre_key())
        else:
            plaintext = self.olm_session.decrypt(message)
        return orjson.loads(plaintext)  # type: ignore[no-any-return]

    def room_key(self, room_id: str) -> dict[str, Any]:
        return {"type": "m.room_key", "content": {
            "algorithm": MEGOLM, "room_id": room_id, "session_id": self.outbound.session_id,
            "session_key": self.outbound.session_key.to_base64()}}

    def encrypt_room(self, room_id: str, plaintext: dict[str, Any]) -> dict[str, Any]:
        payload = orjson.dumps({**plaintext, "room_id": room_id})
        return {"algorithm": MEGOLM, "sender_key": self.olm.curve,
                "ciphertext": self.outbound.encrypt(payload).to_base64(),
                "session_id": self.outbound.session_id, "device_id": self.olm.dev.device_id}

    def decrypt_room(self, event: dict[str, Any]) -> dict[str, Any]:
        content = event["content"]
        session = self.inbound[content["session_id"]]
        decrypted = session.decrypt(vodozemac.MegolmMessage.from_base64(content["ciphertext"]))
        return orjson.loads(decrypted.plaintext)  # type: ignore[no-any-return]

    def accept_room_key(self, decrypted: dict[str, Any]) -> None:
        assert decrypted["type"] == "m.room_key"
        key = decrypted["content"]
        self.inbound[key["session_id"]] = vodozemac.InboundGroupSession(
            vodozemac.SessionKey(key["session_key"]))


async def test_olm_and_megolm_through_sync(database_config):
    async with running_server(database_config) as hs:
        alice = Client(OlmDevice(await new_device(hs, "alice")))
        bob = Client(OlmDevice(await new_device(hs, "bob")))
        await alice.olm.publish(otks=2)
        await bob.olm.publish(otks=2)
        room = await alice.user.create_room(initial_state=[{
            "type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}}])
        await bob.user.join(room)
        await alice.sync()
        first = await bob.sync()
        # Bob's sync reports his published keys (clients top them up from this).
        assert first["device_one_time_keys_count"]["signed_curve25519"] == 2
        assert first["device_unused_fallback_key_types"] == ["signed_curve25519"]

        # Bob claims one of Alice's one-time keys and opens an Olm session.
        claimed = await bob.user.ok("POST", "/keys/claim", {"one_time_keys": {
            alice.user.user_id: {alice.user.device_id: "signed_curve25519"}}})
        (_, otk), = claimed["one_time_keys"][alice.user.user_id][alice.user.device_id].items()
        bob.olm_session = bob.olm.account.create_outbound_session(
            vodozemac.Curve25519PublicKey.from_base64(alice.olm.curve),
            vodozemac.Curve25519PublicKey.from_base64(otk["key"]))

        # Bob shares his Megolm key over Olm, then sends an encrypted room message.
        alice_waiting = asyncio.create_task(alice.sync_until(
            lambda b: b["to_device"]["events"] or room in b["rooms"].get("join", {})))
        await asyncio.sleep(0.05)
        await bob.user.ok("PUT", "/sendToDevice/m.room.encrypted/k1", {"messages": {
            alice.user.user_id: {alice.user.device_id: bob.olm.encrypt(
                bob.olm_session, alice.olm, bob.room_key(room))}}})
        await bob.user.ok("PUT", f"/rooms/{room}/send/m.room.encrypted/m1",
                          bob.encrypt_room(room, {"type": "m.room.message", "content": {
                              "msgtype": "m.text", "body": "hello alice"}}))

        # Alice gets both through /sync (maybe over two responses) and decrypts them.
        to_device: list[dict[str, Any]] = []
        encrypted: list[dict[str, Any]] = []

        def collect(body: dict[str, Any]) -> bool:
            to_device.extend(body["to_device"]["events"])
            entry = body["rooms"].get("join", {}).get(room)
            if entry:
                encrypted.extend(e for e in entry["timeline"]["events"]
                                 if e["type"] == "m.room.encrypted")
            return bool(to_device and encrypted)

        if not collect(await alice_waiting):
            await alice.sync_until(collect)
        (key_msg,) = to_device
        assert (key_msg["sender"], key_msg["type"]) == (bob.user.user_id, "m.room.encrypted")
        alice.accept_room_key(alice.decrypt_to_device(key_msg))
        (event,) = encrypted
        assert event["sender"] == bob.user.user_id
        clear = alice.decrypt_room(event)
        assert clear == {"type": "m.room.message", "room_id": room,
                         "content": {"msgtype": "m.text", "body": "hello alice"}}
        # The one-time key Alice's session used is gone from her count.
        counts = await alice.sync()
        assert counts["device_one_time_keys_count"]["signed_curve25519"] == 1

        # Alice answers: her Megolm key over the established Olm session, then a message.
        bob_waiting = asyncio.create_task(bob.sync_until(
            lambda b: b["to_device"]["events"] or room in b["rooms"].get("join", {})))
        await asyncio.sleep(0.05)
        await alice.user.ok("PUT", "/sendToDevice/m.room.encrypted/k2", {"messages": {
            bob.user.user_id: {bob.user.device_id: alice.olm.encrypt(
                alice.olm_session, bob.olm, alice.room_key(room))}}})
        await alice.user.ok("PUT", f"/rooms/{room}/send/m.room.encrypted/m2",
                            alice.encrypt_room(room, {"type": "m.room.message", "content": {
                                "msgtype": "m.text", "body": "hi bob"}}))
        to_device.clear()
        encrypted.clear()
        if not collect(await bob_waiting):
            await bob.sync_until(collect)
        (key_msg,) = to_device
        decrypted = bob.decrypt_to_device(key_msg)
        assert decrypted["sender"] == alice.user.user_id
        assert decrypted["keys"]["ed25519"] == alice.olm.ed
        bob.accept_room_key(decrypted)
        (event,) = [e for e in encrypted if e["sender"] == alice.user.user_id]
        assert bob.decrypt_room(event)["content"]["body"] == "hi bob"
        # Bob's message again, from his own timeline: Alice's key does not open it.
        with pytest.raises(KeyError):
            bob.decrypt_room({"content": {**event["content"], "session_id": "unknown"}})
