"""Bulk evaluation in a 1,000-member room: every local member but the sender gets a row,
mentions highlight only their target, and the cost per (event, member) is reported
(run with ``-s`` to see it)."""

from __future__ import annotations

import time

from tests.directory.helpers import make_room
from tests.server.harness import running_server

from hs.storage.database import DatabaseConfig
from hs.storage.events import EventToPersist, StateAfter
from hs.storage.push import ActionRow

ROOM = "!big:test.local"
MEMBERS = 1000
MESSAGES = 50


async def test_bulk_evaluation_1000_members(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        creator = "@creator:test.local"
        members = [f"@user{i}:test.local" for i in range(MEMBERS - 1)]
        room = await make_room(hs, ROOM, creator, *members)
        push = hs.services.push
        target = members[7]

        async def send_batch(count: int) -> float:
            """Persist ``count`` messages as one batch; seconds spent in the push hook."""
            pdus = [room.rb.message(f"message {i}", sender=creator) for i in range(count)]
            pdus[0].data["content"]["m.mentions"] = {"user_ids": [target]}
            batch = []
            for pdu in pdus:
                batch.append(EventToPersist(pdu, state_before=StateAfter(room._last or "")))
                room._last = pdu.event_id
            results = await hs.services.events.persist_events(batch)
            started = time.perf_counter()
            await push.on_persisted(ROOM, batch, results)
            return time.perf_counter() - started

        # The first batch compiles every member's rules (cold cache); later ones reuse them.
        cold = await send_batch(1)
        push.actions.evaluations = 0
        push.actions.eval_seconds = 0.0
        total = await send_batch(MESSAGES)
        evals = push.actions.evaluations
        assert evals == MESSAGES * (MEMBERS - 1)
        per_eval_us = push.actions.eval_seconds / evals * 1e6
        per_pair_us = total / evals * 1e6
        print(f"\n[{database_config.dialect}] {MEMBERS} members x {MESSAGES} events: "
              f"evaluation {per_eval_us:.2f} us/(event, member); whole hook incl. reads and "
              f"batched insert {per_pair_us:.2f} us/(event, member), "
              f"{total / MESSAGES * 1e3:.2f} ms/event; cold first event {cold * 1e3:.0f} ms")

        counts = await push.unread_counts(target, [ROOM])
        assert counts[ROOM]["notification_count"] == MESSAGES + 1
        assert counts[ROOM]["highlight_count"] == 2
        other = await push.unread_counts(members[100], [ROOM])
        assert other[ROOM]["notification_count"] == MESSAGES + 1
        assert other[ROOM]["highlight_count"] == 0
        assert (await push.unread_counts(creator, [ROOM]))[ROOM]["notification_count"] == 0


async def test_unread_counts_many_rooms_one_query(database_config: DatabaseConfig) -> None:
    """Counts for 200 rooms x 25 unread rows (with receipts in half the rooms) come from
    one query; the time is printed with ``-s``."""
    async with running_server(database_config) as hs:
        store = hs.services.push.actions.store
        user = "@reader:test.local"
        rooms = [f"!r{i}:test.local" for i in range(200)]
        rows = [ActionRow(user, room, i * 100 + j + 1, f"$e{i}_{j}", "main", 1, int(j == 0),
                          '["notify"]', 0) for i, room in enumerate(rooms) for j in range(25)]
        await store.add(rows)
        receipts = hs.services.receipts.store
        for i, room in enumerate(rooms[::2]):
            # Read 10 of the 25 rows in every other room.
            await receipts.insert_receipt(room, "m.read", user, None, f"$e{2 * i}_9",
                                          2 * i * 100 + 10, 0)
        calls = 0
        real = store.db.fetchall

        async def counting(*args: object) -> object:
            nonlocal calls
            calls += 1
            return await real(*args)  # type: ignore[arg-type]

        store.db.fetchall = counting  # type: ignore[method-assign]
        started = time.perf_counter()
        counts = await hs.services.push.unread_counts(user, rooms)
        elapsed = time.perf_counter() - started
        store.db.fetchall = real  # type: ignore[method-assign]
        assert calls == 1
        assert counts[rooms[0]]["notification_count"] == 15
        assert counts[rooms[0]]["highlight_count"] == 0
        assert counts[rooms[1]]["notification_count"] == 25
        assert counts[rooms[1]]["highlight_count"] == 1
        print(f"\n[{database_config.dialect}] unread_counts, 200 rooms / 5000 rows: "
              f"{elapsed * 1e3:.1f} ms")
