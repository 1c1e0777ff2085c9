"""Membership endpoints: join (ID/alias/restricted), invite, leave, kick, ban, unban,
knock, forget - with the unhappy paths."""

from __future__ import annotations

from tests.rooms.helpers import V3, membership, new_user, q, state_event
from tests.server.harness import running_server

from hs.handlers.auth import Requester


async def test_join_invite_leave_kick(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        carol = await new_user(hs, "carol")
        await hs.services.profiles.set_field(bob.user_id, bob.user_id, "displayname", "Bobby")
        room_id = await alice.create_room(room_version="10")
        # Invite-only: bob cannot join uninvited; carol (not a member) cannot invite.
        status, err = await bob.join(room_id)
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        status, err = await carol.member_op("invite", room_id, {"user_id": bob.user_id})
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        status, err = await alice.member_op("invite", room_id, {})
        assert (status, err["errcode"]) == (400, "M_MISSING_PARAM")
        status, err = await alice.member_op("invite", room_id, {"user_id": "bob"})
        assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
        status, _ = await alice.member_op("invite", room_id,
                                          {"user_id": bob.user_id, "reason": "come"})
        assert status == 200
        invite = await state_event(hs, room_id, "m.room.member", bob.user_id)
        assert invite is not None and invite.content["reason"] == "come"
        assert invite.content["displayname"] == "Bobby"
        status, resp = await bob.member_op("join", room_id)
        assert (status, resp) == (200, {"room_id": room_id})
        member = await state_event(hs, room_id, "m.room.member", bob.user_id)
        assert member is not None and member.content["displayname"] == "Bobby"
        # Joining again changes nothing: same event.
        await bob.member_op("join", room_id)
        again = await state_event(hs, room_id, "m.room.member", bob.user_id)
        assert again is not None and again.event_id == member.event_id
        # bob (level 0) cannot kick alice; alice kicks bob with a reason.
        status, err = await bob.member_op("kick", room_id, {"user_id": alice.user_id})
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        status, err = await alice.member_op("kick", room_id, {"user_id": carol.user_id})
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")  # not in the room
        status, _ = await alice.member_op("kick", room_id,
                                          {"user_id": bob.user_id, "reason": "bye"})
        assert status == 200
        kicked = await state_event(hs, room_id, "m.room.member", bob.user_id)
        assert kicked is not None and kicked.membership == "leave"
        assert kicked.sender == alice.user_id and kicked.content["reason"] == "bye"
        # Leaving twice: not in the room any more.
        status, err = await bob.member_op("leave", room_id)
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        status, err = await bob.member_op("leave", "!unknown:test.local")
        assert (status, err["errcode"]) == (404, "M_NOT_FOUND")
        # Forget: only after leaving.
        status, err = await alice.member_op("forget", room_id)
        assert (status, err["errcode"]) == (400, "M_UNKNOWN")
        # Before forgetting, bob can still read up to his leave; afterwards he cannot.
        status, _ = await bob.call("GET", f"/rooms/{room_id}/messages?dir=b")
        assert status == 200
        status, _ = await bob.member_op("forget", room_id)
        assert status == 200
        assert await hs.services.events.rooms.get_forgotten_rooms(bob.user_id) == {room_id}
        status, err = await bob.call("GET",
                                     f"/rooms/{room_id}/messages?dir=b")
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        # A later membership (a new invite) supersedes the forget.
        status, _ = await alice.member_op("invite", room_id, {"user_id": bob.user_id})
        assert status == 200
        assert await hs.services.events.rooms.get_forgotten_rooms(bob.user_id) == set()
        status, err = await bob.member_op("forget", "!unknown:test.local")
        assert (status, err["errcode"]) == (404, "M_NOT_FOUND")
        rooms = await hs.services.events.get_rooms_for_user(alice.user_id)
        assert [r.room_id for r in rooms] == [room_id]


async def test_ban_unban_and_join_by_alias(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room_id = await alice.create_room(preset="public_chat", room_alias_name="pub")
        status, resp = await bob.join("#pub:test.local")
        assert (status, resp) == (200, {"room_id": room_id})
        status, err = await bob.member_op("ban", room_id, {"user_id": alice.user_id})
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        status, err = await alice.member_op("unban", room_id, {"user_id": bob.user_id})
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")  # not banned
        status, _ = await alice.member_op("ban", room_id, {"user_id": bob.user_id,
                                                           "reason": "spam"})
        assert status == 200
        assert await membership(hs, room_id, bob.user_id) == "ban"
        # Banned: joining (by ID or alias) and sending are refused.
        for target in (room_id, "#pub:test.local"):
            status, err = await bob.join(target)
            assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        status, err = await bob.send(room_id, "t")
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        status, _ = await alice.member_op("unban", room_id, {"user_id": bob.user_id})
        assert status == 200
        assert await membership(hs, room_id, bob.user_id) == "leave"
        assert (await bob.join(room_id))[0] == 200
        # Unknown local alias, remote alias, remote room, malformed target.
        for target, code in (("#nope:test.local", 404), ("#x:elsewhere.example", 404),
                             ("!abc:elsewhere.example", 404), ("not-a-room", 400)):
            status, err = await bob.join(target)
            assert status == code, (target, err)
        status, err = await hs.request("POST", f"{V3}/join/{q(room_id)}", {})
        assert (status, err["errcode"]) == (401, "M_MISSING_TOKEN")


async def test_knock_flow(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room_id = await alice.create_room(room_version="11", room_alias_name="k")
        # Invite-only room: knocking is not allowed.
        status, err = await bob.call("POST", f"/knock/{q(room_id)}", {})
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        status, _ = await alice.put_state(room_id, "m.room.join_rules", {"join_rule": "knock"})
        assert status == 200
        status, resp = await bob.call("POST", f"/knock/{q('#k:test.local')}",
                                      {"reason": "let me in"})
        assert (status, resp) == (200, {"room_id": room_id})
        knock = await state_event(hs, room_id, "m.room.member", bob.user_id)
        assert knock is not None and knock.membership == "knock"
        assert knock.content["reason"] == "let me in"
        # Knocking does not let bob in; an invite does.
        assert (await bob.send(room_id, "t"))[0] == 403
        assert (await alice.member_op("invite", room_id, {"user_id": bob.user_id}))[0] == 200
        assert (await bob.join(room_id))[0] == 200
        # Room versions before 7 have no knocking.
        old = await alice.create_room(room_version="6", preset="public_chat")
        status, err = await bob.call("POST", f"/knock/{q(old)}", {})
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        status, err = await bob.call("POST", f"/knock/{q('!x:elsewhere.example')}", {})
        assert (status, err["errcode"]) == (404, "M_NOT_FOUND")


async def test_restricted_join(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        carol = await new_user(hs, "carol")
        space = await alice.create_room(preset="public_chat")
        room_id = await alice.create_room(initial_state=[{
            "type": "m.room.join_rules",
            "content": {"join_rule": "restricted",
                        "allow": [{"type": "m.room_membership", "room_id": space}]}}])
        # carol is in no allowed room.
        status, err = await carol.join(room_id)
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        assert (await bob.join(space))[0] == 200
        status, _ = await bob.join(room_id)
        assert status == 200
        member = await state_event(hs, room_id, "m.room.member", bob.user_id)
        assert member is not None and member.membership == "join"
        assert member.content["join_authorised_via_users_server"] == alice.user_id
        # Versions before 8 do not know the rule: nobody joins uninvited.
        old = await alice.create_room(room_version="7", initial_state=[{
            "type": "m.room.join_rules",
            "content": {"join_rule": "restricted",
                        "allow": [{"type": "m.room_membership", "room_id": space}]}}])
        status, err = await bob.join(old)
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")


async def test_guests_and_unknown_invitees(database_config):
    async with running_server(database_config, allow_guest_access=True) as hs:
        alice = await new_user(hs, "alice")
        status, guest = await hs.request("POST", f"{V3}/register?kind=guest", {})
        assert status == 200, guest
        public = await alice.create_room(preset="public_chat")  # guest_access forbidden
        private = await alice.create_room(preset="private_chat",
                                          initial_state=[{"type": "m.room.join_rules",
                                                          "content": {"join_rule": "public"}}])
        token = guest["access_token"]
        status, err = await hs.request("POST", f"{V3}/rooms/{q(public)}/join", {}, token=token)
        assert (status, err["errcode"]) == (403, "M_GUEST_ACCESS_FORBIDDEN")
        status, _ = await hs.request("POST", f"{V3}/rooms/{q(private)}/join", {}, token=token)
        assert status == 200  # private_chat sets guest_access can_join
        status, _ = await hs.request("POST", f"{V3}/rooms/{q(private)}/leave", {}, token=token)
        assert status == 200
        status, err = await alice.member_op("invite", public, {"user_id": "@ghost:test.local"})
        assert (status, err["errcode"]) == (404, "M_NOT_FOUND")
        status, err = await alice.member_op("invite", public,
                                            {"user_id": "@bob:elsewhere.example"})
        assert (status, err["errcode"]) == (502, "M_UNKNOWN")


async def test_profile_change_propagates_to_rooms(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        rooms = [await alice.create_room() for _ in range(2)]
        status, _ = await alice.call("PUT", f"/profile/{q(alice.user_id)}/displayname",
                                     {"displayname": "Alice A."})
        assert status == 200
        me = Requester(alice.user_id, alice.device_id, False, False, "")
        assert sorted(await hs.services.rooms.propagate_profile(me)) == sorted(rooms)
        for room_id in rooms:
            member = await state_event(hs, room_id, "m.room.member", alice.user_id)
            assert member is not None and member.content["displayname"] == "Alice A."
        # Nothing changed since: no new events.
        before = hs.services.rooms.pipeline.transactions
        await hs.services.rooms.propagate_profile(me)
        assert hs.services.rooms.pipeline.transactions == before
        # Membership changes with a transaction ID are idempotent too.
        bob = await new_user(hs, "bob")
        first = await hs.services.rooms.update_membership(
            me, rooms[0], bob.user_id, "invite", txn_id="inv1")
        again = await hs.services.rooms.update_membership(
            me, rooms[0], bob.user_id, "invite", txn_id="inv1")
        assert first == again


async def test_knock_restricted(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        carol = await new_user(hs, "carol")
        space = await alice.create_room(preset="public_chat", room_version="10")
        room_id = await alice.create_room(room_version="10", initial_state=[{
            "type": "m.room.join_rules",
            "content": {"join_rule": "knock_restricted",
                        "allow": [{"type": "m.room_membership", "room_id": space}]}}])
        await bob.join(space)
        status, _ = await bob.join(room_id)
        assert status == 200
        member = await state_event(hs, room_id, "m.room.member", bob.user_id)
        assert member is not None
        assert member.content["join_authorised_via_users_server"] == alice.user_id
        # carol is not in the space: no join, but she may knock.
        status, err = await carol.join(room_id)
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        status, _ = await carol.call("POST", f"/knock/{q(room_id)}", {})
        assert status == 200
        assert await membership(hs, room_id, carol.user_id) == "knock"


async def test_profile_change_reaches_joined_rooms(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        room_id = await alice.create_room(preset="private_chat")
        status, _ = await alice.call("PUT", f"/profile/{alice.user_id}/displayname",
                                     {"displayname": "Alice Liddell"})
        assert status == 200
        member = await state_event(hs, room_id, "m.room.member", alice.user_id)
        assert member is not None and member.membership == "join"
        assert member.content["displayname"] == "Alice Liddell"
