"""POST /rooms/{roomId}/upgrade: replacement room, copied state, tombstone, aliases."""

from __future__ import annotations

import pytest
from tests.rooms.helpers import membership, new_user, q, state_event
from tests.server.harness import running_server


@pytest.mark.parametrize(("old", "new"), [("6", "11"), ("10", "12"), ("12", "10")])
async def test_upgrade(database_config, old, new):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room_id = await alice.create_room(
            room_version=old, preset="public_chat", visibility="public", name="Old",
            topic="t", room_alias_name="main", creation_content={"type": "m.space"})
        await bob.join(room_id)
        status, err = await bob.call("POST", f"/rooms/{q(room_id)}/upgrade",
                                     {"new_version": new})
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        status, resp = await alice.call("POST", f"/rooms/{q(room_id)}/upgrade",
                                        {"new_version": new})
        assert status == 200, resp
        new_id = resp["replacement_room"]
        create = await state_event(hs, new_id, "m.room.create")
        old_create = await state_event(hs, room_id, "m.room.create")
        assert create is not None and old_create is not None
        assert create.content["room_version"] == new
        assert create.content["predecessor"] == {"room_id": room_id,
                                                 "event_id": old_create.event_id}
        assert create.content["type"] == "m.space"
        for etype, key in (("m.room.name", "name"), ("m.room.topic", "topic")):
            ev = await state_event(hs, new_id, etype)
            assert ev is not None and key in ev.content
        rules = await state_event(hs, new_id, "m.room.join_rules")
        assert rules is not None and rules.content["join_rule"] == "public"
        pl = await state_event(hs, new_id, "m.room.power_levels")
        assert pl is not None
        if new == "12":
            assert alice.user_id not in pl.content.get("users", {})
        else:
            assert pl.content["users"][alice.user_id] == 100
        assert await membership(hs, new_id, alice.user_id) == "join"
        assert await membership(hs, new_id, bob.user_id) is None
        tomb = await state_event(hs, room_id, "m.room.tombstone")
        assert tomb is not None and tomb.content["replacement_room"] == new_id
        old_pl = await state_event(hs, room_id, "m.room.power_levels")
        assert old_pl is not None and old_pl.content["events_default"] >= 50
        assert old_pl.content["invite"] >= 50
        assert (await bob.send(room_id, "late"))[0] == 403
        assert await hs.services.events.rooms.get_alias("#main:test.local") == (
            new_id, alice.user_id)
        canon = await state_event(hs, new_id, "m.room.canonical_alias")
        assert canon is not None and canon.content["alias"] == "#main:test.local"
        old_room = await hs.services.events.rooms.get_room(room_id)
        new_room = await hs.services.events.rooms.get_room(new_id)
        assert old_room is not None and not old_room.is_public
        assert new_room is not None and new_room.is_public
        # The new room works and bob can follow.
        assert (await bob.join(new_id))[0] == 200
        assert (await alice.send(new_id, "m1"))[0] == 200


async def test_upgrade_errors(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        carol = await new_user(hs, "carol")
        room_id = await alice.create_room()
        path = f"/rooms/{q(room_id)}/upgrade"
        status, err = await alice.call("POST", path, {"new_version": "99"})
        assert (status, err["errcode"]) == (400, "M_UNSUPPORTED_ROOM_VERSION")
        status, err = await alice.call("POST", path, {})
        assert (status, err["errcode"]) == (400, "M_MISSING_PARAM")
        status, err = await alice.call("POST", path, {"new_version": 12})
        assert (status, err["errcode"]) == (400, "M_BAD_JSON")
        status, err = await carol.call("POST", path, {"new_version": "12"})
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        status, err = await alice.call("POST", "/rooms/!nope:test.local/upgrade",
                                       {"new_version": "12"})
        assert (status, err["errcode"]) == (404, "M_NOT_FOUND")
        status, resp = await alice.call("POST", path, {
            "new_version": "12", "additional_creators": [carol.user_id]})
        assert status == 200
        create = await state_event(hs, resp["replacement_room"], "m.room.create")
        assert create is not None and create.content["additional_creators"] == [carol.user_id]
