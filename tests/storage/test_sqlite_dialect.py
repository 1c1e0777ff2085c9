"""SQLite specifics: pragmas, routing, durability under SIGKILL, misuse detection."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hs.storage.database import DatabaseConfig, DatabaseError, open_database
from hs.storage.dialects.sqlite import MAX_PADDED_PARAMS, is_read_only, pad_in_lists, split_script

SRC = Path(__file__).resolve().parents[2] / "src"


def _config(tmp_path: Path, **kw: object) -> DatabaseConfig:
    return DatabaseConfig(dialect="sqlite", sqlite_path=str(tmp_path / "hs.db"), **kw)  # type: ignore[arg-type]


async def test_synchronous_full_on_request(tmp_path: Path) -> None:
    db = await open_database(_config(tmp_path, sqlite_synchronous="FULL"))
    try:
        async with db.transaction() as txn:
            assert await txn.fetchval("PRAGMA synchronous") == 2
    finally:
        await db.close()


async def test_pragmas(tmp_path: Path) -> None:
    db = await open_database(_config(tmp_path))
    try:
        async with db.transaction() as txn:
            assert await txn.fetchval("PRAGMA journal_mode") == "wal"
            assert await txn.fetchval("PRAGMA foreign_keys") == 1
            assert await txn.fetchval("PRAGMA synchronous") == 1  # NORMAL
            assert await txn.fetchval("PRAGMA busy_timeout") == 10_000
            assert await txn.fetchval("PRAGMA wal_autocheckpoint") == 0  # see below
    finally:
        await db.close()


async def test_cheap_reads_run_inline_and_slow_ones_on_threads(tmp_path: Path) -> None:
    db = await open_database(_config(tmp_path))
    try:
        await db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
        await db.executemany("INSERT INTO t VALUES (?, ?)", [(f"k{i}", i) for i in range(50)])
        cheap = "SELECT v FROM t WHERE k = ?"
        assert await db.fetchval(cheap, "k7") == 7  # first run: on a thread, timed
        before = db.inline_reads
        assert [await db.fetchval(cheap, f"k{i}") for i in range(10)] == list(range(10))
        assert db.inline_reads >= before + 5  # once its timings settle below the budget
        slow = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                " WHERE i < 200000) SELECT count(*) FROM n WHERE i > ?")
        before = db.inline_reads
        for _ in range(3):
            assert await db.fetchval(slow, 0) == 200_000
        assert db.inline_reads == before  # never blocks the event loop
        # Writes still reach every reader (inline or not) once committed.
        await db.execute("UPDATE t SET v = ? WHERE k = ?", 70, "k7")
        assert await db.fetchval(cheap, "k7") == 70
    finally:
        await db.close()


async def test_checkpoints_run_in_the_background(tmp_path: Path, monkeypatch) -> None:
    """The writer never checkpoints in its commits (that stalled writes for tens of
    milliseconds); a background connection does, in SQLite's non-blocking mode."""
    from hs.storage.dialects import sqlite as dialect

    monkeypatch.setattr(dialect, "CHECKPOINT_INTERVAL_S", 0.05)
    db = await open_database(_config(tmp_path))
    try:
        await db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
        await db.executemany("INSERT INTO t VALUES (?, ?)", [(i, "x" * 500) for i in range(2000)])
        for _ in range(100):
            if db.checkpoints >= 2:
                break
            await asyncio.sleep(0.05)
        assert db.checkpoints >= 2
        assert await db.fetchval("SELECT count(*) FROM t") == 2000
    finally:
        await db.close()


def test_read_only_classification() -> None:
    assert is_read_only("SELECT 1")
    assert is_read_only("  -- comment\n select x from t")
    assert is_read_only("WITH a AS (SELECT 1) SELECT * FROM a")
    assert not is_read_only("WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a")
    assert not is_read_only("INSERT INTO t VALUES (1)")
    assert not is_read_only("UPDATE t SET a = 1 RETURNING a")
    assert not is_read_only("PRAGMA journal_mode")


