"""/relations, /threads and /timestamp_to_event (v1)."""

from __future__ import annotations

from typing import Any

from tests.timeline.helpers import V1, Room, User, ids, q, room_id, server_with_users

from hs.storage.database import DatabaseConfig


async def test_relations(database_config: DatabaseConfig) -> None:
    async with server_with_users(database_config, "alice", "bob", "carol") as (client, users):
        alice, bob, carol = users
        room = Room(client, room_id("rel"))
        await room.create(alice, bob)
        root = (await room.add(room.msg(alice, "root")))[0]
        replies = [room.relation(bob if i % 2 else alice, root.event_id, "m.thread", f"t{i}")
                   for i in range(7)]
        reactions = [room.rb.event("m.reaction", bob.user_id, {"m.relates_to": {
            "rel_type": "m.annotation", "event_id": root.event_id, "key": k}})
            for k in ("👍", "🎉")]
        await room.add(*replies, *reactions)
        base = f"/relations/{q(root.event_id)}"

        async def get(suffix: str, user: User = alice) -> tuple[int, Any]:
            return await client.request("GET", room.path(base + suffix, V1), token=user.token)

        # Newest first, paginated to the end.
        seen: list[str] = []
        token = None
        for _ in range(10):
            status, body = await get("/m.thread?limit=3" + (f"&from={q(token)}" if token
                                                            else ""))
            assert status == 200, body
            seen += ids(body["chunk"])
            if token:
                assert body["prev_batch"] == token
            if "next_batch" not in body:
                break
            token = body["next_batch"]
        assert seen == [r.event_id for r in replies][::-1]
        # Forwards, all relation types, and type filtering.
        _, body = await get("?dir=f&limit=50")
        assert ids(body["chunk"]) == [e.event_id for e in replies + reactions]
        _, body = await get("/m.annotation/m.reaction")
        assert ids(body["chunk"]) == [e.event_id for e in reactions][::-1]
        _, body = await get("/m.annotation/m.room.message")
        assert body["chunk"] == []
        _, body = await get("?recurse=true&limit=2")
        assert body["recursion_depth"] == 1 and len(body["chunk"]) == 2
        _, body = await get("?limit=2")
        assert "recursion_depth" not in body
        # `to` stops the page.
        _, first = await get("?dir=f&limit=2")
        _, body = await get(f"?dir=f&limit=50&to={q(first['next_batch'])}")
        assert ids(body["chunk"]) == ids(first["chunk"])

        # Unhappy paths.
        assert (await get("?from=junk"))[0] == 400
        assert (await get("?dir=sideways"))[0] == 400
        assert (await get("", carol))[0] == 403
        status, body = await client.request(
            "GET", room.path("/relations/%24missing", V1), token=alice.token)
        assert (status, body["errcode"]) == (404, "M_NOT_FOUND")


async def test_threads(database_config: DatabaseConfig) -> None:
    async with server_with_users(database_config, "alice", "bob", "carol") as (client, users):
        alice, bob, carol = users
        room = Room(client, room_id("thr"))
        await room.create(alice, bob)
        roots = await room.add(*[room.msg(alice if i < 3 else bob, f"root{i}")
                                 for i in range(5)])
        # Replies: thread i gets its latest reply in order 2, 0, 4, 1, 3 (newest last).
        order = [2, 0, 4, 1, 3]
        await room.add(*[room.relation(bob, roots[i].event_id, "m.thread", f"r{i}")
                         for i in order])
        await room.add(room.relation(alice, roots[4].event_id, "m.thread", "alice in 4"))
        # Now thread 4 is the newest.
        expected = [roots[i].event_id for i in [4, 3, 1, 0, 2]]

        seen: list[str] = []
        token = None
        for _ in range(10):
            status, body = await client.request(
                "GET", room.path("/threads?limit=2" + (f"&from={q(token)}" if token else ""),
                                 V1), token=alice.token)
            assert status == 200, body
            seen += ids(body["chunk"])
            if "next_batch" not in body:
                break
            token = body["next_batch"]
        assert seen == expected
        _, body = await client.request("GET", room.path("/threads?limit=10", V1),
                                       token=alice.token)
        summary = body["chunk"][0]["unsigned"]["m.relations"]["m.thread"]
        assert summary["count"] == 2 and summary["current_user_participated"] is True

        # participated: alice started threads 0-2 and replied in 4.
        _, body = await client.request(
            "GET", room.path("/threads?include=participated", V1), token=alice.token)
        assert ids(body["chunk"]) == [roots[i].event_id for i in [4, 1, 0, 2]]

        for path, token, code in [("/threads?include=mine", alice.token, 400),
                                  ("/threads?from=zzz", alice.token, 400),
                                  ("/threads", carol.token, 403)]:
            status, _ = await client.request("GET", room.path(path, V1), token=token)
            assert status == code, path


async def test_timestamp_to_event(database_config: DatabaseConfig) -> None:
    async with server_with_users(database_config, "alice", "bob") as (client, users):
        alice, bob = users
        room = Room(client, room_id("ts"))
        await room.create(alice)
        msgs = await room.add(*[room.msg(alice, f"m{i}") for i in range(5)])
        ts = [m.origin_server_ts for m in msgs]

        async def find(t: int, direction: str, user: User = alice) -> tuple[int, Any]:
            return await client.request(
                "GET", room.path(f"/timestamp_to_event?ts={t}&dir={direction}", V1),
                token=user.token)

        assert (await find(ts[2], "f"))[1] == {"event_id": msgs[2].event_id,
                                               "origin_server_ts": ts[2]}
        assert (await find(ts[2] + 1, "f"))[1]["event_id"] == msgs[3].event_id
        assert (await find(ts[2] - 1, "b"))[1]["event_id"] == msgs[1].event_id
        status, body = await find(ts[-1] + 10, "f")
        assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
        assert (await find(ts[0], "x"))[0] == 400
        assert (await find(10**20, "f"))[0] == 400
        status, body = await client.request(
            "GET", room.path("/timestamp_to_event?dir=f", V1), token=alice.token)
        assert (status, body["errcode"]) == (400, "M_MISSING_PARAM")
        status, body = await client.request(
            "GET", room.path("/timestamp_to_event?ts=abc&dir=f", V1), token=alice.token)
        assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
        assert (await find(ts[0], "f", bob))[0] == 403
