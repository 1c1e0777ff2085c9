"""Push actions stored per event (one default row + per-user exceptions + member spans)
give the same counts and /notifications as one row per (event, member) did.

``_Recorder`` captures what the hook evaluated, expanded to the old per-(event, member)
rows, and the expected counts are computed from those rows in Python with the old rule
(unread = after the furthest of the unthreaded receipt, the thread's receipt and the
user's own latest event in the thread).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from tests.directory.helpers import make_room
from tests.push.test_actions_counts import _receipt, _send, alice_and_bob_talking
from tests.rooms.helpers import User, new_user, q
from tests.server.harness import Client, running_server

from hs.core.pdu import PDU
from hs.handlers.push.outcomes import NOTHING
from hs.storage.database import DatabaseConfig
from hs.storage.events import EventToPersist, StateAfter

HIGHLIGHT = {"set_tweak": "highlight"}


class _Recorder:
    """Wraps the handler's row building: keeps the old-style rows ``(user, room, pos,
    event_id, thread, notify, highlight, actions)`` of every evaluated event."""

    def __init__(self, hs: Client) -> None:
        #: (user, event) -> row: on PostgreSQL a message batch is evaluated before it is
        #: persisted (its position a stand-in then) and again if its rows were not
        #: committed with it, so positions are looked up at check time.
        self._rows: dict[tuple[str, str], tuple[str, str, str, str, int, int, str]] = {}
        handler = hs.services.push.actions
        real = handler._rows

        async def rows(room_id: str, pending: Sequence[Any]) -> Any:
            for pdu, _pos, outs, extra in pending:
                thread = await handler.thread_of(pdu)
                for user_id, out in [*outs, *extra]:
                    if out != NOTHING:
                        self._rows[(user_id, pdu.event_id)] = (
                            user_id, room_id, pdu.event_id, thread, *out)
            return await real(room_id, pending)

        handler._rows = rows

    async def rows(self, hs: Client) -> list[tuple[str, str, int, str, str, int, int, str]]:
        """``(user, room, pos, event_id, thread, notify, highlight, actions)`` rows."""
        found = await hs.services.events.get_events_with_meta(e for _, e in self._rows)
        return [(u, room, found[eid][1].stream_ordering, eid, *rest)
                for (u, room, eid, *rest) in self._rows.values()]

    async def check(self, hs: Client, users: Sequence[User], rooms: Sequence[str]) -> None:
        """Counts and /notifications of every user equal the old rows' ones."""
        push = hs.services.push
        store = push.actions.store
        all_rows = await self.rows(hs)
        for u in users:
            mine = [r for r in all_rows if r[0] == u.user_id]
            read = await store.read_positions(u.user_id, rooms)
            expected: dict[str, dict[str, tuple[int, int]]] = {}
            for _, room, pos, _, thread, notify, highlight, _ in mine:
                if room not in rooms:
                    continue
                if pos <= max(read.get((room, ""), 0), read.get((room, thread), 0)):
                    continue
                n, h = expected.setdefault(room, {}).get(thread, (0, 0))
                expected[room][thread] = (n + notify, h + highlight)
            got = await store.unread_counts(u.user_id, rooms)
            assert got == expected, u.user_id
            want = sorted(mine, key=lambda r: -r[2])
            notes = await store.notifications(u.user_id, None, 1000, False)
            assert [(n.room_id, n.stream_ordering, n.event_id, n.thread_id, n.highlight,
                     n.actions) for n in notes] == [
                (r[1], r[2], r[3], r[4], bool(r[6]), _json(r[7])) for r in want], u.user_id
            highlights = await store.notifications(u.user_id, None, 1000, True)
            assert [n.event_id for n in highlights] == [r[3] for r in want if r[6]]
            if len(want) > 2:
                page = await store.notifications(u.user_id, want[1][2], 2, False)
                assert [n.event_id for n in page] == [r[3] for r in want[2:4]]


def _json(text: str) -> Any:
    import orjson

    return orjson.loads(text)


async def _counts(hs: Client, user: User, room: str) -> dict[str, Any]:
    return (await hs.services.push.unread_counts(user.user_id, [room]))[room]


