"""The room writer's remembered tip: senders taking turns find their state known, and what
it remembers still follows every change the room's own events make."""

from __future__ import annotations

from typing import Any

from tests.rooms.helpers import new_user, pair_in_public_room, state_event
from tests.server.harness import running_server


def count_state_reads(hs: Any) -> list[object]:
    """Record each current-state read the send path makes (wraps the store method)."""
    rooms = hs.services.events.rooms
    calls: list[object] = []
    original = rooms.get_current_state_ids

    async def counted(room_id: str, types: Any = None) -> Any:
        calls.append(types)
        return await original(room_id, types)

    rooms.get_current_state_ids = counted
    return calls


async def test_senders_taking_turns_need_no_state_read(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        carol = await new_user(hs, "carol")
        room_id = await alice.create_room(preset="public_chat")
        for user in (bob, carol):
            assert (await user.join(room_id))[0] == 200
        for user in (alice, bob, carol):  # each sender's membership read once at most
            assert (await user.send(room_id, f"warm-{user.user_id}"))[0] == 200
        calls = count_state_reads(hs)
        for turn in range(6):
            for user in (alice, bob, carol):
                assert (await user.send(room_id, f"t{turn}-{user.user_id}"))[0] == 200
        assert calls == []


async def test_inherited_tip_follows_the_rooms_changes(database_config):
    async with running_server(database_config) as hs:
        alice, bob, room_id = await pair_in_public_room(hs)
        assert (await bob.send(room_id, "b0"))[0] == 200
        assert (await alice.send(room_id, "a0"))[0] == 200
        # Alice raises the bar for messages: bob's remembered membership is still good,
        # the new power levels (an event of the room) must be what authorizes him now.
        pdu = await state_event(hs, room_id, "m.room.power_levels")
        assert pdu is not None
        levels = dict(pdu.content)
        levels["events"] = {**levels.get("events", {}), "m.room.message": 50}
        assert (await alice.put_state(room_id, "m.room.power_levels", levels))[0] == 200
        status, err = await bob.send(room_id, "b1")
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        levels["events"]["m.room.message"] = 0
        assert (await alice.put_state(room_id, "m.room.power_levels", levels))[0] == 200
        assert (await bob.send(room_id, "b2"))[0] == 200
        assert (await bob.member_op("leave", room_id))[0] == 200
        assert (await alice.send(room_id, "a1"))[0] == 200
        status, err = await bob.send(room_id, "b3")  # his leave, not the older join
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
