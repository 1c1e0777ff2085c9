"""port-db: a populated SQLite database copied into a real PostgreSQL, then checked."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hs.storage.areas import AREAS, SQLITE_COUNTERS
from hs.storage.database import DatabaseConfig, open_database
from hs.storage.migrations import AreaSource
from hs.storage.port_db import PortError, main, port_database
from hs.storage.streams import StreamIdGenerator
from pg_harness import PgServer

ROWS = 1234

DEMO_SCHEMA = """
CREATE TABLE nodes (
    id {AUTO_ID},
    parent_id BIGINT REFERENCES nodes (id),
    name TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    payload {BYTES},
    score BIGINT
);
CREATE TABLE tags (
    node_id BIGINT NOT NULL REFERENCES nodes (id),
    tag TEXT NOT NULL,
    PRIMARY KEY (node_id, tag)
);
"""


def _demo(tmp_path: Path) -> AreaSource:
    schema = tmp_path / "demo" / "schema"
    schema.mkdir(parents=True)
    (schema / "0001_nodes.sql").write_text(DEMO_SCHEMA)
    return AreaSource("demo", schema)


async def _populate(config: DatabaseConfig, areas: list[object]) -> int:
    db = await open_database(config, areas=areas)
    try:
        await db.executemany(
            "INSERT INTO nodes (parent_id, name, active, payload, score) VALUES (?, ?, ?, ?, ?)",
            [
                (None if k == 0 else k, f"node {k} it's", k % 3 == 0, bytes([k % 256]) * 3,
                 None if k % 7 == 0 else k * 1_000_000_007)
                for k in range(ROWS)
            ],
        )
        await db.executemany(
            "INSERT INTO tags (node_id, tag) VALUES (?, ?)",
            [(k + 1, t) for k in range(0, ROWS, 5) for t in ("a", "b")],
        )
        await db.execute(
            "INSERT INTO users (user_id, password_hash, creation_ts, is_guest, admin,"
            " deactivated) VALUES (?, ?, ?, ?, ?, ?)",
            "@alice:example.org", "$argon2id$x", 1_700_000_000_000, 0, 1, 0,
        )
        if "state_group_id_counter" in await db.table_names():
            await db.execute("UPDATE state_group_id_counter SET last_id = ?", 77)
        gen = await StreamIdGenerator.create(db, "events")
        async with gen.next_many(41) as positions:
            pass
        return positions[-1]
    finally:
        await db.close()


async def _dump(config: DatabaseConfig, areas: list[object]) -> dict[str, list[tuple]]:
    db = await open_database(config, areas=areas)
    try:
        return {
            "nodes": await db.fetchall(
                "SELECT id, parent_id, name, active, payload, score FROM nodes ORDER BY id"
            ),
            "tags": await db.fetchall("SELECT node_id, tag FROM tags ORDER BY node_id, tag"),
            "users": await db.fetchall(
                "SELECT user_id, password_hash, creation_ts, is_guest, admin FROM users"
            ),
            "streams": await db.fetchall(
                "SELECT stream_name, position FROM stream_positions ORDER BY stream_name"
            ),
        }
    finally:
        await db.close()


async def test_port_copies_everything(tmp_path: Path, fresh_pg_config: DatabaseConfig) -> None:
    areas: list[object] = [*AREAS, _demo(tmp_path)]
    sqlite = DatabaseConfig(dialect="sqlite", sqlite_path=str(tmp_path / "hs.db"))
    last_event = await _populate(sqlite, areas)
    calls: list[tuple[str, int, int]] = []

    counts = await port_database(
        sqlite, fresh_pg_config, lambda *a: calls.append(a), batch_size=500, areas=areas
    )

    assert counts["nodes"] == (ROWS, ROWS)
    assert counts["tags"] == (2 * len(range(0, ROWS, 5)),) * 2
    assert counts["users"] == (1, 1)
    assert "schema_migrations" not in counts
    assert all(src == dst for src, dst in counts.values())
    assert ("nodes", 1000, ROWS) in calls and ("nodes", ROWS, ROWS) in calls
    assert await _dump(sqlite, areas) == await _dump(fresh_pg_config, areas)

    pg = await open_database(fresh_pg_config, areas=areas)
    try:
        # Identity sequences continue after the copied ids...
        new_id = await pg.fetchval(
            "INSERT INTO nodes (name, active) VALUES (?, ?) RETURNING id", "new", True
        )
        assert new_id == ROWS + 1
        # ...so do counter-backed sequences (SQLite counter row -> PostgreSQL sequence)...
        for table, (_column, sequence) in SQLITE_COUNTERS.items():
            assert table not in await pg.table_names()
            if sequence == "state_group_id_seq":
                assert await pg.fetchval("SELECT nextval(?::regclass)", sequence) == 78
        # ...and stream positions after the copied position.
        gen = await StreamIdGenerator.create(pg, "events")
        assert gen.current() == last_event
        async with gen.next() as pos:
            assert pos == last_event + 1
    finally:
        await pg.close()


async def test_port_refuses_a_target_with_data(
    tmp_path: Path, fresh_pg_config: DatabaseConfig
) -> None:
    areas: list[object] = [*AREAS, _demo(tmp_path)]
    sqlite = DatabaseConfig(dialect="sqlite", sqlite_path=str(tmp_path / "hs.db"))
    await _populate(sqlite, areas)
    pg = await open_database(fresh_pg_config, areas=areas)
    try:
        await pg.execute(
            "INSERT INTO nodes (name, active) VALUES (?, ?)", "precious", False
        )
    finally:
        await pg.close()
    with pytest.raises(PortError, match="not empty"):
        await port_database(sqlite, fresh_pg_config, areas=areas)
    pg = await open_database(fresh_pg_config, areas=areas)
    try:
        assert await pg.fetchall("SELECT name FROM nodes") == [("precious",)]
    finally:
        await pg.close()


async def test_port_into_started_but_empty_target(
    tmp_path: Path, fresh_pg_config: DatabaseConfig
) -> None:
    """A target where hs already ran once (schema, stream rows, no data) is accepted."""
    areas: list[object] = [*AREAS, _demo(tmp_path)]
    sqlite = DatabaseConfig(dialect="sqlite", sqlite_path=str(tmp_path / "hs.db"))
    last_event = await _populate(sqlite, areas)
    pg = await open_database(fresh_pg_config, areas=areas)
    try:
        await StreamIdGenerator.create(pg, "events")
    finally:
        await pg.close()
    counts = await port_database(sqlite, fresh_pg_config, areas=areas)
    assert counts["stream_positions"] == (1, 1)
    pg = await open_database(fresh_pg_config, areas=areas)
    try:
        assert (await StreamIdGenerator.create(pg, "events")).current() == last_event
    finally:
        await pg.close()


def test_port_command_line(
    tmp_path: Path,
    pg_server: PgServer,
    fresh_pg_database: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = str(tmp_path / "hs.db")

    async def populate() -> None:
        db = await open_database(DatabaseConfig(dialect="sqlite", sqlite_path=path))
        try:
            await db.execute(
                "INSERT INTO users (user_id, creation_ts) VALUES (?, ?)", "@bob:example.org", 1
            )
        finally:
            await db.close()

    asyncio.run(populate())
    assert main(["--sqlite", path, "--postgres", pg_server.dsn(fresh_pg_database)]) == 0
    assert "ported 1 rows" in capsys.readouterr().out
