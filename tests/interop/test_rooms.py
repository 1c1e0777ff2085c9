"""Rooms shared between hs and a real Synapse: joins, messages, state, backfill, leave/ban.

``host`` is the server whose user creates the room; a user of the other server joins it over
federation. Every test runs for room versions 10 and 12.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.interop.client import Client, MatrixError, register, wait_equal, wait_for
from tests.interop.conftest import shared_room
from tests.interop.synapse_fed import FedHs, FedSynapse

SIDES = ("hs", "synapse")


def _pair(synapse: FedSynapse, hs: FedHs, host: str) -> tuple[Client, Client]:
    """(host user, guest user on the other server)."""
    servers = {"hs": hs, "synapse": synapse}
    guest_side = "synapse" if host == "hs" else "hs"
    return register(servers[host], f"h{host[0]}"), register(servers[guest_side], f"g{host[0]}")


@pytest.mark.parametrize("host", SIDES)
def test_remote_user_joins_room(synapse: FedSynapse, hs: FedHs, host: str,
                                room_version: str) -> None:
    """host=hs: a Synapse user joins an hs room; host=synapse: an hs user joins a Synapse room."""
    owner, guest = _pair(synapse, hs, host)
    room_id = owner.create_room(room_version)
    assert guest.join(room_id, via=[owner.server_name]) == room_id
    wait_for(lambda: owner.joined_members(room_id) == {owner.user_id, guest.user_id},
             f"{owner.server_name} to list both members")
    assert guest.joined_members(room_id) == {owner.user_id, guest.user_id}
    create = guest.state_content(room_id, "m.room.create")
    assert create.get("room_version") == room_version
    wait_equal(lambda: guest.state_map(room_id), lambda: owner.state_map(room_id),
               "both servers to agree on the room state")


@pytest.mark.parametrize("host", SIDES)
def test_messages_both_ways_in_order(synapse: FedSynapse, hs: FedHs, host: str,
                                     room_version: str) -> None:
    owner, guest = _pair(synapse, hs, host)
    room_id = shared_room(owner, guest, room_version)
    expected: list[str] = []
    for sender, receiver in ((guest, owner), (owner, guest)):
        batch = [f"{sender.server_name}-{i}" for i in range(10)]
        for body in batch:
            sender.send(room_id, body)
        expected += batch
        wait_equal(lambda r=receiver: r.message_bodies(room_id),  # type: ignore[misc]
                   lambda want=list(expected): want,  # type: ignore[misc]
                   f"{receiver.server_name} to show {len(expected)} messages in order")
    assert owner.message_bodies(room_id) == guest.message_bodies(room_id) == expected


@pytest.mark.parametrize("host", SIDES)
def test_state_changes_and_promoted_remote_user_can_kick(
        synapse: FedSynapse, hs: FedHs, host: str, room_version: str) -> None:
    owner, guest = _pair(synapse, hs, host)
    servers = {"hs": hs, "synapse": synapse}
    room_id = shared_room(owner, guest, room_version)
    victim = register(servers[host], "victim")
    victim.join(room_id)
    wait_for(lambda: guest.membership(room_id, victim.user_id) == "join",
             f"{guest.server_name} to see the local victim join")

    owner.put_state(room_id, "m.room.topic", {"topic": "set by the host"})
    wait_for(lambda: guest.state_content(room_id, "m.room.topic").get("topic")
             == "set by the host", f"{guest.server_name} to see the new topic")

    levels = owner.state_content(room_id, "m.room.power_levels")
    levels.setdefault("users", {})[guest.user_id] = 100
    owner.put_state(room_id, "m.room.power_levels", levels)
    wait_for(lambda: guest.state_content(room_id, "m.room.power_levels")
             .get("users", {}).get(guest.user_id) == 100,
             f"{guest.server_name} to see {guest.user_id} promoted")

    guest.kick(room_id, victim.user_id)
    for viewer in (guest, owner):
        wait_for(lambda v=viewer: v.membership(room_id, victim.user_id) == "leave",  # type: ignore[misc]
                 f"{viewer.server_name} to see the kick")
    kick = owner.state_content(room_id, "m.room.member", victim.user_id)
    assert kick["membership"] == "leave"
    guest.put_state(room_id, "m.room.topic", {"topic": "set by the promoted guest"})
    wait_for(lambda: owner.state_content(room_id, "m.room.topic").get("topic")
             == "set by the promoted guest", f"{owner.server_name} to accept the guest's topic")
    wait_equal(lambda: owner.state_map(room_id), lambda: guest.state_map(room_id),
               "both servers to agree on the room state")


@pytest.mark.parametrize("host", SIDES)
def test_backfill_100_messages_for_late_joiner(synapse: FedSynapse, hs: FedHs, host: str,
                                               room_version: str) -> None:
    owner, guest = _pair(synapse, hs, host)
    room_id = owner.create_room(room_version, initial_state=[{
        "type": "m.room.history_visibility", "state_key": "",
        "content": {"history_visibility": "shared"}}])
    expected = [f"early-{i}" for i in range(100)]
    for body in expected:
        owner.send(room_id, body)
    assert guest.join(room_id, via=[owner.server_name]) == room_id
    wait_equal(lambda: guest.message_bodies(room_id), lambda: expected,
               f"{guest.server_name} to backfill the 100 earlier messages in order",
               timeout=20, interval=1)


@pytest.mark.parametrize("host", SIDES)
def test_remote_user_leaves(synapse: FedSynapse, hs: FedHs, host: str,
                            room_version: str) -> None:
    owner, guest = _pair(synapse, hs, host)
    room_id = shared_room(owner, guest, room_version)
    guest.leave(room_id)
    wait_for(lambda: owner.membership(room_id, guest.user_id) == "leave",
             f"{owner.server_name} to see {guest.user_id} leave")
    wait_for(lambda: owner.joined_members(room_id) == {owner.user_id},
             f"{owner.server_name} to list only its own user")
    assert guest.join(room_id, via=[owner.server_name]) == room_id  # rejoin works
    wait_for(lambda: owner.membership(room_id, guest.user_id) == "join",
             f"{owner.server_name} to see the rejoin")


@pytest.mark.parametrize("host", SIDES)
def test_remote_user_banned(synapse: FedSynapse, hs: FedHs, host: str,
                            room_version: str) -> None:
    owner, guest = _pair(synapse, hs, host)
    room_id = shared_room(owner, guest, room_version)
    guest.sync()  # establish a since token
    owner.ban(room_id, guest.user_id)

    def banned_in_sync(response: dict[str, Any]) -> bool:
        left = response.get("rooms", {}).get("leave", {}).get(room_id)
        if not left:
            return False
        return any(e["type"] == "m.room.member" and e.get("state_key") == guest.user_id
                   and e["content"].get("membership") == "ban"
                   for e in left.get("timeline", {}).get("events", []))

    guest.sync_until(banned_in_sync, f"the ban of {guest.user_id} in rooms.leave")
    assert owner.membership(room_id, guest.user_id) == "ban"
    with pytest.raises(MatrixError) as excinfo:
        guest.join(room_id, via=[owner.server_name])
    assert excinfo.value.status == 403, excinfo.value