async def test_same_counts_as_per_member_rows(database_config: DatabaseConfig) -> None:
    """Joins, leaves and re-joins, mentions, a muted room, an invite, threads with threaded
    and unthreaded receipts, own messages: every user's counts and notifications."""
    async with running_server(database_config) as hs:
        rec = _Recorder(hs)
        alice, bob, carol, dave, erin = [
            await new_user(hs, n) for n in ("alice", "bob", "carol", "dave", "erin")]
        users = [alice, bob, carol, dave, erin]
        room = await alice.create_room(preset="public_chat")
        other = await bob.create_room(preset="public_chat")
        for u in (bob, carol):
            assert (await u.join(room))[0] == 200
        assert (await alice.join(other))[0] == 200
        await _send(alice, room, "m1")
        await _send(alice, room, "m2")
        assert (await dave.join(room))[0] == 200
        await _send(bob, room, "hi carol",
                    **{"m.mentions": {"user_ids": [carol.user_id]}})
        status, _ = await carol.call("PUT", f"/pushrules/global/room/{q(room)}",
                                     {"actions": []})
        assert status == 200
        await _send(alice, room, "m3")
        await _send(bob, other, "elsewhere")
        root = await _send(alice, room, "thread root")
        thread = {"m.relates_to": {"rel_type": "m.thread", "event_id": root}}
        t1 = await _send(bob, room, "t1", **thread)
        await _send(alice, room, "t2 dave", **{**thread,
                                               "m.mentions": {"user_ids": [dave.user_id]}})
        await rec.check(hs, users, [room, other])
        assert (await carol.member_op("leave", room))[0] == 200
        away = await _send(alice, room, "while carol is away")
        await _send(bob, room, "t3 carol", **{**thread,
                                              "m.mentions": {"user_ids": [carol.user_id]}})
        assert (await carol.join(room))[0] == 200
        await _send(alice, room, "after carol is back")
        status, _ = await alice.member_op("invite", room, {"user_id": erin.user_id})
        assert status == 200
        await _send(alice, room, "all", **{"m.mentions": {"room": True}})
        await rec.check(hs, users, [room, other])
        # Receipts: threaded in the thread, main-timeline, unthreaded, private; own events.
        await _receipt(bob, room, t1, thread=root)
        await _receipt(dave, room, away, thread="main")
        await _receipt(alice, room, t1)
        await _receipt(carol, room, root, rtype="m.read.private")
        await _send(dave, room, "dave in thread", **thread)
        await rec.check(hs, users, [room, other])
        # A display name change (a join to join) changes nothing.
        status, _ = await bob.put_state(room, "m.room.member",
                                        {"membership": "join", "displayname": "Bobby"},
                                        bob.user_id)
        assert status == 200
        await _send(alice, room, "hello Bobby")
        await rec.check(hs, users, [room, other])
        # Nothing was counted for dave before he joined, nor for carol while away.
        assert away not in {n.event_id for n in await hs.services.push.actions.store
                            .notifications(carol.user_id, None, 100, False)}


