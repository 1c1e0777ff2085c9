"""Invites across servers (accept and reject), knocking over federation, leaving, and
server ACLs blocking a server."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from tests.federation_rooms.harness import Server, eventually, two_servers
from tests.federation_rooms.helpers import (
    CS,
    FED,
    build_unsent,
    has_event,
    join_remote,
    membership,
    public_room,
    push,
    send_text,
)

from hs.federation.client import HttpResponseError, encode_path
from hs.handlers.federation.acl import filter_edus, server_allowed
from hs.storage.database import DatabaseConfig


async def _is(server: Server, room_id: str, user: str, expected: str) -> bool:
    return await membership(server, room_id, user) == expected


async def test_invite_accept_leave_and_reject(
        database_config: DatabaseConfig, second_database_config: DatabaseConfig,
        tmp_path: Path) -> None:
    async with two_servers(database_config, second_database_config, tmp_path) as (a, b):
        _, alice_tok = await a.user("alice")
        bob, bob_tok = await b.user("bob")
        status, resp = await a.call("POST", CS + "/createRoom",
                                    {"preset": "private_chat", "name": "secret"},
                                    token=alice_tok)
        assert status == 200, resp
        room_id = resp["room_id"]
        # Not invited: the private room refuses the join.
        status, resp = await b.call(
            "POST", f"{CS}/join/{quote(room_id)}?server_name={quote(a.name)}", {},
            token=bob_tok)
        assert status == 403, resp
        # The invite is counter-signed by B and shows up in bob's /sync.
        status, resp = await a.call("POST", f"{CS}/rooms/{quote(room_id)}/invite",
                                    {"user_id": bob}, token=alice_tok)
        assert status == 200, resp
        assert await _is(a, room_id, bob, "invite")
        assert await _is(b, room_id, bob, "invite")
        invite_id = (await b.services.events.get_current_state_ids(
            room_id, [("m.room.member", bob)]))[("m.room.member", bob)]
        invite = await a.services.events.get_event(invite_id)
        assert invite is not None and b.name in invite.data["signatures"]
        status, sync = await b.call("GET", CS + "/sync?timeout=0", token=bob_tok)
        assert status == 200, sync
        invited = sync["rooms"]["invite"][room_id]["invite_state"]["events"]
        assert {"m.room.name", "m.room.member"} <= {e["type"] for e in invited}
        # Accepting: no server_name needed, the inviter's server is used.
        status, resp = await b.call("POST", f"{CS}/join/{quote(room_id)}", {}, token=bob_tok)
        assert status == 200, resp
        assert await _is(b, room_id, bob, "join")
        assert await eventually(lambda: _is(a, room_id, bob, "join"))
        # Leaving while resident goes through the room like any event.
        status, _ = await b.call("POST", f"{CS}/rooms/{quote(room_id)}/leave", {},
                                 token=bob_tok)
        assert status == 200
        assert await eventually(lambda: _is(a, room_id, bob, "leave"))
        # Invited again, bob rejects over federation (make_leave/send_leave).
        status, resp = await a.call("POST", f"{CS}/rooms/{quote(room_id)}/invite",
                                    {"user_id": bob}, token=alice_tok)
        assert status == 200, resp
        assert await eventually(lambda: _is(b, room_id, bob, "invite"))
        status, resp = await b.call("POST", f"{CS}/rooms/{quote(room_id)}/leave", {},
                                    token=bob_tok)
        assert status == 200, resp
        assert await _is(b, room_id, bob, "leave")
        assert await _is(a, room_id, bob, "leave")


async def test_invite_of_unknown_user_fails(
        database_config: DatabaseConfig, second_database_config: DatabaseConfig,
        tmp_path: Path) -> None:
    async with two_servers(database_config, second_database_config, tmp_path) as (a, b):
        _, alice_tok = await a.user("alice")
        room_id = await public_room(a, alice_tok)
        status, resp = await a.call("POST", f"{CS}/rooms/{quote(room_id)}/invite",
                                    {"user_id": f"@ghost:{b.name}"}, token=alice_tok)
        assert status == 403 or status == 502, resp
        assert await membership(a, room_id, f"@ghost:{b.name}") is None


async def test_knock_over_federation(
        database_config: DatabaseConfig, second_database_config: DatabaseConfig,
        tmp_path: Path) -> None:
    async with two_servers(database_config, second_database_config, tmp_path) as (a, b):
        _, alice_tok = await a.user("alice")
        bob, bob_tok = await b.user("bob")
        room_id = await public_room(a, alice_tok, initial_state=[{
            "type": "m.room.join_rules", "state_key": "", "content": {"join_rule": "knock"}}])
        status, resp = await b.call(
            "POST", f"{CS}/knock/{quote(room_id)}?server_name={quote(a.name)}",
            {"reason": "let me in"}, token=bob_tok)
        assert status == 200, resp
        assert await _is(a, room_id, bob, "knock")
        assert await _is(b, room_id, bob, "knock")
        status, sync = await b.call("GET", CS + "/sync?timeout=0", token=bob_tok)
        assert status == 200, sync
        assert room_id in sync["rooms"]["knock"]
        # Alice lets bob in; bob joins.
        status, resp = await a.call("POST", f"{CS}/rooms/{quote(room_id)}/invite",
                                    {"user_id": bob}, token=alice_tok)
        assert status == 200, resp
        await join_remote(b, bob_tok, room_id, a.name)
        assert await eventually(lambda: _is(a, room_id, bob, "join"))


async def test_server_acl_blocks_server(
        database_config: DatabaseConfig, second_database_config: DatabaseConfig,
        tmp_path: Path) -> None:
    async with two_servers(database_config, second_database_config, tmp_path) as (a, b):
        alice, alice_tok = await a.user("alice")
        bob, bob_tok = await b.user("bob")
        room_id = await public_room(a, alice_tok)
        await join_remote(b, bob_tok, room_id, a.name)
        assert await eventually(lambda: _is(a, room_id, bob, "join"))
        before = await send_text(b, bob_tok, room_id, "before the ACL")
        assert await eventually(lambda: has_event(a, before))
        # Deny B by name (both servers are 127.0.0.1: A never checks itself).
        status, resp = await a.call(
            "PUT", f"{CS}/rooms/{quote(room_id)}/state/m.room.server_acl/",
            {"allow": ["*"], "deny": [b.name.split(":")[0]], "allow_ip_literals": True},
            token=alice_tok)
        assert status == 200, resp
        # B's PDUs are refused...
        a.services.rooms.pipeline.on_persisted.remove(a.services.sender.on_persisted)
        blocked = await build_unsent(b, room_id, bob, {"msgtype": "m.text", "body": "hi"})
        result = await push(b, a, [blocked.data])
        assert result[blocked.event_id] == {"error": "Server is banned from this room"}
        assert await a.services.events.get_event(blocked.event_id) is None
        # ...and so are its reads of the room and its joins.
        client = b.services.federation.client
        for path, query in ((FED + "/state_ids" + encode_path(room_id), {"event_id": before}),
                            (FED + "/make_join" + encode_path(room_id, f"@c:{b.name}"),
                             {"ver": ["12"]}),
                            (FED + "/backfill" + encode_path(room_id),
                             {"v": before, "limit": 3})):
            try:
                await client.get_json(a.name, path, query)
                raise AssertionError(f"{path} allowed")
            except HttpResponseError as exc:
                assert (exc.status, exc.errcode) == (403, "M_FORBIDDEN")
        # Room-scoped EDUs from the denied server are dropped before the EDU handler.
        edus = [{"edu_type": "m.typing", "content": {"room_id": room_id, "user_id": bob,
                                                     "typing": True}},
                {"edu_type": "m.receipt", "content": {room_id: {"m.read": {}}}},
                {"edu_type": "m.presence", "content": {"push": []}}]
        kept = await filter_edus(a.services.events, b.name, edus)
        assert [e["edu_type"] for e in kept] == ["m.presence"]
        assert await filter_edus(a.services.events, "other.example", edus) == edus
        assert alice.endswith(a.name)


def test_acl_matching() -> None:
    """Spec "Server ACLs": deny wins, globs, ports ignored, IP literals switchable."""
    acl = {"allow": ["*.example.org", "good.test"], "deny": ["bad.example.org"],
           "allow_ip_literals": False}
    assert server_allowed("a.example.org", acl)
    assert server_allowed("good.test:8448", acl)
    assert not server_allowed("bad.example.org", acl)
    assert not server_allowed("other.test", acl)
    assert not server_allowed("1.2.3.4:8448", {**acl, "allow": ["*"]})
    assert not server_allowed("[::1]:8448", {**acl, "allow": ["*"]})
    assert server_allowed("1.2.3.4", {"allow": ["*"]})
    assert not server_allowed("anything", {})
