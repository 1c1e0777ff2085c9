"""POST /createRoom: room versions, presets, initial state, aliases, invites, errors."""

from __future__ import annotations

import asyncio

import pytest
from tests.rooms.helpers import membership, new_user, state_event
from tests.server.harness import running_server

from hs.core.room_versions import KNOWN_ROOM_VERSIONS
from hs.handlers.rooms import creation


@pytest.mark.parametrize("version", ["1", "6", "10", "11", "12"])
async def test_create_per_room_version(database_config, version):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        await hs.services.profiles.set_field(alice.user_id, alice.user_id, "displayname", "Al")
        before = hs.services.rooms.pipeline.transactions
        room_id = await alice.create_room(room_version=version, name="Room", topic="T")
        # All initial events in ONE persist_events batch.
        assert hs.services.rooms.pipeline.transactions == before + 1
        rv = KNOWN_ROOM_VERSIONS[version]
        create = await state_event(hs, room_id, "m.room.create")
        assert create is not None and create.content["room_version"] == version
        if rv.room_id_from_create_event:
            assert room_id == "!" + create.event_id[1:] and ":" not in room_id
            assert "creator" not in create.content
        else:
            assert room_id.endswith(":test.local")
            assert create.content.get("creator") == (
                None if rv.implicit_room_creator else alice.user_id)
        if rv.event_id_has_domain:
            assert create.event_id.endswith(":test.local")
            assert isinstance(create.data["prev_events"], list)
        pl = await state_event(hs, room_id, "m.room.power_levels")
        assert pl is not None
        if rv.privileged_creators:
            assert alice.user_id not in pl.content["users"]
            assert pl.content["events"]["m.room.tombstone"] > pl.content["state_default"]
        else:
            assert pl.content["users"] == {alice.user_id: 100}
        member = await state_event(hs, room_id, "m.room.member", alice.user_id)
        assert member is not None and member.content["displayname"] == "Al"
        rules = await state_event(hs, room_id, "m.room.join_rules")
        assert rules is not None and rules.content == {"join_rule": "invite"}
        name = await state_event(hs, room_id, "m.room.name")
        assert name is not None and name.content == {"name": "Room"}
        topic = await state_event(hs, room_id, "m.room.topic")
        assert topic is not None and topic.content["topic"] == "T"
        # The DAG is a chain: one forward extremity, depths 1..n.
        ext = await hs.services.events.get_forward_extremities(room_id)
        assert len(ext) == 1
        status, resp = await alice.send(room_id, "t1")
        assert status == 200, resp


