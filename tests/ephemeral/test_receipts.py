"""POST /rooms/{roomId}/receipt/{receiptType}/{eventId} and POST /rooms/{roomId}/read_markers,
with the sync-side reads (receipts_since, account_data_since)."""

from __future__ import annotations

from tests.directory.helpers import V3, make_room, q, user
from tests.server.harness import running_server

from hs.storage.database import DatabaseConfig

ROOM = "!rcpt:test.local"


def _receipt(rtype: str, event_id: str, room_id: str = ROOM) -> str:
    return f"{V3}/rooms/{q(room_id)}/receipt/{q(rtype)}/{q(event_id)}"


async def test_receipt_errors(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice, a_tok = await user(hs, "alice")
        carol, c_tok = await user(hs, "carol")
        room = await make_room(hs, ROOM, alice)
        other = await make_room(hs, "!other:test.local", alice, carol)
        msg = await room.message("hello")
        elsewhere = await other.message("there")

        status, body = await hs.request("POST", _receipt("m.read", msg.event_id), {},
                                        token=c_tok)
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
        for event_id in ("$unknown", elsewhere.event_id):
            status, body = await hs.request("POST", _receipt("m.read", event_id), {},
                                            token=a_tok)
            assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
        status, body = await hs.request("POST", _receipt("m.bogus", msg.event_id), {},
                                        token=a_tok)
        assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
        for thread in ("", 5, "nonsense"):
            status, body = await hs.request("POST", _receipt("m.read", msg.event_id),
                                            {"thread_id": thread}, token=a_tok)
            assert (status, body["errcode"]) == (400, "M_INVALID_PARAM"), thread
        status, body = await hs.request("POST", _receipt("m.fully_read", msg.event_id),
                                        {"thread_id": "main"}, token=a_tok)
        assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
        status, body = await hs.request("POST", _receipt("m.read", msg.event_id), {})
        assert status == 401
        assert await hs.services.receipts.store.receipts_since(0, [ROOM], alice) == {}


async def test_public_private_and_threaded_receipts(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice, _a_tok = await user(hs, "alice")
        bob, b_tok = await user(hs, "bob")
        room = await make_room(hs, ROOM, alice, bob)
        m1 = await room.message("one")
        root = await room.message("thread root")
        in_thread = await room.message("reply", content={
            "m.relates_to": {"rel_type": "m.thread", "event_id": root.event_id}})
        m2 = await room.message("two")
        store = hs.services.receipts.store
        stream = hs.services.streams["receipts"]
        start = stream.current()

        # A public receipt wakes the room; an empty body is accepted (older clients).
        with hs.services.notifier.watch(rooms=[ROOM]) as waiter:
            status, _ = await hs.request("POST", _receipt("m.read", m1.event_id), None,
                                         token=b_tok)
            assert status == 200 and waiter.woken_by == {"receipts"}
        # A private one wakes only its sender.
        with hs.services.notifier.watch(rooms=[ROOM]) as room_waiter, \
                hs.services.notifier.watch(users=[bob]) as bob_waiter:
            status, _ = await hs.request("POST", _receipt("m.read.private", m2.event_id), {},
                                         token=b_tok)
            assert status == 200
            assert bob_waiter.woken and not room_waiter.woken
        # Threaded receipts: in a thread and on the main timeline.
        await hs.request("POST", _receipt("m.read", in_thread.event_id),
                         {"thread_id": root.event_id}, token=b_tok)
        await hs.request("POST", _receipt("m.read", root.event_id), {"thread_id": "main"},
                         token=b_tok)

        for_alice = await store.receipts_since(start, [ROOM], alice)
        content = for_alice[ROOM]
        assert set(content) == {m1.event_id, in_thread.event_id, root.event_id}
        assert set(content[m1.event_id]["m.read"][bob]) == {"ts"}
        assert content[in_thread.event_id]["m.read"][bob]["thread_id"] == root.event_id
        assert content[root.event_id]["m.read"][bob]["thread_id"] == "main"
        for_bob = (await store.receipts_since(start, [ROOM], bob))[ROOM]
        assert bob in for_bob[m2.event_id]["m.read.private"]
        assert all("m.read.private" not in v for v in content.values())

        # Receipts never move backwards; a later one replaces the earlier one.
        pos = stream.current()
        await hs.request("POST", _receipt("m.read", root.event_id), {}, token=b_tok)
        await hs.request("POST", _receipt("m.read", m1.event_id), {}, token=b_tok)
        changed = await store.receipts_since(pos, [ROOM], alice)
        assert list(changed[ROOM]) == [root.event_id]
        assert await store.receipts_since(stream.current(), [ROOM], alice) == {}
        mine = await store.get_user_receipts(bob, [ROOM])
        assert {(r.receipt_type, r.thread_id, r.event_id) for r in mine} == {
            ("m.read", None, root.event_id), ("m.read.private", None, m2.event_id),
            ("m.read", root.event_id, in_thread.event_id), ("m.read", "main", root.event_id),
        }


async def test_read_markers(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice, _a_tok = await user(hs, "alice")
        bob, b_tok = await user(hs, "bob")
        _carol, c_tok = await user(hs, "carol")
        room = await make_room(hs, ROOM, alice, bob)
        m1 = await room.message("one")
        m2 = await room.message("two")
        path = f"{V3}/rooms/{q(ROOM)}/read_markers"
        account_data = hs.services.account_data
        ad_stream = hs.services.streams["account_data"]
        start = ad_stream.current()

        with hs.services.notifier.watch(users=[bob]) as waiter:
            status, _ = await hs.request("POST", path, {
                "m.fully_read": m2.event_id, "m.read": m1.event_id,
                "m.read.private": m2.event_id}, token=b_tok)
            assert status == 200
            assert waiter.woken_by == {"account_data", "receipts"}
        assert await hs.services.read_markers.get_fully_read(bob, ROOM) == m2.event_id
        changes = await account_data.account_data_since(start, bob)
        assert changes.rooms == {ROOM: {"m.fully_read": {"event_id": m2.event_id}}}
        assert changes.global_data == {}
        assert (await account_data.account_data_since(ad_stream.current(), bob)).rooms == {}
        receipts = (await hs.services.receipts.store.receipts_since(0, [ROOM], bob))[ROOM]
        assert bob in receipts[m1.event_id]["m.read"]
        assert bob in receipts[m2.event_id]["m.read.private"]

        # The marker does not move backwards; the receipt endpoint sets it too.
        await hs.request("POST", path, {"m.fully_read": m1.event_id}, token=b_tok)
        assert await hs.services.read_markers.get_fully_read(bob, ROOM) == m2.event_id
        m3 = await room.message("three")
        status, _ = await hs.request("POST", _receipt("m.fully_read", m3.event_id), {},
                                     token=b_tok)
        assert status == 200
        assert await hs.services.read_markers.get_fully_read(bob, ROOM) == m3.event_id
        # m.fully_read is not a receipt.
        receipts = (await hs.services.receipts.store.receipts_since(0, [ROOM], bob))[ROOM]
        assert m3.event_id not in receipts

        # Errors: not joined, unknown event (nothing changes), bad types, no body.
        status, body = await hs.request("POST", path, {"m.fully_read": m1.event_id},
                                        token=c_tok)
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
        status, body = await hs.request("POST", path, {"m.read": m3.event_id,
                                                       "m.fully_read": "$nope"}, token=b_tok)
        assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
        receipts = (await hs.services.receipts.store.receipts_since(0, [ROOM], bob))[ROOM]
        assert m3.event_id not in receipts
        status, body = await hs.request("POST", path, {"m.fully_read": 1}, token=b_tok)
        assert (status, body["errcode"]) == (400, "M_BAD_JSON")
        status, body = await hs.request("POST", path, None, token=b_tok)
        assert (status, body["errcode"]) == (400, "M_NOT_JSON")


async def test_global_account_data_store(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice, _ = await user(hs, "alice")
        store = hs.services.account_data
        assert await store.get_global_account_data(alice, "m.direct") is None
        p1 = await store.set_global_account_data(alice, "m.direct", {"@b:x": ["!r:x"]})
        p2 = await store.set_global_account_data(alice, "m.direct", {})
        assert p2 > p1
        assert await store.get_global_account_data(alice, "m.direct") == {}
        await store.set_room_account_data(alice, ROOM, "m.tag", {"tags": {}})
        everything = await store.account_data_since(0, alice)
        assert everything.global_data == {"m.direct": {}}
        assert everything.rooms == {ROOM: {"m.tag": {"tags": {}}}}
        assert (await store.account_data_since(p2, alice)).global_data == {}
        assert await store.get_room_account_data(alice, ROOM, "m.tag") == {"tags": {}}
        assert await store.get_room_account_data(alice, "!x:test.local", "m.tag") is None


async def test_receipt_needs_visible_event(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice, _ = await user(hs, "alice")
        carol, c_tok = await user(hs, "carol")
        room = await make_room(hs, ROOM, alice, history_visibility="joined")
        hidden = await room.message("before carol joined")
        await room.join(carol)
        seen = await room.message("after")
        for rtype in ("m.read", "m.fully_read"):
            status, body = await hs.request("POST", _receipt(rtype, hidden.event_id), {},
                                            token=c_tok)
            assert (status, body["errcode"]) == (404, "M_NOT_FOUND"), rtype
        status, _ = await hs.request("POST", _receipt("m.read", seen.event_id), {},
                                     token=c_tok)
        assert status == 200
