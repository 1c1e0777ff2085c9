"""Directory visibility (GET/PUT /directory/list/room/{roomId}) and /publicRooms."""

from __future__ import annotations

from typing import Any

import pytest
from tests.directory.helpers import V3, make_room, q, user
from tests.server.harness import running_server

from hs.storage.database import DatabaseConfig


async def test_visibility_permissions(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice, a_tok = await user(hs, "alice")
        bob, b_tok = await user(hs, "bob")
        _carol, c_tok = await user(hs, "carol")
        root, r_tok = await user(hs, "root")
        await hs.services.store.set_admin(root, True)
        room = "!vis:test.local"
        await make_room(hs, room, alice, bob)
        path = f"{V3}/directory/list/room/{q(room)}"

        status, body = await hs.request("GET", path)
        assert (status, body) == (200, {"visibility": "private"})
        status, body = await hs.request("GET", f"{V3}/directory/list/room/{q('!x:test.local')}")
        assert (status, body["errcode"]) == (404, "M_NOT_FOUND")

        # Bob is joined but lacks the power for m.room.canonical_alias; carol is not joined.
        for tok in (b_tok, c_tok):
            status, body = await hs.request("PUT", path, {"visibility": "public"}, token=tok)
            assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
        status, body = await hs.request("PUT", path, {"visibility": "secret"}, token=a_tok)
        assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
        status, body = await hs.request("PUT", path, {"visibility": 3}, token=a_tok)
        assert (status, body["errcode"]) == (400, "M_BAD_JSON")
        status, body = await hs.request(
            "PUT", f"{V3}/directory/list/room/{q('!x:test.local')}", {}, token=a_tok)
        assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
        status, body = await hs.request("PUT", path, {"visibility": "public"})
        assert status == 401

        status, _ = await hs.request("PUT", path, {"visibility": "public"}, token=a_tok)
        assert status == 200
        status, body = await hs.request("GET", path)
        assert body == {"visibility": "public"}
        # The default visibility of a PUT is public; an admin may unpublish any room.
        status, _ = await hs.request("PUT", path, {"visibility": "private"}, token=r_tok)
        assert status == 200
        assert (await hs.request("GET", path))[1] == {"visibility": "private"}


async def _page_all(hs: Any, tok: str, body: dict[str, Any]) -> list[list[str]]:
    pages: list[list[str]] = []
    since = None
    while True:
        req = dict(body, **({"since": since} if since else {}))
        status, result = await hs.request("POST", f"{V3}/publicRooms", req, token=tok)
        assert status == 200, result
        pages.append([r["room_id"] for r in result["chunk"]])
        since = result.get("next_batch")
        if not since:
            return pages


async def test_public_rooms_listing_search_and_pagination(
        database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice, a_tok = await user(hs, "alice")
        others = [(await user(hs, f"u{i}"))[0] for i in range(6)]
        # Rooms with 1..7 joined members; names "Cheese n" for even n, "Other n" for odd.
        for n in range(7):
            name = f"Cheese {n}" if n % 2 == 0 else f"Other {n}"
            await make_room(hs, f"!r{n}:test.local", alice, *others[:n], name=name,
                            topic="about things" if n != 3 else "all about CHEESE",
                            public=True)
        await make_room(hs, "!space:test.local", alice, name="Cheese space",
                        room_type="m.space", public=True)
        await make_room(hs, "!hidden:test.local", alice, name="Cheese hidden")
        await hs.services.events.rooms.create_alias("#fromage:test.local", "!r1:test.local",
                                                    alice)

        # GET works without a token; ordering by joined members, most first.
        status, body = await hs.request("GET", f"{V3}/publicRooms")
        assert status == 200
        ids = [r["room_id"] for r in body["chunk"]]
        assert ids[:7] == [f"!r{n}:test.local" for n in range(6, -1, -1)]
        assert "!hidden:test.local" not in ids and len(ids) == 8
        assert body["total_room_count_estimate"] == 8
        assert "next_batch" not in body and "prev_batch" not in body
        top = body["chunk"][0]
        assert top == {
            "room_id": "!r6:test.local", "num_joined_members": 7, "name": "Cheese 6",
            "topic": "about things", "world_readable": False, "guest_can_join": False,
            "join_rule": "public",
        }
        space = next(r for r in body["chunk"] if r["room_id"] == "!space:test.local")
        assert space["room_type"] == "m.space"

        # Search over name, topic and alias, case-insensitive, 2 per page.
        search = {"limit": 2, "filter": {"generic_search_term": "cheese"}}
        pages = await _page_all(hs, a_tok, search)
        expected = ["!r6:test.local", "!r4:test.local", "!r3:test.local", "!r2:test.local",
                    "!r0:test.local", "!space:test.local"]
        assert pages == [expected[0:2], expected[2:4], expected[4:6]]
        status, first = await hs.request("POST", f"{V3}/publicRooms", search, token=a_tok)
        assert first["total_room_count_estimate"] == 6 and "prev_batch" not in first
        # Forward then back: prev_batch returns the previous page.
        _, second = await hs.request("POST", f"{V3}/publicRooms",
                                     dict(search, since=first["next_batch"]), token=a_tok)
        assert [r["room_id"] for r in second["chunk"]] == expected[2:4]
        _, back = await hs.request("POST", f"{V3}/publicRooms",
                                   dict(search, since=second["prev_batch"]), token=a_tok)
        assert [r["room_id"] for r in back["chunk"]] == expected[0:2]
        assert "prev_batch" not in back and back["next_batch"]
        # Alias search; room types (null = rooms without a type).
        pages = await _page_all(hs, a_tok, {"filter": {"generic_search_term": "FROMAGE"}})
        assert pages == [["!r1:test.local"]]
        pages = await _page_all(hs, a_tok, {"filter": {"room_types": ["m.space"]}})
        assert pages == [["!space:test.local"]]
        pages = await _page_all(hs, a_tok, {"filter": {"room_types": [None],
                                                       "generic_search_term": "cheese"}})
        assert pages == [expected[:5]]
        pages = await _page_all(hs, a_tok, {"filter": {"room_types": []}})
        assert len(pages[0]) == 8
        # Wildcards in the term are literal.
        pages = await _page_all(hs, a_tok, {"filter": {"generic_search_term": "%"}})
        assert pages == [[]]

        # GET with limit/since.
        status, body = await hs.request("GET", f"{V3}/publicRooms?limit=3")
        assert len(body["chunk"]) == 3 and body["next_batch"]
        status, body2 = await hs.request(
            "GET", f"{V3}/publicRooms?limit=3&since={body['next_batch']}")
        assert [r["room_id"] for r in body2["chunk"]] == [f"!r{n}:test.local"
                                                          for n in (3, 2, 1)]

        # A room published elsewhere (createRoom, admin API) shows at once, cache or not.
        await hs.services.events.rooms.set_room_public("!hidden:test.local", True)
        _, body4 = await hs.request("GET", f"{V3}/publicRooms")
        assert body4["total_room_count_estimate"] == 9
        assert "!hidden:test.local" in [r["room_id"] for r in body4["chunk"]]
        await hs.services.events.rooms.set_room_public("!hidden:test.local", False)

        # Our own server name is the local directory.
        status, body3 = await hs.request("GET", f"{V3}/publicRooms?server=test.local&limit=3")
        assert (status, body3["chunk"]) == (200, body["chunk"])

        # Bad input.
        for bad in ("limit=abc", "limit=-1", "since=garbage"):
            status, err = await hs.request("GET", f"{V3}/publicRooms?{bad}")
            assert (status, err["errcode"]) == (400, "M_INVALID_PARAM"), bad
        for bad_body in ({"limit": "2"}, {"filter": {"room_types": "m.space"}},
                         {"filter": []}, {"filter": {"generic_search_term": 5}}):
            status, err = await hs.request("POST", f"{V3}/publicRooms", bad_body, token=a_tok)
            assert (status, err["errcode"]) == (400, "M_BAD_JSON"), bad_body
        status, err = await hs.request("POST", f"{V3}/publicRooms", {})
        assert status == 401
        # No third-party networks are bridged here.
        status, body = await hs.request("POST", f"{V3}/publicRooms",
                                        {"third_party_instance_id": "irc"}, token=a_tok)
        assert (status, body["chunk"]) == (200, [])


async def test_public_room_summary_follows_state(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice, a_tok = await user(hs, "alice")
        room = await make_room(hs, "!s:test.local", alice, name="Old", public=True,
                               history_visibility="world_readable")
        await room.state("m.room.name", {"name": "New name"})
        await room.state("m.room.avatar", {"url": "mxc://test.local/abc"})
        await room.state("m.room.canonical_alias", {"alias": "#s:test.local"})
        await room.state("m.room.guest_access", {"guest_access": "can_join"})
        topic = await room.state("m.room.topic", {"topic": "", "m.topic": {
            "m.text": [{"mimetype": "text/html", "body": "<b>x</b>"},
                       {"body": "plain topic"}]}})
        _, body = await hs.request("GET", f"{V3}/publicRooms")
        assert body["chunk"] == [{
            "room_id": "!s:test.local", "num_joined_members": 1, "name": "New name",
            "topic": "plain topic", "avatar_url": "mxc://test.local/abc",
            "canonical_alias": "#s:test.local", "world_readable": True,
            "guest_can_join": True, "join_rule": "public",
        }]
        # Member counts are current even while the listing order is reused.
        await room.join("@late:test.local")
        _, body = await hs.request("GET", f"{V3}/publicRooms")
        assert body["chunk"][0]["num_joined_members"] == 2
        # A redacted topic no longer shows or matches.
        await room.add(room.rb.redaction(topic.event_id, sender=alice))
        _, body = await hs.request("GET", f"{V3}/publicRooms")
        assert "topic" not in body["chunk"][0]
        pages = await _page_all(hs, a_tok, {"filter": {"generic_search_term": "plain"}})
        assert pages == [[]]


async def test_listing_order_is_refreshed(database_config: DatabaseConfig,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_server(database_config) as hs:
        alice, _ = await user(hs, "alice")
        small = await make_room(hs, "!a:test.local", alice, public=True)
        await make_room(hs, "!b:test.local", alice, "@x:test.local", public=True)
        _, body = await hs.request("GET", f"{V3}/publicRooms")
        assert [r["room_id"] for r in body["chunk"]] == ["!b:test.local", "!a:test.local"]
        await small.join("@y:test.local")
        await small.join("@z:test.local")
        # Within the reuse window the order stays (the counts shown are current) ...
        _, body = await hs.request("GET", f"{V3}/publicRooms")
        assert [(r["room_id"], r["num_joined_members"]) for r in body["chunk"]] == [
            ("!b:test.local", 2), ("!a:test.local", 3)]
        # ... and once it has passed, the order follows the counts again.
        monkeypatch.setattr("hs.handlers.directory.LISTING_TTL_S", 0.0)
        _, body = await hs.request("GET", f"{V3}/publicRooms")
        assert [r["room_id"] for r in body["chunk"]] == ["!a:test.local", "!b:test.local"]
