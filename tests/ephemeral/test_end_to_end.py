"""The directory and ephemeral endpoints on rooms made through the client API
(/createRoom, /join, /send, /ban): what an Element user does."""

from __future__ import annotations

import pytest
from tests.directory.helpers import V3, q, user
from tests.server.harness import running_server

from hs.storage.database import DatabaseConfig


@pytest.mark.parametrize("room_version", ["10", "12"])
async def test_element_flow(database_config: DatabaseConfig, room_version: str) -> None:
    async with running_server(database_config) as hs:
        alice, a_tok = await user(hs, "alice")
        bob, b_tok = await user(hs, "bob")
        eve, e_tok = await user(hs, "eve")
        status, created = await hs.request("POST", f"{V3}/createRoom", {
            "preset": "public_chat", "visibility": "public", "room_alias_name": "lobby",
            "name": "The Lobby", "topic": "Say hi", "room_version": room_version}, token=a_tok)
        assert status == 200, created
        room_id = created["room_id"]
        alias = "#lobby:test.local"

        # Bob finds it in the directory and joins through the alias.
        status, listing = await hs.request("POST", f"{V3}/publicRooms",
                                           {"filter": {"generic_search_term": "lobby"}},
                                           token=b_tok)
        assert status == 200
        assert [r["room_id"] for r in listing["chunk"]] == [room_id]
        entry = listing["chunk"][0]
        assert (entry["name"], entry["topic"], entry["num_joined_members"]) == (
            "The Lobby", "Say hi", 1)
        assert entry["canonical_alias"] == alias and entry["join_rule"] == "public"
        status, resolved = await hs.request("GET", f"{V3}/directory/room/{q(alias)}")
        assert (status, resolved["room_id"]) == (200, room_id)
        status, _ = await hs.request("POST", f"{V3}/join/{q(alias)}", {}, token=b_tok)
        assert status == 200
        _, listing = await hs.request("GET", f"{V3}/publicRooms")
        assert listing["chunk"][0]["num_joined_members"] == 2

        # Bob types, then sends; alice reads it and moves her read marker.
        status, _ = await hs.request("PUT", f"{V3}/rooms/{q(room_id)}/typing/{q(bob)}",
                                     {"typing": True, "timeout": 10000}, token=b_tok)
        assert status == 200 and hs.services.typing.get_typing(room_id) == [bob]
        status, sent = await hs.request(
            "PUT", f"{V3}/rooms/{q(room_id)}/send/m.room.message/t1",
            {"msgtype": "m.text", "body": "hi"}, token=b_tok)
        assert status == 200
        event_id = sent["event_id"]
        status, _ = await hs.request("POST", f"{V3}/rooms/{q(room_id)}/read_markers",
                                     {"m.fully_read": event_id, "m.read": event_id},
                                     token=a_tok)
        assert status == 200
        receipts = await hs.services.receipts.store.receipts_since(0, [room_id], bob)
        assert alice in receipts[room_id][event_id]["m.read"]
        assert await hs.services.read_markers.get_fully_read(alice, room_id) == event_id

        # Bob has no power to publish or unpublish, or to delete alice's alias.
        status, body = await hs.request("PUT", f"{V3}/directory/list/room/{q(room_id)}",
                                        {"visibility": "private"}, token=b_tok)
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
        status, body = await hs.request("DELETE", f"{V3}/directory/room/{q(alias)}",
                                        token=b_tok)
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
        # But may add his own alias and list the room's aliases.
        status, _ = await hs.request("PUT", f"{V3}/directory/room/{q('#bobs:test.local')}",
                                     {"room_id": room_id}, token=b_tok)
        assert status == 200
        status, body = await hs.request("GET", f"{V3}/rooms/{q(room_id)}/aliases",
                                        token=b_tok)
        assert sorted(body["aliases"]) == ["#bobs:test.local", alias]

        # Eve is banned: no typing, receipts or aliases for her.
        status, _ = await hs.request("POST", f"{V3}/join/{q(room_id)}", {}, token=e_tok)
        assert status == 200
        status, _ = await hs.request("POST", f"{V3}/rooms/{q(room_id)}/ban",
                                     {"user_id": eve}, token=a_tok)
        assert status == 200
        status, body = await hs.request("PUT", f"{V3}/rooms/{q(room_id)}/typing/{q(eve)}",
                                        {"typing": True}, token=e_tok)
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
        status, body = await hs.request(
            "POST", f"{V3}/rooms/{q(room_id)}/receipt/m.read/{q(event_id)}", {}, token=e_tok)
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
        status, body = await hs.request("PUT", f"{V3}/directory/room/{q('#eve:test.local')}",
                                        {"room_id": room_id}, token=e_tok)
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")

        # Alice publishes bob's alias too. Bob (no power for the canonical alias) may
        # still delete his alias; the event keeps it. Alice's deletion updates the event.
        canonical = f"{V3}/rooms/{q(room_id)}/state/m.room.canonical_alias"
        status, _ = await hs.request("PUT", canonical, {
            "alias": alias, "alt_aliases": ["#bobs:test.local"]}, token=a_tok)
        assert status == 200
        status, _ = await hs.request("DELETE", f"{V3}/directory/room/{q('#bobs:test.local')}",
                                     token=b_tok)
        assert status == 200
        _, content = await hs.request("GET", canonical, token=a_tok)
        assert content == {"alias": alias, "alt_aliases": ["#bobs:test.local"]}
        status, _ = await hs.request("DELETE", f"{V3}/directory/room/{q(alias)}", token=a_tok)
        assert status == 200
        _, content = await hs.request("GET", canonical, token=a_tok)
        assert content == {"alt_aliases": ["#bobs:test.local"]}

        # Alice (room admin) unpublishes it.
        status, _ = await hs.request("PUT", f"{V3}/directory/list/room/{q(room_id)}",
                                     {"visibility": "private"}, token=a_tok)
        assert status == 200
        _, listing = await hs.request("GET", f"{V3}/publicRooms")
        assert listing["chunk"] == [] and listing["total_room_count_estimate"] == 0
