"""Stream position generators: ordering, out-of-order completion, several processes."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from hs.storage.database import DatabaseConfig, open_database
from hs.storage.streams import STREAMS, StreamIdGenerator, Streams


async def test_positions_increase_and_current_follows(database_config: DatabaseConfig) -> None:
    db = await open_database(database_config)
    try:
        gen = await StreamIdGenerator.create(db, "events")
        assert gen.current() == 0
        seen = []
        for _ in range(3):
            async with gen.next() as pos:
                assert gen.current() < pos
                seen.append(pos)
            assert gen.current() == pos
        assert seen == sorted(seen) and len(set(seen)) == 3
        async with gen.next_many(4) as batch:
            assert batch == sorted(batch) and batch[0] > seen[-1]
        assert gen.current() == batch[-1]
    finally:
        await db.close()


async def test_out_of_order_completion(database_config: DatabaseConfig) -> None:
    db = await open_database(database_config)
    try:
        gen = await StreamIdGenerator.create(db, "receipts")
        slow_started, slow_release = asyncio.Event(), asyncio.Event()

        async def slow() -> int:
            async with gen.next() as pos:
                slow_started.set()
                await slow_release.wait()
            return pos

        task = asyncio.create_task(slow())
        await slow_started.wait()
        fast = []
        for _ in range(3):
            async with gen.next() as pos:
                fast.append(pos)
        # The slow writer holds the lowest position: readers must not pass it.
        slow_pos = min(fast) - 1
        assert gen.current() == slow_pos - 1
        slow_release.set()
        assert await task == slow_pos
        assert gen.current() == max(fast)
    finally:
        await db.close()


async def test_abandoned_position_completes(database_config: DatabaseConfig) -> None:
    db = await open_database(database_config)
    try:
        gen = await StreamIdGenerator.create(db, "to_device")
        with pytest.raises(RuntimeError):
            async with gen.next() as lost:
                raise RuntimeError("write failed")
        assert gen.current() == lost
        async with gen.next() as pos:
            assert pos > lost
        assert gen.current() == pos
    finally:
        await db.close()


async def test_positions_persist_across_restart(database_config: DatabaseConfig) -> None:
    db = await open_database(database_config)
    try:
        gen = await StreamIdGenerator.create(db, "account_data")
        for _ in range(5):
            async with gen.next() as last:
                pass
    finally:
        await db.close()
    db = await open_database(database_config)
    try:
        gen = await StreamIdGenerator.create(db, "account_data")
        assert gen.current() == last
        async with gen.next() as pos:
            assert pos > last
    finally:
        await db.close()


async def test_wait_for_and_listeners(database_config: DatabaseConfig) -> None:
    db = await open_database(database_config)
    try:
        gen = await StreamIdGenerator.create(db, "typing")
        heard: list[tuple[str, int]] = []
        gen.add_listener(lambda name, pos: heard.append((name, pos)))
        assert not await gen.wait_for(1, timeout=0.05)
        waiter = asyncio.create_task(gen.wait_for(2, timeout=10))
        async with gen.next_many(2):
            pass
        assert await waiter
        assert heard == [("typing", 2)]
        assert await gen.wait_for(1)
    finally:
        await db.close()


async def test_concurrent_allocations_are_unique(database_config: DatabaseConfig) -> None:
    db = await open_database(database_config)
    try:
        gen = await StreamIdGenerator.create(db, "presence")

        async def write() -> int:
            async with gen.next() as pos:
                await asyncio.sleep(0)
                return pos

        got = await asyncio.gather(*(write() for _ in range(60)))
        assert len(set(got)) == 60
        assert gen.current() == max(got)
    finally:
        await db.close()


async def test_streams_container(database_config: DatabaseConfig) -> None:
    db = await open_database(database_config)
    try:
        streams = await Streams.load(db)
        assert streams.names() == list(STREAMS)
        async with streams["push_rules"].next() as pos:
            pass
        assert streams.positions()["push_rules"] == pos
        assert (await streams.refresh_all())["events"] == 0
        assert "device_lists" in streams
        with pytest.raises(ValueError):
            await StreamIdGenerator.create(db, "Bad-Name")
    finally:
        await db.close()


async def test_two_processes_share_a_stream(fresh_pg_config: DatabaseConfig) -> None:
    """Two generators on separate pools (two processes): neither skips the other's writes."""
    db_a = await open_database(fresh_pg_config)
    db_b = await open_database(fresh_pg_config)
    try:
        gen_a = await StreamIdGenerator.create(db_a, "events", "worker_a")
        gen_b = await StreamIdGenerator.create(db_b, "events", "worker_b")
        a_started, a_release = asyncio.Event(), asyncio.Event()

        async def slow_a() -> int:
            async with gen_a.next() as pos:
                a_started.set()
                await a_release.wait()
            return pos

        task = asyncio.create_task(slow_a())
        await a_started.wait()
        b_positions = []
        for _ in range(3):
            async with gen_b.next() as pos:
                b_positions.append(pos)
        a_pos = min(b_positions) - 1
        # B has completed 3 positions, but A's earlier one is still in flight.
        assert gen_b.current() == a_pos - 1
        assert await gen_a.refresh() == a_pos - 1
        a_release.set()
        assert await task == a_pos
        assert gen_a.current() == max(b_positions)  # A refreshed when it completed
        assert gen_b.current() == a_pos - 1  # B only learns by reading the persisted state
        assert await gen_b.refresh() == max(b_positions)
    finally:
        await db_a.close()
        await db_b.close()