def test_in_lists_are_padded_to_powers_of_two() -> None:
    sql, args = pad_in_lists(
        "SELECT a FROM t WHERE x = ? AND y IN (?, ?, ?) AND z NOT IN (?, ?, ?, ?, ?) LIMIT ?",
        (0, 1, 2, 3, 4, 5, 6, 7, 8, 9))
    assert sql == ("SELECT a FROM t WHERE x = ? AND y IN (?, ?, ?, ?)"
                   " AND z NOT IN (?, ?, ?, ?, ?, ?, ?, ?) LIMIT ?")
    assert list(args) == [0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 8, 8, 8, 9]
    # Every length up to 16 shares one of four texts.
    texts = {pad_in_lists(f"SELECT a FROM t WHERE y IN ({', '.join('?' * n)})",
                          list(range(n)))[0] for n in range(2, 17)}
    assert len(texts) == 4


@pytest.mark.parametrize(("sql", "args"), [
    ("SELECT a FROM t WHERE y IN (?, ?, ?, ?)", (1, 2, 3, 4)),  # already a power of two
    ("SELECT a FROM t WHERE y = ?", (1,)),
    ("SELECT a FROM t WHERE y IN (?, ?, ?) AND b = '?'", (1, 2, 3)),  # a ? in a literal
    ("SELECT a FROM t WHERE y IN (?1, ?2, ?3)", (1, 2, 3)),  # numbered parameters
    ("INSERT INTO t VALUES (?, ?, ?)", (1, 2, 3)),  # not an IN list
    ("SELECT a FROM t WHERE y IN (?, ?, ?)", (1, 2)),  # wrong count: SQLite reports it
    (f"SELECT a FROM t WHERE y IN ({', '.join('?' * (MAX_PADDED_PARAMS - 2))})",
     tuple(range(MAX_PADDED_PARAMS - 2))),  # padding would pass the parameter limit
])
def test_statements_left_unpadded(sql: str, args: tuple[object, ...]) -> None:
    assert pad_in_lists(sql, args) == (sql, args)


async def test_padded_in_lists_return_the_same_rows(tmp_path: Path) -> None:
    db = await open_database(_config(tmp_path))
    try:
        await db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER)")
        await db.executemany("INSERT INTO t VALUES (?, ?)", [(i, i % 7) for i in range(40)])
        for n in (2, 3, 5, 9, 17):
            keys = list(range(0, 2 * n, 2))
            marks = ", ".join("?" * n)
            sql = f"SELECT k FROM t WHERE k IN ({marks}) AND v != ? ORDER BY k"
            want = [k for k in keys if k % 7 != 3]
            assert [r[0] for r in await db.fetchall(sql, *keys, 3)] == want
            with pytest.raises(RuntimeError):
                async with db.transaction() as txn:
                    assert [r[0] for r in await txn.fetchall(sql, *keys, 3)] == want
                    assert await txn.execute(f"DELETE FROM t WHERE k IN ({marks})",
                                             *keys) == n
                    raise RuntimeError("roll back")
    finally:
        await db.close()


def test_split_script_keeps_trigger_bodies() -> None:
    script = """
    CREATE TABLE a (x INTEGER); -- first
    CREATE TRIGGER t AFTER INSERT ON a BEGIN
        INSERT INTO a VALUES (1);
        INSERT INTO a VALUES (2);
    END;
    /* a comment only */;
    INSERT INTO a VALUES (';')
    """
    parts = split_script(script)
    assert len(parts) == 3
    assert "INSERT INTO a VALUES (2);" in parts[1]
    assert parts[2].strip().startswith("INSERT INTO a VALUES (';')")


