"""The Database API, run identically against SQLite and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from hs.storage.database import (
    Database,
    DatabaseConfig,
    DatabaseError,
    ForeignKeyViolation,
    Transaction,
    UniqueViolation,
    open_database,
    placeholders,
)
from hs.storage.migrations import render_sql

SCHEMA = """
CREATE TABLE items (
    id TEXT NOT NULL PRIMARY KEY,
    n BIGINT NOT NULL,
    flag BOOLEAN NOT NULL DEFAULT FALSE,
    data {BYTES},
    note TEXT
);
CREATE TABLE children (
    child_id TEXT NOT NULL PRIMARY KEY,
    item_id TEXT NOT NULL REFERENCES items (id)
);
"""


async def _open(config: DatabaseConfig) -> Database:
    db = await open_database(config)
    async with db.transaction() as txn:
        await txn.execute_script(render_sql(SCHEMA, db.dialect))
    return db


async def test_execute_returns_rowcount(database_config: DatabaseConfig) -> None:
    db = await _open(database_config)
    try:
        assert await db.execute("INSERT INTO items (id, n) VALUES (?, ?)", "a", 1) == 1
        assert await db.execute("INSERT INTO items (id, n) VALUES (?, ?)", "b", 2) == 1
        assert await db.execute("UPDATE items SET n = n + ?", 10) == 2
        assert await db.execute("DELETE FROM items WHERE id = ?", "zzz") == 0
        assert await db.execute("DELETE FROM items WHERE n > ?", 11) == 1
        assert await db.fetchall("SELECT id, n FROM items") == [("a", 11)]
    finally:
        await db.close()


async def test_fetch_methods_return_tuples(database_config: DatabaseConfig) -> None:
    db = await _open(database_config)
    try:
        await db.executemany(
            "INSERT INTO items (id, n, flag, data, note) VALUES (?, ?, ?, ?, ?)",
            [("a", 1, True, b"\x00\xff", None), ("b", 2, False, None, "it's ?")],
        )
        rows = await db.fetchall("SELECT id, n, flag, data, note FROM items ORDER BY id")
        assert rows == [("a", 1, True, b"\x00\xff", None), ("b", 2, False, None, "it's ?")]
        assert all(type(r) is tuple for r in rows)
        assert type(rows[0][2]) is bool and type(rows[1][2]) is bool
        assert isinstance(rows[0][3], bytes)

        assert await db.fetchone("SELECT id, n FROM items WHERE id = ?", "b") == ("b", 2)
        assert await db.fetchone("SELECT id FROM items WHERE id = ?", "nope") is None
        assert await db.fetchval("SELECT n FROM items WHERE id = ?", "a") == 1
        assert await db.fetchval("SELECT n FROM items WHERE id = ?", "nope") is None
        assert await db.fetchval("SELECT count(*) FROM items") == 2
        assert await db.fetchall("SELECT id FROM items WHERE n > ?", 100) == []
        # A literal '?' is not a placeholder; the real one after it still is.
        assert await db.fetchval("SELECT n FROM items WHERE note = 'it''s ?' AND n = ?", 2) == 2
    finally:
        await db.close()


async def test_in_list_placeholders(database_config: DatabaseConfig) -> None:
    db = await _open(database_config)
    try:
        await db.executemany(
            "INSERT INTO items (id, n) VALUES (?, ?)", [(f"i{k}", k) for k in range(5)]
        )
        ids = ["i1", "i3", "i4"]
        rows = await db.fetchall(
            f"SELECT n FROM items WHERE id IN ({placeholders(len(ids))}) ORDER BY n", *ids
        )
        assert rows == [(1,), (3,), (4,)]
    finally:
        await db.close()


async def test_returning_and_upsert(database_config: DatabaseConfig) -> None:
    db = await _open(database_config)
    try:
        upsert = (
            "INSERT INTO items (id, n) VALUES (?, ?)"
            " ON CONFLICT (id) DO UPDATE SET n = items.n + excluded.n RETURNING n"
        )
        assert await db.fetchval(upsert, "a", 5) == 5
        assert await db.fetchval(upsert, "a", 5) == 10
        assert await db.fetchone("UPDATE items SET n = 0 WHERE id = ? RETURNING id, n", "a") == (
            "a",
            0,
        )
        assert await db.fetchval("SELECT n FROM items WHERE id = ?", "a") == 0
    finally:
        await db.close()


async def test_transaction_commits(database_config: DatabaseConfig) -> None:
    db = await _open(database_config)
    try:
        async with db.transaction() as txn:
            await txn.execute("INSERT INTO items (id, n) VALUES (?, ?)", "a", 1)
            await txn.executemany(
                "INSERT INTO items (id, n) VALUES (?, ?)", [("b", 2), ("c", 3)]
            )
            # The transaction sees its own writes.
            assert await txn.fetchval("SELECT count(*) FROM items") == 3
            assert await txn.fetchone("SELECT n FROM items WHERE id = ?", "c") == (3,)
            assert len(await txn.fetchall("SELECT id FROM items")) == 3
        assert await db.fetchval("SELECT sum(n) FROM items") == 6
    finally:
        await db.close()


async def test_transaction_rolls_back_on_exception(database_config: DatabaseConfig) -> None:
    db = await _open(database_config)
    try:
        await db.execute("INSERT INTO items (id, n) VALUES (?, ?)", "keep", 1)
        with pytest.raises(RuntimeError, match="boom"):
            async with db.transaction() as txn:
                await txn.execute("INSERT INTO items (id, n) VALUES (?, ?)", "lost", 2)
                await txn.execute("UPDATE items SET n = 99 WHERE id = ?", "keep")
                raise RuntimeError("boom")
        assert await db.fetchall("SELECT id, n FROM items") == [("keep", 1)]
        # The database is still usable for writes after the rollback.
        async with db.transaction() as txn:
            await txn.execute("INSERT INTO items (id, n) VALUES (?, ?)", "next", 3)
        assert await db.fetchval("SELECT count(*) FROM items") == 2
    finally:
        await db.close()


async def test_finished_transaction_refuses_statements(database_config: DatabaseConfig) -> None:
    db = await _open(database_config)
    try:
        async with db.transaction() as txn:
            await txn.execute("INSERT INTO items (id, n) VALUES (?, ?)", "a", 1)
        with pytest.raises(DatabaseError):
            await txn.execute("INSERT INTO items (id, n) VALUES (?, ?)", "b", 1)
    finally:
        await db.close()


async def test_unique_violation_is_mapped(database_config: DatabaseConfig) -> None:
    db = await _open(database_config)
    try:
        await db.execute("INSERT INTO items (id, n) VALUES (?, ?)", "a", 1)
        with pytest.raises(UniqueViolation):
            await db.execute("INSERT INTO items (id, n) VALUES (?, ?)", "a", 2)
        with pytest.raises(UniqueViolation):
            await db.executemany(
                "INSERT INTO items (id, n) VALUES (?, ?)", [("x", 1), ("x", 2)]
            )
        # executemany is atomic: the first row of the failed batch is not there either.
        assert await db.fetchval("SELECT count(*) FROM items WHERE id = ?", "x") == 0
        with pytest.raises(UniqueViolation):
            async with db.transaction() as txn:
                await txn.execute("INSERT INTO items (id, n) VALUES (?, ?)", "b", 1)
                await txn.execute("INSERT INTO items (id, n) VALUES (?, ?)", "a", 1)
        assert await db.fetchall("SELECT id FROM items") == [("a",)]
        assert issubclass(UniqueViolation, DatabaseError)
    finally:
        await db.close()


async def test_unique_violation_race_has_one_winner(database_config: DatabaseConfig) -> None:
    """The "user exists" race: of many concurrent inserts of one key exactly one wins."""
    db = await _open(database_config)
    try:

        async def register(k: int) -> bool:
            try:
                async with db.transaction() as txn:
                    await txn.execute("INSERT INTO items (id, n) VALUES (?, ?)", "alice", k)
                return True
            except UniqueViolation:
                return False

        results = await asyncio.gather(*(register(k) for k in range(20)))
        assert results.count(True) == 1
    finally:
        await db.close()


async def test_foreign_keys_are_enforced(database_config: DatabaseConfig) -> None:
    db = await _open(database_config)
    try:
        with pytest.raises(ForeignKeyViolation):
            await db.execute("INSERT INTO children (child_id, item_id) VALUES (?, ?)", "c", "x")
    finally:
        await db.close()


async def test_other_errors_are_database_errors(database_config: DatabaseConfig) -> None:
    db = await _open(database_config)
    try:
        with pytest.raises(DatabaseError) as info:
            await db.fetchall("SELECT no_such_column FROM items")
        assert not isinstance(info.value, UniqueViolation)
        with pytest.raises(DatabaseError):
            await db.execute("INSERT INTO no_such_table VALUES (?)", 1)
        with pytest.raises(DatabaseError):
            await db.execute("INSERT INTO items (id, n) VALUES (?, ?)", "a", None)
    finally:
        await db.close()


async def test_pool_stats(database_config: DatabaseConfig) -> None:
    db = await _open(database_config)
    try:
        stats = db.pool_stats()
        assert set(stats) >= {"size", "in_use", "idle", "max"}
        assert 0 <= stats["in_use"] <= stats["size"] <= stats["max"]
        assert stats["in_use"] + stats["idle"] == stats["size"]
        async with db.transaction() as txn:
            await txn.fetchval("SELECT count(*) FROM items")
            assert db.pool_stats()["in_use"] >= 1
        assert db.pool_stats()["in_use"] == 0
    finally:
        await db.close()


async def test_closed_database_refuses(database_config: DatabaseConfig) -> None:
    db = await _open(database_config)
    await db.close()
    await db.close()  # idempotent
    with pytest.raises(DatabaseError):
        await db.fetchval("SELECT count(*) FROM items")


async def test_table_names(database_config: DatabaseConfig) -> None:
    db = await _open(database_config)
    try:
        names = await db.table_names()
        assert {"schema_migrations", "stream_positions", "items", "children"} <= set(names)
    finally:
        await db.close()


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        DatabaseConfig(dialect="sqlite")
    with pytest.raises(ValueError):
        DatabaseConfig(dialect="oracle")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        DatabaseConfig(dialect="postgres", pool_min=5, pool_max=2)
    with pytest.raises(ValueError):
        placeholders(0)
    assert placeholders(3) == "?, ?, ?"


async def test_savepoint_lets_a_transaction_survive_a_violation(
    database_config: DatabaseConfig,
) -> None:
    db = await _open(database_config)
    try:
        await db.execute("INSERT INTO items (id, n) VALUES (?, ?)", "taken", 1)
        async with db.transaction() as txn:
            await txn.execute("INSERT INTO items (id, n) VALUES (?, ?)", "before", 1)
            with pytest.raises(UniqueViolation):
                async with txn.savepoint():
                    await txn.execute("INSERT INTO items (id, n) VALUES (?, ?)", "inner", 1)
                    await txn.execute("INSERT INTO items (id, n) VALUES (?, ?)", "taken", 2)
            async with txn.savepoint():
                await txn.execute("INSERT INTO items (id, n) VALUES (?, ?)", "kept", 1)
            await txn.execute("INSERT INTO items (id, n) VALUES (?, ?)", "after", 1)
        rows = await db.fetchall("SELECT id FROM items ORDER BY id")
        assert rows == [("after",), ("before",), ("kept",), ("taken",)]
    finally:
        await db.close()


async def test_run_transaction_returns_the_result(database_config: DatabaseConfig) -> None:
    db = await _open(database_config)
    try:

        async def insert(txn: Transaction) -> int:
            await txn.execute("INSERT INTO items (id, n) VALUES (?, ?)", "a", 5)
            return int(await txn.fetchval("SELECT n FROM items WHERE id = ?", "a"))

        assert await db.run_transaction(insert) == 5
    finally:
        await db.close()


async def test_open_failures_are_database_errors(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError):
        await open_database(
            DatabaseConfig(dialect="sqlite", sqlite_path=str(tmp_path / "missing" / "hs.db"))
        )
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DatabaseError):
        await open_database(
            DatabaseConfig(dialect="postgres", host="127.0.0.1", port=port, user="nobody")
        )