async def test_crashed_instance_rows_are_discarded(fresh_pg_config: DatabaseConfig) -> None:
    db = await open_database(fresh_pg_config)
    try:
        gen = await StreamIdGenerator.create(db, "events", "worker_a")
        # Simulate a process that allocated and died: its in-flight row stays behind.
        dead = await db.fetchval("SELECT hs_stream_allocate(?, ?, ?)", "events", "worker_x", 1)
        async with gen.next() as pos:
            pass
        assert gen.current() == dead - 1
        # The same instance restarting discards its own leftovers...
        await db.fetchval("SELECT hs_stream_allocate(?, ?, ?)", "events", "worker_a", 1)
        restarted = await StreamIdGenerator.create(db, "events", "worker_a")
        assert restarted.current() == dead - 1
        # ...and an operator can abandon a worker that is gone for good.
        await restarted.forget_instance("worker_x")
        assert restarted.current() >= pos + 1
        assert await db.fetchval("SELECT count(*) FROM stream_inflight") == 0
    finally:
        await db.close()


@pytest.mark.parametrize("seed", [1, 2])
async def test_random_completion_order_never_overtakes(
    database_config: DatabaseConfig, seed: int
) -> None:
    """Writers finish in random order; current() never passes a position still in flight."""
    rng = random.Random(seed)
    db = await open_database(database_config)
    try:
        gen = await StreamIdGenerator.create(db, "device_lists")
        in_flight: set[int] = set()
        done: set[int] = set()

        async def writer() -> None:
            async with gen.next() as pos:
                in_flight.add(pos)
                for _ in range(rng.randrange(4)):
                    await asyncio.sleep(0)
                in_flight.discard(pos)
                done.add(pos)
            current = gen.current()
            assert all(p > current for p in in_flight)
            assert all(p in done for p in range(1, current + 1))

        await asyncio.gather(*(writer() for _ in range(40)))
        assert gen.current() == max(done) == 40
    finally:
        await db.close()


async def test_notify_wakes_other_processes(fresh_pg_config: DatabaseConfig) -> None:
    """B learns of A's writes through NOTIFY, also after its listening connection drops."""
    db_a = await open_database(fresh_pg_config)
    db_b = await open_database(fresh_pg_config)
    streams_b = await Streams.load(db_b, "worker_b", ["events"])
    try:
        gen_a = await StreamIdGenerator.create(db_a, "events", "worker_a")
        await streams_b.listen()
        async with gen_a.next() as first:
            pass
        assert await streams_b["events"].wait_for(first, timeout=5)

        # Kill B's listening connection; it reconnects and catches up.
        killed = await db_a.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
        )
        assert killed == 1
        async with gen_a.next() as second:
            pass
        assert await streams_b["events"].wait_for(second, timeout=10)
        async with gen_a.next() as third:
            pass
        assert await streams_b["events"].wait_for(third, timeout=5)
    finally:
        await streams_b.close()
        await db_a.close()
        await db_b.close()


async def test_listen_is_a_no_op_on_sqlite(tmp_path: Path) -> None:
    db = await open_database(DatabaseConfig(dialect="sqlite", sqlite_path=str(tmp_path / "a.db")))
    try:
        streams = await Streams.load(db, names=["events"])
        await streams.listen()
        await streams.close()
    finally:
        await db.close()


