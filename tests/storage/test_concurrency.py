"""Many writers and readers at once: the single SQLite writer and the PostgreSQL pool."""

from __future__ import annotations

import asyncio

import pytest

from hs.storage.database import Database, DatabaseConfig, open_database


async def _open(config: DatabaseConfig) -> Database:
    db = await open_database(config)
    await db.execute("CREATE TABLE counters (name TEXT NOT NULL PRIMARY KEY, n BIGINT NOT NULL)")
    await db.execute("CREATE TABLE log (writer INTEGER NOT NULL, seq INTEGER NOT NULL)")
    await db.execute("INSERT INTO counters (name, n) VALUES (?, ?)", "c", 0)
    return db


async def test_concurrent_transactions_do_not_lose_updates(
    database_config: DatabaseConfig,
) -> None:
    """Read-modify-write transactions from 50 tasks: every increment survives."""
    db = await _open(database_config)
    lock_clause = " FOR UPDATE" if db.dialect == "postgres" else ""
    try:

        async def bump(writer: int) -> None:
            for seq in range(4):
                async with db.transaction() as txn:
                    n = await txn.fetchval(
                        "SELECT n FROM counters WHERE name = ?" + lock_clause, "c"
                    )
                    await asyncio.sleep(0)  # let other tasks try to interleave
                    await txn.execute("UPDATE counters SET n = ? WHERE name = ?", n + 1, "c")
                    await txn.execute("INSERT INTO log (writer, seq) VALUES (?, ?)", writer, seq)

        await asyncio.gather(*(bump(w) for w in range(50)))
        assert await db.fetchval("SELECT n FROM counters WHERE name = ?", "c") == 200
        assert await db.fetchval("SELECT count(*) FROM log") == 200
    finally:
        await db.close()


async def test_concurrent_plain_writes_and_reads(database_config: DatabaseConfig) -> None:
    """Autocommit writes racing with reads: readers see monotonically growing counts."""
    db = await _open(database_config)
    try:
        seen: list[int] = []

        async def write(writer: int) -> None:
            for seq in range(10):
                await db.execute("INSERT INTO log (writer, seq) VALUES (?, ?)", writer, seq)

        async def read() -> None:
            last = 0
            for _ in range(20):
                count = await db.fetchval("SELECT count(*) FROM log")
                assert count >= last
                last = count
                seen.append(count)

        await asyncio.gather(*(write(w) for w in range(20)), *(read() for _ in range(8)))
        assert await db.fetchval("SELECT count(*) FROM log") == 200
        assert len(seen) == 160
    finally:
        await db.close()


async def test_read_after_write_is_visible(database_config: DatabaseConfig) -> None:
    """A read issued after a write returns sees it (SQLite readers use other connections)."""
    db = await _open(database_config)
    try:
        for k in range(30):
            await db.execute("UPDATE counters SET n = ? WHERE name = ?", k, "c")
            assert await db.fetchval("SELECT n FROM counters WHERE name = ?", "c") == k
    finally:
        await db.close()


async def test_readers_proceed_during_a_long_transaction(
    database_config: DatabaseConfig,
) -> None:
    """An open write transaction blocks other writers, not readers; they see committed data."""
    db = await _open(database_config)
    try:
        started = asyncio.Event()
        release = asyncio.Event()

        async def long_writer() -> None:
            async with db.transaction() as txn:
                await txn.execute("UPDATE counters SET n = ? WHERE name = ?", 42, "c")
                started.set()
                await release.wait()

        task = asyncio.create_task(long_writer())
        await started.wait()
        reads = await asyncio.wait_for(
            asyncio.gather(
                *(db.fetchval("SELECT n FROM counters WHERE name = ?", "c") for _ in range(10))
            ),
            timeout=5,
        )
        assert reads == [0] * 10  # the uncommitted 42 is invisible
        release.set()
        await task
        assert await db.fetchval("SELECT n FROM counters WHERE name = ?", "c") == 42
    finally:
        await db.close()


async def test_cancelled_transaction_rolls_back(database_config: DatabaseConfig) -> None:
    db = await _open(database_config)
    try:
        inside = asyncio.Event()

        async def doomed() -> None:
            async with db.transaction() as txn:
                await txn.execute("UPDATE counters SET n = ? WHERE name = ?", 7, "c")
                inside.set()
                await asyncio.sleep(30)

        task = asyncio.create_task(doomed())
        await inside.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await db.fetchval("SELECT n FROM counters WHERE name = ?", "c") == 0
        async with db.transaction() as txn:
            await txn.execute("UPDATE counters SET n = ? WHERE name = ?", 8, "c")
        assert await db.fetchval("SELECT n FROM counters WHERE name = ?", "c") == 8
    finally:
        await db.close()
