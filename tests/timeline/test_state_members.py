"""/state, /members (at, membership, not_membership), /joined_members, /joined_rooms."""

from __future__ import annotations

from tests.timeline.helpers import Room, room_id, server_with_users

from hs.storage.database import DatabaseConfig


async def test_state_and_members(database_config: DatabaseConfig) -> None:
    async with server_with_users(database_config, "alice", "bob", "carol", "dave"
                                 ) as (client, users):
        alice, bob, carol, dave = users
        room = Room(client, room_id("st"))
        await room.create(alice, bob)
        name1 = room.rb.event("m.room.name", alice.user_id, {"name": "Before"}, state_key="")
        await room.add(name1, room.member(carol, "invite", alice))
        _, mid = await client.request("GET", room.path("/messages?dir=b&limit=1"),
                                      token=alice.token)
        at_token = mid["start"]  # the point after the invite (like a sync token)
        await room.add(room.member(bob, "leave"),
                       room.rb.event("m.room.name", alice.user_id, {"name": "After"},
                                     state_key=""),
                       room.member(dave, "join"),
                       room.member(bob, "join", displayname="Bobby"))
        _, after_rejoin = await client.request("GET", room.path("/messages?dir=b&limit=1"),
                                               token=alice.token)
        await room.add(room.member(dave, "leave"))

        # Current state, client format.
        status, state = await client.request("GET", room.path("/state"), token=alice.token)
        assert status == 200, state
        by_key = {(e["type"], e["state_key"]): e for e in state}
        assert by_key[("m.room.name", "")]["content"] == {"name": "After"}
        assert by_key[("m.room.name", "")]["unsigned"]["prev_content"] == {"name": "Before"}
        assert by_key[("m.room.member", carol.user_id)]["content"]["membership"] == "invite"
        # A user who left sees the state at their leave.
        status, dave_state = await client.request("GET", room.path("/state"), token=dave.token)
        assert status == 200
        dave_keys = {(e["type"], e["state_key"]): e for e in dave_state}
        assert dave_keys[("m.room.member", dave.user_id)]["content"]["membership"] == "leave"
        assert dave_keys[("m.room.name", "")]["content"] == {"name": "After"}

        # /members with filters.
        async def members(query: str = "", token: str = alice.token) -> dict[str, str]:
            status, body = await client.request("GET", room.path(f"/members{query}"),
                                                token=token)
            assert status == 200, body
            return {e["state_key"]: e["content"]["membership"] for e in body["chunk"]}

        assert await members() == {alice.user_id: "join", bob.user_id: "join",
                                   carol.user_id: "invite", dave.user_id: "leave"}
        assert set(await members("?membership=join")) == {alice.user_id, bob.user_id}
        assert set(await members("?not_membership=join")) == {carol.user_id, dave.user_id}
        assert await members("?membership=invite&not_membership=join") == {
            carol.user_id: "invite"}
        # `at` a token: the membership then.
        then = await members(f"?at={at_token}")
        assert then == {alice.user_id: "join", bob.user_id: "join", carol.user_id: "invite"}
        # The left user sees members as of their leave.
        assert (await members(token=dave.token))[dave.user_id] == "leave"
        assert after_rejoin["chunk"]

        # joined_members: display names from the member events.
        status, joined = await client.request("GET", room.path("/joined_members"),
                                              token=alice.token)
        assert status == 200
        assert set(joined["joined"]) == {alice.user_id, bob.user_id}
        assert joined["joined"][bob.user_id]["display_name"] == "Bobby"
        # joined_rooms.
        status, rooms = await client.request("GET", "/_matrix/client/v3/joined_rooms",
                                             token=bob.token)
        assert (status, rooms) == (200, {"joined_rooms": [room.room_id]})
        _, rooms = await client.request("GET", "/_matrix/client/v3/joined_rooms",
                                        token=dave.token)
        assert rooms == {"joined_rooms": []}

        # Unhappy paths: invitee, left user on joined_members, stranger, bad params.
        for path, token, code in [
            ("/state", carol.token, 403), ("/members", carol.token, 403),
            ("/joined_members", dave.token, 403), ("/members?membership=bogus", alice.token,
                                                   400),
            ("/members?at=garbage", alice.token, 400),
        ]:
            status, body = await client.request("GET", room.path(path), token=token)
            assert status == code, (path, body)
        stranger_room = Room(client, room_id("unknown"))
        status, body = await client.request("GET", stranger_room.path("/state"),
                                            token=alice.token)
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
        status, _ = await client.request("GET", "/_matrix/client/v3/joined_rooms")
        assert status == 401