async def test_drawing_ahead_overlaps_the_next_allocation(
        fresh_pg_config: DatabaseConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """``reserve_ahead``: a write's first position was drawn during the previous write,
    never holds back the writer's own positions, and is released when nobody takes it
    (idle, a cancelled caller, shutdown)."""
    import hs.storage.streams as streams_mod

    monkeypatch.setattr(streams_mod, "RESERVE_IDLE_S", 0.2)
    db = await open_database(fresh_pg_config)

    async def inflight() -> list[int]:
        rows = await db.fetchall("SELECT position FROM stream_inflight ORDER BY position")
        return [int(r[0]) for r in rows]

    try:
        gen = await StreamIdGenerator.create(db, "events", "main")
        gen.reserve_ahead = True
        unused: list[int] = []
        gen.unused_listeners.append(unused.extend)
        async with gen.next_many(2, ahead=True) as first:
            pass
        assert gen.current() == first[-1]
        await asyncio.sleep(0.05)
        drawn = await inflight()
        assert len(drawn) == 1 and drawn[0] > first[-1]  # the next write's, drawn already
        async with gen.next_many(3, ahead=True) as second:
            assert second[0] == drawn[0] and second == sorted(second)
        # The writer's own positions are readable while the next one waits in flight.
        assert gen.current() == second[-1] == await gen.refresh()
        # Unused: released after the idle time, and the stream's current moves past it.
        await asyncio.sleep(0.4)
        assert await inflight() == []
        assert len(unused) == 1 and unused[0] > second[-1]  # told before it completed
        async with gen.next_many(1, ahead=True) as third:
            pass
        await asyncio.sleep(0.05)
        # A caller cancelled while the drawn position is still being allocated.
        real, gate = gen._allocate, asyncio.Event()

        async def slow(count: int) -> list[int]:
            await gate.wait()
            return await real(count)

        gen._allocate = slow  # type: ignore[method-assign]
        async with gen.next_many(1, ahead=True) as fourth:
            assert fourth[0] > third[0]  # drawn after ``third``; the next one now waits
        await asyncio.sleep(0.02)
        waiting = asyncio.create_task(gen.next_many(1, ahead=True).__aenter__())
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        gen._allocate = real  # type: ignore[method-assign]
        gate.set()
        await asyncio.sleep(0.1)
        assert await inflight() == []
        # Shutdown completes whatever was drawn ahead.
        async with gen.next_many(1, ahead=True) as last:
            assert last[0] > third[0]
        await asyncio.sleep(0.05)
        await Streams(db, {"events": gen}).close()
        assert await inflight() == []
        assert len(unused) == 3 and unused[-1] > last[0]
        assert await gen.refresh() > last[0]
    finally:
        await db.close()


async def test_a_notification_carries_the_position(
        fresh_pg_config: DatabaseConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    """NOTIFY hs_streams says the new current position: a listener applies it without
    reading it back, and never past positions it has in flight itself (a writer's own
    statement may complete them in the database before the writer recorded its batch)."""
    db_a = await open_database(fresh_pg_config)
    db_b = await open_database(fresh_pg_config)
    streams_b = await Streams.load(db_b, "worker_b", ["events"])
    reads: list[str] = []
    try:
        gen_a = await StreamIdGenerator.create(db_a, "events", "worker_a")
        gen_b = streams_b["events"]
        await streams_b.listen()
        real_refresh = StreamIdGenerator.refresh

        async def counting(self: StreamIdGenerator) -> int:
            reads.append(self.name)
            return await real_refresh(self)

        monkeypatch.setattr(StreamIdGenerator, "refresh", counting)
        for _ in range(3):
            async with gen_a.next_many(2) as done:
                pass
            assert await gen_b.wait_for(done[-1], timeout=5)
            assert gen_b.current() == done[-1]
        assert reads == []

        # B holds a position in flight; A's later writes (and the database's current,
        # once B's row is completed behind B's back) stop below it until B completes it.
        async with gen_b.next() as held:
            async with gen_a.next() as after:
                pass
            await db_a.fetchval("SELECT hs_stream_complete('events', ?::BIGINT[], NULL)",
                                [held])
            async with gen_a.next() as later:
                pass
            await asyncio.sleep(0.3)  # the notifications arrive
            assert gen_b.current() == held - 1
            assert await gen_b.refresh() == held - 1
        assert gen_b.current() >= later > after > held

        # A bare stream name (an older server's payload) still makes B read it back.
        async with gen_a.next() as last:
            pass
        await db_a.execute("SELECT pg_notify('hs_streams', 'events')")
        assert await gen_b.wait_for(last, timeout=5)
        await asyncio.sleep(0.3)
        assert reads
    finally:
        await streams_b.close()
        await db_a.close()
        await db_b.close()