async def test_database_call_inside_own_transaction_raises(tmp_path: Path) -> None:
    """Using the Database (not the Transaction) inside a transaction would deadlock."""
    db = await open_database(_config(tmp_path))
    try:
        await db.execute("CREATE TABLE t (x INTEGER)")
        with pytest.raises(DatabaseError, match="Transaction object"):
            async with db.transaction():
                await db.execute("INSERT INTO t VALUES (?)", 1)
        with pytest.raises(DatabaseError, match="nested"):
            async with db.transaction(), db.transaction():
                pass
        assert await db.fetchval("SELECT count(*) FROM t") == 0
    finally:
        await db.close()


async def test_task_spawned_in_a_transaction_waits_for_it(tmp_path: Path) -> None:
    """Only the transaction's own task is refused; other tasks queue for the writer."""
    db = await open_database(_config(tmp_path))
    try:
        await db.execute("CREATE TABLE t (x INTEGER)")
        async with db.transaction() as txn:
            await txn.execute("INSERT INTO t VALUES (?)", 1)
            child = asyncio.create_task(db.execute("INSERT INTO t VALUES (?)", 2))
            await asyncio.sleep(0.02)
            assert not child.done()
        assert await child == 1
        assert await db.fetchall("SELECT x FROM t ORDER BY x") == [(1,), (2,)]
    finally:
        await db.close()


async def test_memory_database_works_without_readers(tmp_path: Path) -> None:
    db = await open_database(DatabaseConfig(dialect="sqlite", sqlite_path=":memory:"))
    try:
        await db.execute("CREATE TABLE t (x INTEGER)")
        await db.executemany("INSERT INTO t VALUES (?)", [(1,), (2,)])
        assert await db.fetchval("SELECT sum(x) FROM t") == 3
        assert db.pool_stats()["size"] == 1
    finally:
        await db.close()


_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from hs.storage.database import DatabaseConfig, open_database

    async def main(path):
        db = await open_database(DatabaseConfig(dialect="sqlite", sqlite_path=path))
        await db.execute("CREATE TABLE IF NOT EXISTS acked (k INTEGER PRIMARY KEY)")
        k = 0
        while True:
            k += 1
            async with db.transaction() as txn:
                await txn.execute("INSERT INTO acked (k) VALUES (?)", k)
            print(k, flush=True)  # acknowledged only after COMMIT returned

    asyncio.run(main(sys.argv[1]))
    """
)


async def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    path = str(tmp_path / "hs.db")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, path], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    acked = 0
    try:
        for line in proc.stdout:
            acked = int(line)
            if acked >= 40:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert acked >= 40, "the writer process died early"
    db = await open_database(DatabaseConfig(dialect="sqlite", sqlite_path=path))
    try:
        stored = await db.fetchval("SELECT max(k) FROM acked")
        assert stored >= acked
        assert await db.fetchval("SELECT count(*) FROM acked") == stored
    finally:
        await db.close()


async def test_transaction_waits_for_another_process_holding_the_write_lock(
        tmp_path: Path) -> None:
    """BEGIN runs inline when the lock is free; when another connection (another process:
    a CLI tool) holds it, the transaction waits on the writer's thread instead of failing
    or blocking the event loop."""
    import sqlite3
    import threading
    import time

    db = await open_database(_config(tmp_path))
    try:
        await db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)")
        other = sqlite3.connect(str(tmp_path / "hs.db"), isolation_level=None,
                                check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO t VALUES (1)")

        def release() -> None:
            time.sleep(0.3)
            other.execute("COMMIT")

        threading.Thread(target=release).start()
        ticks = 0

        async def ticker() -> None:  # the loop keeps running while the writer waits
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        tick_task = asyncio.ensure_future(ticker())
        start = time.monotonic()
        async with db.transaction() as txn:
            await txn.execute("INSERT INTO t VALUES (2)")
        waited = time.monotonic() - start
        tick_task.cancel()
        other.close()
        assert waited >= 0.2
        assert ticks >= 10
        assert await db.fetchval("SELECT count(*) FROM t") == 2
    finally:
        await db.close()
