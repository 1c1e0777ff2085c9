"""/messages: pagination both ways, tokens, filters, lazy-loaded members, access, and
history visibility."""

from __future__ import annotations

from typing import Any

import orjson
from tests.timeline.helpers import Room, User, ids, q, room_id, server_with_users

from hs.storage.database import DatabaseConfig


async def _page_all(client: Any, room: Room, user: User, direction: str, limit: int,
                    extra: str = "") -> tuple[list[str], list[dict[str, Any]]]:
    seen: list[str] = []
    bodies = []
    token = None
    for _ in range(50):
        frm = f"&from={q(token)}" if token else ""
        status, body = await client.request(
            "GET", room.path(f"/messages?dir={direction}&limit={limit}{frm}{extra}"),
            token=user.token)
        assert status == 200, body
        bodies.append(body)
        seen += ids(body["chunk"])
        if "end" not in body:
            return seen, bodies
        token = body["end"]
    raise AssertionError("pagination did not terminate")


async def test_paginate_both_ways_and_filters(database_config: DatabaseConfig) -> None:
    async with server_with_users(database_config, "alice", "bob", "carol") as (client, users):
        alice, bob, carol = users
        room = Room(client, room_id("msgs"))
        setup = await room.create(alice, bob)
        msgs = [room.msg(bob if i % 3 == 0 else alice, f"m{i}") for i in range(23)]
        msgs.append(room.rb.event("m.room.message", alice.user_id,
                                  {"msgtype": "m.image", "body": "pic", "url": "mxc://a/b"}))
        await room.add(*msgs)
        everything = [e.event_id for e in setup + msgs]

        back, bodies = await _page_all(client, room, alice, "b", 7)
        assert back == everything[::-1]
        assert bodies[0]["start"] and all("start" in b for b in bodies)
        assert bodies[1]["start"] == bodies[0]["end"]  # start echoes `from`
        fwd, _ = await _page_all(client, room, alice, "f", 6)
        assert fwd == everything

        # A backwards page's end token continues forwards back to where it started.
        _, page = await client.request("GET", room.path("/messages?dir=b&limit=4"),
                                       token=alice.token)
        _, again = await client.request(
            "GET", room.path(f"/messages?dir=f&limit=4&from={q(page['end'])}"),
            token=alice.token)
        assert ids(again["chunk"]) == ids(page["chunk"])[::-1]
        # `to` stops the page.
        _, first3 = await client.request("GET", room.path("/messages?dir=f&limit=3"),
                                         token=alice.token)
        _, upto = await client.request(
            "GET", room.path(f"/messages?dir=f&limit=50&to={q(first3['end'])}"),
            token=alice.token)
        assert ids(upto["chunk"]) == everything[:3]

        # Filters: senders/types in SQL, contains_url and inner globs in Python.
        flt = q(orjson.dumps({"senders": [bob.user_id], "types": ["m.room.message"]}).decode())
        only_bob, _ = await _page_all(client, room, alice, "b", 5, f"&filter={flt}")
        assert only_bob == [m.event_id for m in msgs if m.sender == bob.user_id][::-1]
        flt = q(orjson.dumps({"contains_url": True}).decode())
        _, body = await client.request("GET", room.path(f"/messages?dir=b&filter={flt}"),
                                       token=alice.token)
        assert ids(body["chunk"]) == [msgs[-1].event_id]
        flt = q(orjson.dumps({"types": ["m.*.member"], "not_senders": [alice.user_id]})
                .decode())
        _, body = await client.request(
            "GET", room.path(f"/messages?dir=f&limit=20&filter={flt}"), token=alice.token)
        assert ids(body["chunk"]) == [setup[-1].event_id]  # bob's join

        # Lazy-loaded members: the senders' membership events come in `state`.
        flt = q(orjson.dumps({"lazy_load_members": True}).decode())
        _, body = await client.request(
            "GET", room.path(f"/messages?dir=b&limit=2&filter={flt}"), token=alice.token)
        senders = {e["sender"] for e in body["chunk"]}
        assert {e["state_key"] for e in body["state"]} == senders
        assert all(e["type"] == "m.room.member" for e in body["state"])
        _, body = await client.request("GET", room.path("/messages?dir=b&limit=2"),
                                       token=alice.token)
        assert "state" not in body

        # Ignored users: their messages disappear for the ignoring user only.
        await client.services.account_data.set_global_account_data(
            carol.user_id, "m.ignored_user_list", {"ignored_users": {}})
        await client.services.account_data.set_global_account_data(
            alice.user_id, "m.ignored_user_list", {"ignored_users": {bob.user_id: {}}})
        ignoring, _ = await _page_all(client, room, alice, "b", 10)
        assert ignoring == [e for e in everything[::-1] if e not in only_bob]
        assert setup[-1].event_id in ignoring  # bob's join (state) stays
        by_bob, _ = await _page_all(client, room, bob, "b", 50)
        assert set(only_bob) <= set(by_bob)
        await client.services.account_data.set_global_account_data(
            alice.user_id, "m.ignored_user_list", {"ignored_users": {}})

        # Unhappy paths.
        for path, code in [
            ("/messages?limit=3", "M_MISSING_PARAM"),
            ("/messages?dir=x", "M_INVALID_PARAM"),
            ("/messages?dir=b&from=bogus", "M_INVALID_PARAM"),
            ("/messages?dir=b&from=s99999999999999999999999", "M_INVALID_PARAM"),
            ("/messages?dir=b&limit=abc", "M_INVALID_PARAM"),
            ("/messages?dir=b&filter=%7Bnot-json", "M_INVALID_PARAM"),
            ("/messages?dir=b&filter=" + q('{"types": "m.room.message"}'), "M_BAD_JSON"),
        ]:
            status, body = await client.request("GET", room.path(path), token=alice.token)
            assert (status, body["errcode"]) == (400, code), (path, body)
        status, body = await client.request("GET", room.path("/messages?dir=b"),
                                            token=carol.token)
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
        status, body = await client.request(
            "GET", f"/_matrix/client/v3/rooms/{q(room_id('nope'))}/messages?dir=b",
            token=alice.token)
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
        status, body = await client.request("GET", room.path("/messages?dir=b"),
                                            token="not-a-token")
        assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")