async def test_join_after_messages_and_rejoin(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice, bob = [await new_user(hs, n) for n in ("alice", "bob")]
        carol = await new_user(hs, "carol")
        room = await alice.create_room(preset="public_chat")
        assert (await bob.join(room))[0] == 200
        for i in range(3):
            await _send(alice, room, f"before carol {i}")
        assert (await carol.join(room))[0] == 200
        assert (await _counts(hs, carol, room))["notification_count"] == 0
        await _send(alice, room, "carol is here")
        assert (await _counts(hs, carol, room))["notification_count"] == 1
        assert (await _counts(hs, bob, room))["notification_count"] == 4
        last = await _send(alice, room, "second")
        await _receipt(carol, room, last)
        assert (await carol.member_op("leave", room))[0] == 200
        for i in range(4):
            await _send(alice, room, f"carol away {i}")
        assert (await carol.join(room))[0] == 200
        assert (await _counts(hs, carol, room))["notification_count"] == 0
        await _send(bob, room, "welcome back")
        assert (await _counts(hs, carol, room))["notification_count"] == 1
        assert (await _counts(hs, bob, room))["notification_count"] == 0  # own message


async def test_mention_and_mute_in_busy_room(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        db = hs.services.push.actions.store.db
        alice = await new_user(hs, "alice")
        others = [await new_user(hs, f"user{i}") for i in range(8)]
        room = await alice.create_room(preset="public_chat")
        for u in others:
            assert (await u.join(room))[0] == 200
        target, muted = others[3], others[5]
        status, _ = await muted.call("PUT", f"/pushrules/global/room/{q(room)}",
                                     {"actions": ["dont_notify"]})
        assert status == 200
        before = await db.fetchval("SELECT COUNT(*) FROM event_push_actions")
        ping = await _send(alice, room, "ping",
                           **{"m.mentions": {"user_ids": [target.user_id]}})
        # One default row; exceptions only for the mentioned user and the muted one.
        assert await db.fetchval("SELECT COUNT(*) FROM event_push_defaults"
                                 " WHERE event_id = ?", ping) == 1
        excepted = await db.fetchall("SELECT user_id, notif, highlight FROM event_push_actions"
                                     " WHERE event_id = ? ORDER BY user_id", ping)
        assert sorted(excepted) == sorted([(target.user_id, 1, 1), (muted.user_id, 0, 0)])
        assert await db.fetchval("SELECT COUNT(*) FROM event_push_actions") == before + 2
        for u in others:
            c = await _counts(hs, u, room)
            if u is muted:
                assert c["notification_count"] == 0 and c["highlight_count"] == 0
            else:
                assert c["notification_count"] == 1
                assert c["highlight_count"] == int(u is target)
        notes = (await hs.services.push.counts.notifications(target.user_id, None, 10, None))
        assert HIGHLIGHT in notes["notifications"][0]["actions"]
        assert (await hs.services.push.counts.notifications(muted.user_id, None, 10, None)
                ) == {"notifications": []}


async def _rows_per_message(hs: Client, room_id: str, members: int) -> tuple[int, int]:
    """Rows written (default + exception, member spans) for 10 plain messages in a fresh
    room of ``members`` local members, after a first message that records the members."""
    db = hs.services.push.actions.store.db
    creator = f"@c{members}:test.local"
    others = [f"@m{members}_{i}:test.local" for i in range(members - 1)]
    room = await make_room(hs, room_id, creator, *others)

    async def send(count: int) -> None:
        batch: list[EventToPersist] = []
        pdus: list[PDU] = [room.rb.message(f"hello {i}", sender=creator) for i in range(count)]
        for pdu in pdus:
            batch.append(EventToPersist(pdu, state_before=StateAfter(room._last or "")))
            room._last = pdu.event_id
        results = await hs.services.events.persist_events(batch)
        await hs.services.push.on_persisted(room_id, batch, results)

    async def total() -> tuple[int, int]:
        rows = 0
        for table in ("event_push_defaults", "event_push_actions"):
            rows += await db.fetchval(f"SELECT COUNT(*) FROM {table} WHERE room_id = ?", room_id)
        spans = await db.fetchval("SELECT COUNT(*) FROM event_push_members WHERE room_id = ?",
                                  room_id)
        return rows, spans

    await send(1)
    rows0, spans0 = await total()
    assert spans0 == members
    for _ in range(10):
        await send(1)
    rows1, spans1 = await total()
    counts = await hs.services.push.unread_counts(others[0], [room_id])
    assert counts[room_id]["notification_count"] == 11
    return rows1 - rows0, spans1 - spans0


async def test_rows_per_message_do_not_grow_with_members(
        database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        small = await _rows_per_message(hs, "!small:test.local", 5)
        started = time.perf_counter()
        big = await _rows_per_message(hs, "!big:test.local", 40)
        assert time.perf_counter() - started < 60
        assert small == big == (10, 0)


async def test_unchanged_members_write_in_one_statement(
        database_config: DatabaseConfig) -> None:
    """PostgreSQL writes a message's default row and the sender's read position in one
    statement, without a transaction, when the room's members did not change; a join
    (a changed member set) still goes through the transaction; counts stay right."""
    async with running_server(database_config) as hs:
        alice, bob, carol, room = await alice_and_bob_talking(hs)
        store = hs.services.push.actions.store
        transactions = 0

        class Counting:
            """The store's database, counting the transactions the store opens."""

            def __init__(self, db: Any) -> None:
                self._db = db

            def __getattr__(self, name: str) -> Any:
                return getattr(self._db, name)

            def transaction(self) -> Any:
                nonlocal transactions
                transactions += 1
                return self._db.transaction()

        original = store.db
        store.db = Counting(original)
        try:
            await _send(alice, room, "one")
            await _send(alice, room, "two")
            if hs.services.db.dialect == "postgres":
                assert transactions == 0
            assert (await carol.join(room))[0] == 200
            three = await _send(alice, room, "three")
            if hs.services.db.dialect == "postgres":
                assert transactions >= 1  # carol's span: the transaction path
        finally:
            store.db = original
        counts = await hs.services.push.unread_counts(bob.user_id, [room])
        assert counts[room]["notification_count"] == 4  # warm up, one, two, three
        counts = await hs.services.push.unread_counts(carol.user_id, [room])
        assert counts[room]["notification_count"] == 1
        await _receipt(bob, room, three)
        counts = await hs.services.push.unread_counts(bob.user_id, [room])
        assert counts[room]["notification_count"] == 0


async def test_rule_change_between_messages_takes_effect(database_config: DatabaseConfig
                                                         ) -> None:
    """A room keeps its recipients (rules and contexts) from one message to the next; a
    member who changes their rules in between is evaluated with the new ones."""
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        others = [await new_user(hs, f"user{i}") for i in range(4)]
        room = await alice.create_room(preset="public_chat")
        for u in others:
            assert (await u.join(room))[0] == 200
        await _send(alice, room, "first")
        muted = others[2]
        assert (await _counts(hs, muted, room))["notification_count"] == 1
        status, _ = await muted.call("PUT", f"/pushrules/global/room/{q(room)}",
                                     {"actions": ["dont_notify"]})
        assert status == 200
        await _send(alice, room, "second")
        for u in others:
            assert (await _counts(hs, u, room))["notification_count"] == (
                1 if u is muted else 2)
        status, _ = await muted.call("DELETE", f"/pushrules/global/room/{q(room)}")
        assert status == 200
        await _send(alice, room, "third")
        assert (await _counts(hs, muted, room))["notification_count"] == 2
