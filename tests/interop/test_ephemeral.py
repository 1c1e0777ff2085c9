"""EDUs and E2EE plumbing across hs and a real Synapse: typing, receipts, device keys, to-device.

``sender`` (or ``owner``) names the server of the acting user; the observer is on the other.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.interop.client import (
    Client,
    make_device_keys,
    register,
    verify_json,
    wait_for,
)
from tests.interop.conftest import shared_room
from tests.interop.synapse_fed import FedHs, FedSynapse

SIDES = ("hs", "synapse")


def _actor_and_observer(synapse: FedSynapse, hs: FedHs, side: str) -> tuple[Client, Client]:
    servers = {"hs": hs, "synapse": synapse}
    other = "synapse" if side == "hs" else "hs"
    return register(servers[side], f"a{side[0]}"), register(servers[other], f"o{side[0]}")


def _ephemeral(response: dict[str, Any], room_id: str) -> list[dict[str, Any]]:
    room = response.get("rooms", {}).get("join", {}).get(room_id, {})
    return list(room.get("ephemeral", {}).get("events", []))


@pytest.mark.parametrize("sender", SIDES)
def test_typing_notification(synapse: FedSynapse, hs: FedHs, sender: str,
                             room_version: str) -> None:
    actor, observer = _actor_and_observer(synapse, hs, sender)
    room_id = shared_room(observer, actor, room_version)  # the actor is the remote joiner
    observer.sync()
    actor.typing(room_id, True)

    def typing(response: dict[str, Any]) -> bool:
        return any(e["type"] == "m.typing" and actor.user_id in e["content"].get("user_ids", [])
                   for e in _ephemeral(response, room_id))

    observer.sync_until(typing, f"{actor.user_id} typing")
    actor.typing(room_id, False)

    def stopped(response: dict[str, Any]) -> bool:
        return any(e["type"] == "m.typing" and actor.user_id not in e["content"]["user_ids"]
                   for e in _ephemeral(response, room_id))

    observer.sync_until(stopped, f"{actor.user_id} no longer typing")


@pytest.mark.parametrize("sender", SIDES)
def test_read_receipt(synapse: FedSynapse, hs: FedHs, sender: str, room_version: str) -> None:
    actor, observer = _actor_and_observer(synapse, hs, sender)
    room_id = shared_room(observer, actor, room_version)
    event_id = observer.send(room_id, "please read me")
    wait_for(lambda: "please read me" in actor.message_bodies(room_id),
             f"{actor.server_name} to receive the message")
    observer.sync()
    actor.receipt(room_id, event_id)

    def receipt(response: dict[str, Any]) -> bool:
        for e in _ephemeral(response, room_id):
            if e["type"] == "m.receipt" and actor.user_id in (
                    e["content"].get(event_id, {}).get("m.read", {})):
                return True
        return False

    observer.sync_until(receipt, f"{actor.user_id}'s m.read receipt on {event_id}")


def _upload_keys(keyholder: Client) -> tuple[dict[str, Any], dict[str, Any]]:
    device_keys, otks = make_device_keys(keyholder, n_otks=2)
    counts = keyholder.call("POST", "/keys/upload",
                            {"device_keys": device_keys, "one_time_keys": otks})
    assert counts["one_time_key_counts"].get("signed_curve25519") == 2
    return device_keys, otks


@pytest.mark.parametrize("owner", SIDES)
def test_device_key_query(synapse: FedSynapse, hs: FedHs, owner: str) -> None:
    """A user on the other server queries ``owner``'s user's device keys."""
    keyholder, querier = _actor_and_observer(synapse, hs, owner)
    device_keys, _ = _upload_keys(keyholder)
    answer = querier.call("POST", "/keys/query",
                          {"device_keys": {keyholder.user_id: []}, "timeout": 10000})
    assert answer.get("failures", {}) == {}, answer
    got = answer["device_keys"][keyholder.user_id][keyholder.device_id]
    assert got["keys"] == device_keys["keys"]
    ed_id = f"ed25519:{keyholder.device_id}"
    verify_json(got, keyholder.user_id, ed_id, device_keys["keys"][ed_id])


@pytest.mark.parametrize("owner", SIDES)
def test_one_time_key_claim(synapse: FedSynapse, hs: FedHs, owner: str) -> None:
    """A user on the other server claims one of ``owner``'s user's one-time keys."""
    keyholder, claimer = _actor_and_observer(synapse, hs, owner)
    device_keys, otks = _upload_keys(keyholder)
    claim = claimer.call("POST", "/keys/claim", {"one_time_keys": {
        keyholder.user_id: {keyholder.device_id: "signed_curve25519"}}, "timeout": 10000})
    assert claim.get("failures", {}) == {}, claim
    [(key_id, key)] = claim["one_time_keys"][keyholder.user_id][keyholder.device_id].items()
    assert otks[key_id]["key"] == key["key"]
    ed_id = f"ed25519:{keyholder.device_id}"
    verify_json(key, keyholder.user_id, ed_id, device_keys["keys"][ed_id])
    counts = keyholder.call("POST", "/keys/upload", {})
    assert counts["one_time_key_counts"].get("signed_curve25519") == 1


@pytest.mark.parametrize("sender", SIDES)
def test_to_device_message(synapse: FedSynapse, hs: FedHs, sender: str) -> None:
    actor, receiver = _actor_and_observer(synapse, hs, sender)
    receiver.sync()
    payload = {"note": f"hello from {actor.server_name}"}
    actor.send_to_device("org.example.interop",
                         {receiver.user_id: {receiver.device_id: payload}})

    def delivered(response: dict[str, Any]) -> bool:
        return any(e["type"] == "org.example.interop" and e["sender"] == actor.user_id
                   and e["content"] == payload
                   for e in response.get("to_device", {}).get("events", []))

    receiver.sync_until(delivered, f"the to-device message from {actor.user_id}")