async def test_history_visibility(database_config: DatabaseConfig) -> None:
    async with server_with_users(database_config, "alice", "bob", "carol", "dave",
                                 "erin") as (client, users):
        alice, bob, carol, dave, erin = users

        async def visible(room: Room, user: User) -> list[str]:
            status, body = await client.request(
                "GET", room.path("/messages?dir=f&limit=100"), token=user.token)
            assert status == 200, body
            return [e["content"].get("body") for e in body["chunk"]
                    if e["type"] == "m.room.message"]

        # joined: only from the join on; left users stop at their leave.
        room = Room(client, room_id("joined"))
        await room.create(alice, visibility="joined")
        await room.add(room.msg(alice, "before"), room.member(bob, "invite", alice),
                       room.msg(alice, "invited"), room.member(bob, "join"),
                       room.msg(alice, "joined"), room.member(bob, "leave"),
                       room.msg(alice, "after-leave"))
        assert await visible(room, alice) == ["before", "invited", "joined", "after-leave"]
        assert await visible(room, bob) == ["joined"]
        _, body = await client.request("GET", room.path("/messages?dir=b&limit=100"),
                                       token=bob.token)
        member_events = [e["content"]["membership"] for e in body["chunk"]
                         if e["type"] == "m.room.member" and e["state_key"] == bob.user_id]
        assert member_events == ["leave", "join"]  # own leave is visible (before-or-after)

        # Banned: like leaving - history up to the ban, the room closed after it.
        room = Room(client, room_id("banned"))
        await room.create(alice, dave, visibility="shared")
        await room.add(room.msg(alice, "seen"), room.member(dave, "ban", alice),
                       room.msg(alice, "unseen"))
        assert await visible(room, dave) == ["seen"]
        status, body = await client.request("GET", room.path("/joined_members"),
                                            token=dave.token)
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
        _, state = await client.request("GET", room.path("/state"), token=dave.token)
        mine = [e for e in state if e["state_key"] == dave.user_id]
        assert mine[0]["content"]["membership"] == "ban"

        # invited: from the invite on.
        room = Room(client, room_id("invited"))
        await room.create(alice, visibility="invited")
        await room.add(room.msg(alice, "before"), room.member(bob, "invite", alice),
                       room.msg(alice, "invited"), room.member(bob, "join"),
                       room.msg(alice, "joined"))
        assert await visible(room, bob) == ["invited", "joined"]

        # shared: everything before a later join; nothing after leaving.
        room = Room(client, room_id("shared"))
        await room.create(alice, visibility="shared")
        await room.add(room.msg(alice, "early"), room.member(bob, "join"),
                       room.msg(alice, "while"), room.member(bob, "leave"),
                       room.msg(alice, "gone"))
        assert await visible(room, bob) == ["early", "while"]
        # A user who never joined a shared room is forbidden outright.
        status, _ = await client.request("GET", room.path("/messages?dir=b"),
                                         token=carol.token)
        assert status == 403

        # world_readable: anyone, even non-members; a later switch to joined hides the
        # rest from them, but the switch itself is visible (before-or-after rule).
        room = Room(client, room_id("world"))
        await room.create(alice, visibility="world_readable")
        await room.add(room.msg(alice, "public"), room.visibility(alice, "joined"),
                       room.msg(alice, "private"))
        status, body = await client.request("GET", room.path("/messages?dir=f&limit=50"),
                                            token=dave.token)
        # The current visibility is "joined": a non-member may not read the room at all.
        assert status == 403
        room2 = Room(client, room_id("world2"))
        await room2.create(alice, visibility="joined")
        await room2.add(room2.msg(alice, "private"), room2.visibility(alice, "world_readable"),
                        room2.msg(alice, "public"))
        assert await visible(room2, erin) == ["public"]
        # unsigned.membership: erin never joined ("leave"), alice joined.
        _, body = await client.request("GET", room2.path("/messages?dir=b&limit=1"),
                                       token=erin.token)
        assert body["chunk"][0]["unsigned"]["membership"] == "leave"
        _, body = await client.request("GET", room2.path("/messages?dir=b&limit=1"),
                                       token=alice.token)
        assert body["chunk"][0]["unsigned"]["membership"] == "join"
        _, body = await client.request("GET", room2.path("/messages?dir=f&limit=50"),
                                       token=erin.token)
        hv = [e["content"]["history_visibility"] for e in body["chunk"]
              if e["type"] == "m.room.history_visibility"]
        assert hv == ["world_readable"]
