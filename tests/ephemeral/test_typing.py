"""PUT /rooms/{roomId}/typing/{userId}: permissions, expiry, stream positions, notifier."""

from __future__ import annotations

from tests.directory.helpers import V3, make_room, q, user
from tests.server.harness import running_server

from hs.storage.database import DatabaseConfig

ROOM = "!typing:test.local"


def _path(user_id: str, room_id: str = ROOM) -> str:
    return f"{V3}/rooms/{q(room_id)}/typing/{q(user_id)}"


async def test_typing_errors(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice, a_tok = await user(hs, "alice")
        bob, b_tok = await user(hs, "bob")
        carol, c_tok = await user(hs, "carol")
        room = await make_room(hs, ROOM, alice, bob)
        # Someone else's typing state; not joined; left; unknown room; bad bodies; no token.
        status, body = await hs.request("PUT", _path(bob), {"typing": True}, token=a_tok)
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
        status, body = await hs.request("PUT", _path(carol), {"typing": True}, token=c_tok)
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
        status, body = await hs.request("PUT", _path(alice, "!no:test.local"),
                                        {"typing": True}, token=a_tok)
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
        for bad in ({}, {"typing": "yes"}, {"typing": True, "timeout": "1"},
                    {"typing": True, "timeout": -5}):
            status, body = await hs.request("PUT", _path(alice), bad, token=a_tok)
            assert (status, body["errcode"]) == (400, "M_BAD_JSON"), bad
        status, body = await hs.request("PUT", _path(alice), {"typing": True})
        assert (status, body["errcode"]) == (401, "M_MISSING_TOKEN")
        await room.leave(bob)
        status, body = await hs.request("PUT", _path(bob), {"typing": True}, token=b_tok)
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
        assert hs.services.typing.get_typing(ROOM) == []


async def test_typing_start_stop_and_sync_reads(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice, a_tok = await user(hs, "alice")
        bob, b_tok = await user(hs, "bob")
        await make_room(hs, ROOM, alice, bob)
        await make_room(hs, "!other:test.local", alice)
        typing = hs.services.typing
        stream = hs.services.streams["typing"]
        start = stream.current()

        with hs.services.notifier.watch(rooms=[ROOM]) as waiter:
            status, _ = await hs.request("PUT", _path(alice), {"typing": True,
                                                                "timeout": 30000}, token=a_tok)
            assert status == 200
            assert waiter.woken and waiter.woken_by == {"typing"}
        after_alice = stream.current()
        assert after_alice > start
        await hs.request("PUT", _path(bob), {"typing": True}, token=b_tok)
        assert typing.get_typing(ROOM) == sorted([alice, bob])
        rooms = [ROOM, "!other:test.local"]
        assert typing.typing_changes_since(start, rooms) == {ROOM: sorted([alice, bob])}
        assert typing.typing_changes_since(stream.current(), rooms) == {}

        # Renewing takes no new position; stopping does.
        before = stream.current()
        await hs.request("PUT", _path(bob), {"typing": True, "timeout": 20000}, token=b_tok)
        assert stream.current() == before
        status, _ = await hs.request("PUT", _path(bob), {"typing": False}, token=b_tok)
        assert status == 200 and stream.current() > before
        assert typing.typing_changes_since(before, rooms) == {ROOM: [alice]}
        # Stopping when not typing is a no-op.
        now = stream.current()
        await hs.request("PUT", _path(bob), {"typing": False}, token=b_tok)
        assert stream.current() == now


async def test_typing_expires(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice, a_tok = await user(hs, "alice")
        await make_room(hs, ROOM, alice)
        typing = hs.services.typing
        stream = hs.services.streams["typing"]
        await hs.request("PUT", _path(alice), {"typing": True, "timeout": 150}, token=a_tok)
        assert typing.get_typing(ROOM) == [alice]
        started = stream.current()
        with hs.services.notifier.watch(rooms=[ROOM]) as waiter:
            assert await waiter.wait(3.0)
        assert typing.get_typing(ROOM) == []
        assert stream.current() > started
        assert typing.typing_changes_since(started, [ROOM]) == {ROOM: []}


async def test_typing_timeout_is_capped(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice, a_tok = await user(hs, "alice")
        await make_room(hs, ROOM, alice)
        await hs.request("PUT", _path(alice), {"typing": True, "timeout": 10**12},
                         token=a_tok)
        expiry = hs.services.typing._typing[ROOM][alice]
        assert 100_000 < expiry - hs.services.clock() <= 120_000
