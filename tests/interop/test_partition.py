"""Partition and heal: hs is stopped while Synapse changes the room, then both change it again
concurrently; after the restart both servers must converge on the same current state."""

from __future__ import annotations

from tests.interop.client import register, wait_equal, wait_for
from tests.interop.conftest import shared_room
from tests.interop.synapse_fed import FedHs, FedSynapse


def test_partition_and_heal(synapse: FedSynapse, hs: FedHs, room_version: str) -> None:
    syn_user, hs_user = register(synapse, "psyn"), register(hs, "phs")
    room_id = shared_room(syn_user, hs_user, room_version)
    levels = syn_user.state_content(room_id, "m.room.power_levels")
    levels.setdefault("users", {})[hs_user.user_id] = 50
    syn_user.put_state(room_id, "m.room.power_levels", levels)
    wait_for(lambda: hs_user.state_content(room_id, "m.room.power_levels")
             .get("users", {}).get(hs_user.user_id) == 50, "hs to see its user promoted")

    hs.stop_process()  # the partition: Synapse's transactions to hs now fail
    syn_user.put_state(room_id, "m.room.topic", {"topic": "changed during the partition"})
    for i in range(3):
        syn_user.send(room_id, f"during-partition-{i}")
    syn_user.put_state(room_id, "m.room.name", {"name": "renamed during the partition"})

    hs.start()  # heal; hs changes state before it has heard of Synapse's changes: a fork
    hs_user.put_state(room_id, "org.example.interop", {"side": "hs"}, state_key="after-heal")
    syn_user.put_state(room_id, "org.example.interop", {"side": "synapse"}, state_key="syn")

    wait_for(lambda: hs_user.state_content(room_id, "m.room.topic").get("topic")
             == "changed during the partition", "hs to learn the topic set while it was down",
             timeout=20, interval=1)
    wait_for(lambda: syn_user.state_content(room_id, "org.example.interop", "after-heal")
             .get("side") == "hs", "Synapse to accept hs's post-heal state event",
             timeout=20, interval=1)
    wait_equal(lambda: hs_user.state_map(room_id), lambda: syn_user.state_map(room_id),
               "both servers to report the same /state (hs vs Synapse)", timeout=20)
    bodies = hs_user.message_bodies(room_id)
    assert [b for b in bodies if b.startswith("during-partition")] == [
        f"during-partition-{i}" for i in range(3)]