async def test_presets_override_and_initial_state(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room_id = await alice.create_room(
            visibility="public", room_version="10",
            initial_state=[{"type": "m.room.guest_access", "content": {"guest_access": "can_join"}},
                           {"type": "org.example.custom", "state_key": "k", "content": {"a": 1}}],
            power_level_content_override={"events_default": 10, "users": {
                alice.user_id: 100, bob.user_id: 60}},
            invite=[bob.user_id], is_direct=True)
        rules = await state_event(hs, room_id, "m.room.join_rules")
        assert rules is not None and rules.content["join_rule"] == "public"
        hv = await state_event(hs, room_id, "m.room.history_visibility")
        assert hv is not None and hv.content["history_visibility"] == "shared"
        guest = await state_event(hs, room_id, "m.room.guest_access")
        assert guest is not None and guest.content["guest_access"] == "can_join"
        custom = await state_event(hs, room_id, "org.example.custom", "k")
        assert custom is not None and custom.content == {"a": 1}
        pl = await state_event(hs, room_id, "m.room.power_levels")
        assert pl is not None and pl.content["events_default"] == 10
        assert pl.content["users"][bob.user_id] == 60
        invite = await state_event(hs, room_id, "m.room.member", bob.user_id)
        assert invite is not None and invite.content["membership"] == "invite"
        assert invite.content["is_direct"] is True
        room = await hs.services.events.rooms.get_room(room_id)
        assert room is not None and room.is_public
        status, _ = await bob.join(room_id)
        assert status == 200
        assert await membership(hs, room_id, bob.user_id) == "join"


async def test_trusted_private_chat_v12_additional_creators(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room_id = await alice.create_room(preset="trusted_private_chat", invite=[bob.user_id])
        create = await state_event(hs, room_id, "m.room.create")
        assert create is not None and create.content["additional_creators"] == [bob.user_id]
        status, err = await alice.call("POST", "/createRoom", {
            "power_level_content_override": {"users": {alice.user_id: 100}}})
        assert (status, err["errcode"]) == (400, "M_BAD_JSON")
        # v11 trusted_private_chat: invitees get the creator's level instead.
        room_id = await alice.create_room(preset="trusted_private_chat", invite=[bob.user_id],
                                          room_version="11")
        pl = await state_event(hs, room_id, "m.room.power_levels")
        assert pl is not None and pl.content["users"][bob.user_id] == 100


async def test_alias_and_errors(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        status, resp = await alice.call("POST", "/createRoom", {"room_alias_name": "hq"})
        assert status == 200 and resp["room_alias"] == "#hq:test.local"
        canon = await state_event(hs, resp["room_id"], "m.room.canonical_alias")
        assert canon is not None and canon.content == {"alias": "#hq:test.local"}
        assert await hs.services.events.rooms.get_alias("#hq:test.local") == (
            resp["room_id"], alice.user_id)
        cases = [
            ({"room_alias_name": "hq"}, 400, "M_ROOM_IN_USE"),
            ({"room_alias_name": "a:b"}, 400, "M_INVALID_PARAM"),
            ({"room_version": "99"}, 400, "M_UNSUPPORTED_ROOM_VERSION"),
            ({"room_version": 11}, 400, "M_UNSUPPORTED_ROOM_VERSION"),
            ({"preset": "nope"}, 400, "M_INVALID_PARAM"),
            ({"visibility": "secret"}, 400, "M_INVALID_PARAM"),
            ({"invite": ["not-a-user"]}, 400, "M_INVALID_PARAM"),
            ({"name": 5}, 400, "M_BAD_JSON"),
            ({"creation_content": []}, 400, "M_BAD_JSON"),
            ({"initial_state": [{"type": "x", "content": {"f": 1.5}}]}, 400, "M_BAD_JSON"),
            ({"power_level_content_override": {"ban": "lots"}}, 400, "M_BAD_JSON"),
            ({"invite": ["@bob:elsewhere.example"]}, 502, "M_UNKNOWN"),
            # The creator may not lower themselves below what the name needs.
            ({"room_version": "10", "name": "n", "power_level_content_override": {
                "users": {alice.user_id: 0}}}, 400, "M_INVALID_ROOM_STATE"),
        ]
        for body, code, errcode in cases:
            status, err = await alice.call("POST", "/createRoom", body)
            assert (status, err.get("errcode")) == (code, errcode), (body, err)
        status, err = await hs.request("POST", "/_matrix/client/v3/createRoom", {})
        assert (status, err["errcode"]) == (401, "M_MISSING_TOKEN")
        # A failed creation leaves no alias behind.
        assert await hs.services.events.rooms.get_alias("#a:b:test.local") is None


async def test_same_settings_at_the_same_moment_make_distinct_v12_rooms(database_config,
                                                                       monkeypatch):
    """v12 room IDs are the create event's hash: one user creating several rooms with the
    same settings in the same millisecond (a frozen clock here) still gets distinct rooms,
    each with only its own invitee."""
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        invitees = [await new_user(hs, f"guest{i}") for i in range(4)]
        monkeypatch.setattr(hs.services.rooms, "clock", lambda: 1_800_000_000_000)
        rooms = await asyncio.gather(*(
            alice.create_room(room_version="12", preset="private_chat",
                              invite=[guest.user_id]) for guest in invitees))
        assert len(set(rooms)) == len(rooms)
        for room_id, guest in zip(rooms, invitees, strict=True):
            for other in invitees:
                expected = "invite" if other is guest else None
                assert await membership(hs, room_id, other.user_id) == expected


async def test_a_taken_room_id_is_not_reused(database_config, monkeypatch):
    """If the create event's ID is taken after all (another process, same millisecond),
    nothing is written into that room and the room is built again under a new ID."""
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        monkeypatch.setattr(hs.services.rooms, "clock", lambda: 1_800_000_000_000)
        monkeypatch.setattr(creation._CreateTimes, "last", 0)
        first = await alice.create_room(room_version="12", name="Same")
        # Forget the per-process uniqueness: the next create event is the first one again.
        monkeypatch.setattr(creation._CreateTimes, "last", 0)
        second = await alice.create_room(room_version="12", name="Same", invite=[bob.user_id])
        assert second != first
        assert creation._CreateTimes.last == 1_800_000_000_001  # built twice
        assert await membership(hs, first, bob.user_id) is None
        assert await membership(hs, second, bob.user_id) == "invite"
        assert len(await hs.services.events.get_forward_extremities(first)) == 1
