"""Room aliases: PUT/GET/DELETE /directory/room/{alias} and GET /rooms/{roomId}/aliases."""

from __future__ import annotations

from tests.directory.helpers import V3, make_room, q, user
from tests.server.harness import running_server

from hs.storage.database import DatabaseConfig

ROOM = "!alias:test.local"


async def test_alias_lifecycle_and_errors(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice, a_tok = await user(hs, "alice")
        bob, b_tok = await user(hs, "bob")
        _carol, c_tok = await user(hs, "carol")
        await make_room(hs, ROOM, alice, bob, "@zed:remote.example")
        alias = "#room:test.local"
        path = f"{V3}/directory/room/{q(alias)}"

        # Unknown alias, bad grammar, another server's domain, missing room_id.
        status, body = await hs.request("GET", path)
        assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
        for bad in ("room:test.local", "#nodomain", "#:test.local", "#a:bad domain",
                    "#" + "x" * 260 + ":test.local"):
            status, body = await hs.request("PUT", f"{V3}/directory/room/{q(bad)}",
                                            {"room_id": ROOM}, token=a_tok)
            assert (status, body["errcode"]) == (400, "M_INVALID_PARAM"), bad
        status, body = await hs.request("PUT", f"{V3}/directory/room/{q('#x:other.org')}",
                                        {"room_id": ROOM}, token=a_tok)
        assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
        status, body = await hs.request("PUT", path, {}, token=a_tok)
        assert (status, body["errcode"]) == (400, "M_MISSING_PARAM")
        status, body = await hs.request("PUT", path, {"room_id": ROOM})
        assert (status, body["errcode"]) == (401, "M_MISSING_TOKEN")
        # Unknown room; a user not in the room.
        status, body = await hs.request("PUT", path, {"room_id": "!nope:test.local"},
                                        token=a_tok)
        assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
        status, body = await hs.request("PUT", path, {"room_id": ROOM}, token=c_tok)
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")

        # Bob (a member without power) creates it; taken afterwards.
        status, _ = await hs.request("PUT", path, {"room_id": ROOM}, token=b_tok)
        assert status == 200
        status, body = await hs.request("PUT", path, {"room_id": ROOM}, token=a_tok)
        assert (status, body["errcode"]) == (409, "M_ROOM_IN_USE")

        status, body = await hs.request("GET", path)
        assert status == 200
        assert body == {"room_id": ROOM, "servers": ["test.local", "remote.example"]}

        # Local aliases: members only.
        status, body = await hs.request("GET", f"{V3}/rooms/{q(ROOM)}/aliases", token=a_tok)
        assert (status, body) == (200, {"aliases": [alias]})
        status, body = await hs.request("GET", f"{V3}/rooms/{q(ROOM)}/aliases", token=c_tok)
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
        status, body = await hs.request("GET", f"{V3}/rooms/{q('!no:test.local')}/aliases",
                                        token=a_tok)
        assert (status, body["errcode"]) == (404, "M_NOT_FOUND")

        # Deletion: carol (not creator, no power) refused; alice (power 100) may.
        status, body = await hs.request("DELETE", path, token=c_tok)
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
        status, _ = await hs.request("DELETE", path, token=a_tok)
        assert status == 200
        status, body = await hs.request("DELETE", path, token=a_tok)
        assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
        status, body = await hs.request("GET", path)
        assert status == 404

        # The creator of an alias may delete it even without power.
        await hs.request("PUT", path, {"room_id": ROOM}, token=b_tok)
        status, _ = await hs.request("DELETE", path, token=b_tok)
        assert status == 200


async def test_admin_and_world_readable(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice, _a_tok = await user(hs, "alice")
        _bob, b_tok = await user(hs, "bob")
        root, r_tok = await user(hs, "root")
        await hs.services.store.set_admin(root, True)
        await make_room(hs, ROOM, alice, history_visibility="world_readable")
        alias = "#wr:test.local"
        path = f"{V3}/directory/room/{q(alias)}"
        # An admin needs no membership to create or delete.
        status, _ = await hs.request("PUT", path, {"room_id": ROOM}, token=r_tok)
        assert status == 200
        # World-readable: anyone may list the local aliases.
        status, body = await hs.request("GET", f"{V3}/rooms/{q(ROOM)}/aliases", token=b_tok)
        assert (status, body) == (200, {"aliases": [alias]})
        status, body = await hs.request("DELETE", path, token=b_tok)
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
        status, _ = await hs.request("DELETE", path, token=r_tok)
        assert status == 200
        # A remote alias cannot be resolved without reaching that server: not found.
        status, body = await hs.request(
            "GET", f"{V3}/directory/room/{q('#x:unreachable.invalid')}")
        assert status in (404, 502) and body["errcode"] in ("M_NOT_FOUND", "M_UNKNOWN")
