"""A user of server B joins a room of server A (by ID and by alias); messages flow both
ways over /send; profile and directory queries; state and backfill reads."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from tests.federation_rooms.harness import Server, eventually, two_servers
from tests.federation_rooms.helpers import (
    CS,
    FED,
    has_event,
    membership,
    public_room,
    send_text,
)

from hs.federation.client import HttpResponseError, encode_path
from hs.storage.database import DatabaseConfig


async def test_join_by_id_and_messages_both_ways(
        database_config: DatabaseConfig, second_database_config: DatabaseConfig,
        tmp_path: Path) -> None:
    async with two_servers(database_config, second_database_config, tmp_path) as (a, b):
        alice, alice_tok = await a.user("alice")
        bob, bob_tok = await b.user("bob")
        room_id = await public_room(a, alice_tok)
        status, resp = await b.call(
            "POST", f"{CS}/join/{quote(room_id)}?server_name={quote(a.name)}", {},
            token=bob_tok)
        assert status == 200, resp
        assert resp["room_id"] == room_id
        # B has the room's state and the join as its only extremity.
        assert await membership(b, room_id, bob) == "join"
        assert await membership(b, room_id, alice) == "join"
        assert await eventually(lambda: _is_joined(a, room_id, bob))
        # A -> B
        ev = await send_text(a, alice_tok, room_id, "hello from A")
        assert await eventually(lambda: has_event(b, ev))
        # B -> A
        ev2 = await send_text(b, bob_tok, room_id, "hello from B")
        assert await eventually(lambda: has_event(a, ev2))
        # B's client sees A's message in its timeline.
        status, msgs = await b.call(
            "GET", f"{CS}/rooms/{quote(room_id)}/messages?dir=b&limit=10", token=bob_tok)
        assert status == 200, msgs
        assert ev in [e["event_id"] for e in msgs["chunk"]]

        # state_ids / state at B's message, read by B from A.
        fc = b.services.federation.client
        ids = await fc.get_json(a.name, FED + "/state_ids" + encode_path(room_id),
                                {"event_id": ev2})
        state_b = await b.services.events.get_state_ids_at(ev2, before=True)
        assert state_b is not None
        assert set(ids["pdu_ids"]) == set(state_b.values())
        full = await fc.get_json(a.name, FED + "/state" + encode_path(room_id),
                                 {"event_id": ev2})
        assert {p["type"] for p in full["pdus"]} >= {"m.room.create", "m.room.member"}
        assert full["auth_chain"]
        # backfill from B's message returns earlier events, newest first.
        back = await fc.get_json(a.name, FED + "/backfill" + encode_path(room_id),
                                 {"v": ev2, "limit": 5})
        assert len(back["pdus"]) == 5
        depths = [p["depth"] for p in back["pdus"]]
        assert depths == sorted(depths, reverse=True)
        # event_auth and /event
        got = await fc.get_json(a.name, FED + "/event" + encode_path(ev))
        assert got["pdus"][0]["content"]["body"] == "hello from A"
        chain = await fc.get_json(a.name, FED + "/event_auth" + encode_path(room_id, ev))
        assert any(p["type"] == "m.room.create" for p in chain["auth_chain"])


async def _is_joined(server: Server, room_id: str, user_id: str) -> bool:
    return await membership(server, room_id, user_id) == "join"


async def test_join_by_alias_and_queries(
        database_config: DatabaseConfig, second_database_config: DatabaseConfig,
        tmp_path: Path) -> None:
    async with two_servers(database_config, second_database_config, tmp_path) as (a, b):
        alice, alice_tok = await a.user("alice")
        status, _ = await a.call("PUT", f"{CS}/profile/{quote(alice)}/displayname",
                                 {"displayname": "Alice A"}, token=alice_tok)
        assert status == 200
        bob, bob_tok = await b.user("bob")
        room_id = await public_room(a, alice_tok, alias="lobby")
        alias = f"#lobby:{a.name}"
        fc = b.services.federation.client
        resolved = await fc.get_json(a.name, FED + "/query/directory", {"room_alias": alias})
        assert resolved["room_id"] == room_id and a.name in resolved["servers"]
        profile = await fc.get_json(a.name, FED + "/query/profile", {"user_id": alice})
        assert profile["displayname"] == "Alice A"
        only = await fc.get_json(a.name, FED + "/query/profile",
                                 {"user_id": alice, "field": "displayname"})
        assert only == {"displayname": "Alice A"}
        for query, code in (({"user_id": f"@nobody:{a.name}"}, 404),
                            ({"room_alias": f"#nope:{a.name}"}, 404)):
            path = FED + ("/query/profile" if "user_id" in query else "/query/directory")
            try:
                await fc.get_json(a.name, path, query)
                raise AssertionError("expected an error")
            except HttpResponseError as exc:
                assert exc.status == code and exc.errcode == "M_NOT_FOUND"
        status, resp = await b.call("POST", f"{CS}/join/{quote(alias)}", {}, token=bob_tok)
        assert status == 200, resp
        assert resp["room_id"] == room_id
        assert await membership(b, room_id, bob) == "join"
        assert await eventually(lambda: _is_joined(a, room_id, bob))
        # The public directory over federation.
        status, _ = await a.call("PUT", f"{CS}/directory/list/room/{quote(room_id)}",
                                 {"visibility": "public"}, token=alice_tok)
        assert status == 200
        listing = await fc.get_json(a.name, FED + "/publicRooms")
        assert room_id in [r["room_id"] for r in listing["chunk"]]
        posted = await fc.post_json(a.name, FED + "/publicRooms",
                                    {"limit": 5, "filter": {"generic_search_term": "fed"}})
        assert room_id in [r["room_id"] for r in posted["chunk"]]


async def test_late_joiner_backfills_history(
        database_config: DatabaseConfig, second_database_config: DatabaseConfig,
        tmp_path: Path) -> None:
    async with two_servers(database_config, second_database_config, tmp_path) as (a, b):
        _, alice_tok = await a.user("alice")
        _, bob_tok = await b.user("bob")
        room_id = await public_room(a, alice_tok)
        bodies = [f"early-{i}" for i in range(120)]
        for body in bodies:
            await send_text(a, alice_tok, room_id, body)
        status, resp = await b.call(
            "POST", f"{CS}/join/{quote(room_id)}?server_name={quote(a.name)}", {},
            token=bob_tok)
        assert status == 200, resp

        async def history() -> bool:
            status, msgs = await b.call(
                "GET", f"{CS}/rooms/{quote(room_id)}/messages?dir=b&limit=200",
                token=bob_tok)
            assert status == 200, msgs
            got = [e["content"].get("body") for e in reversed(msgs["chunk"])
                   if e["type"] == "m.room.message"]
            return got == bodies

        assert await eventually(history)
