"""Schema migrations on both dialects: fresh, re-run, variants, failures, version checks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hs.storage.areas import AREAS
from hs.storage.database import DatabaseConfig, SchemaError, open_database
from hs.storage.migrations import AreaSource, applied_versions, discover, migrate


def _area(root: Path, name: str, files: dict[str, str]) -> AreaSource:
    schema = root / name / "schema"
    schema.mkdir(parents=True)
    for filename, text in files.items():
        (schema / filename).write_text(text)
    return AreaSource(name, schema)


DEMO_FILES = {
    "0001_things.sql": "CREATE TABLE things (id {AUTO_ID}, blob {BYTES}, label TEXT);",
    # Replaced per dialect: each variant leaves a different marker row.
    "0002_marker.sql": "CREATE TABLE marker (who TEXT); INSERT INTO marker VALUES ('plain');",
    "0002_marker.sqlite.sql": (
        "CREATE TABLE marker (who TEXT); INSERT INTO marker VALUES ('sqlite');"
    ),
    "0002_marker.postgres.sql": (
        "CREATE TABLE marker (who TEXT); INSERT INTO marker VALUES ('postgres');"
    ),
    # Only PostgreSQL has a file for version 3: a no-op (but recorded) on SQLite.
    "0003_pg_only.postgres.sql": "CREATE INDEX things_label ON things (label);",
    "0004_backfill.py": (
        "async def migrate(txn, dialect):\n"
        "    await txn.execute('INSERT INTO marker (who) VALUES (?)', 'python-' + dialect)\n"
    ),
}


async def test_core_and_registered_areas_apply(database_config: DatabaseConfig) -> None:
    db = await open_database(database_config)
    try:
        versions = await applied_versions(db)
        assert set(versions) == set(AREAS)
        assert versions["core"] == len(discover("core", db.dialect))
        assert {"schema_migrations", "stream_positions", "stream_inflight"} <= set(
            await db.table_names()
        )
    finally:
        await db.close()


async def test_reopen_is_idempotent(database_config: DatabaseConfig) -> None:
    db = await open_database(database_config)
    try:
        before = await db.fetchall("SELECT area, version, applied_ts FROM schema_migrations")
        assert await migrate(db) == []
    finally:
        await db.close()
    db = await open_database(database_config)
    try:
        after = await db.fetchall("SELECT area, version, applied_ts FROM schema_migrations")
        assert sorted(after) == sorted(before)
    finally:
        await db.close()


async def test_variants_python_and_substitutions(
    database_config: DatabaseConfig, tmp_path: Path
) -> None:
    demo = _area(tmp_path, "demo", DEMO_FILES)
    db = await open_database(database_config, areas=["core", demo])
    try:
        dialect = db.dialect
        markers = await db.fetchall("SELECT who FROM marker ORDER BY who")
        assert markers == sorted([(dialect,), (f"python-{dialect}",)])
        assert (await applied_versions(db))["demo"] == 4
        # {AUTO_ID} numbers rows, {BYTES} stores bytes.
        await db.executemany(
            "INSERT INTO things (blob, label) VALUES (?, ?)", [(b"\x01", "a"), (b"\x02", "b")]
        )
        assert await db.fetchall("SELECT id, blob FROM things ORDER BY id") == [
            (1, b"\x01"),
            (2, b"\x02"),
        ]
        if dialect == "postgres":
            index = await db.fetchval(
                "SELECT count(*) FROM pg_indexes WHERE indexname = ?", "things_label"
            )
            assert index == 1
        # Adding a migration later applies just that one.
        (tmp_path / "demo" / "schema" / "0005_more.sql").write_text(
            "ALTER TABLE things ADD COLUMN extra TEXT;"
        )
        assert await migrate(db, ["core", demo]) == [("demo", 5, "more")]
        assert await migrate(db, ["core", demo]) == []
    finally:
        await db.close()


async def test_failed_migration_leaves_nothing_behind(
    database_config: DatabaseConfig, tmp_path: Path
) -> None:
    bad = _area(
        tmp_path,
        "bad",
        {
            "0001_ok.sql": "CREATE TABLE ok (x INTEGER);",
            "0002_broken.sql": "CREATE TABLE half (x INTEGER); CREATE TABLE ok (y INTEGER);",
        },
    )
    with pytest.raises(SchemaError, match="bad/0002_broken"):
        await open_database(database_config, areas=["core", bad])
    db = await open_database(database_config, areas=["core"])
    try:
        assert (await applied_versions(db)).get("bad") == 1
        tables = await db.table_names()
        assert "ok" in tables and "half" not in tables
    finally:
        await db.close()


async def test_newer_database_is_refused(
    database_config: DatabaseConfig, tmp_path: Path
) -> None:
    area = _area(tmp_path, "demo", {"0001_a.sql": "CREATE TABLE a (x INTEGER);"})
    db = await open_database(database_config, areas=["core", area])
    try:
        await db.execute(
            "INSERT INTO schema_migrations (area, version, name, applied_ts) VALUES (?, ?, ?, ?)",
            "demo",
            2,
            "from_the_future",
            0,
        )
        with pytest.raises(SchemaError, match="newer"):
            await migrate(db, ["core", area])
    finally:
        await db.close()


async def test_concurrent_migrators_apply_once(fresh_pg_config: DatabaseConfig) -> None:
    """Two processes starting at once: the advisory lock makes them take turns."""
    results = await asyncio.gather(
        *(open_database(fresh_pg_config, run_migrations=False) for _ in range(3))
    )
    try:
        applied = await asyncio.gather(*(migrate(db) for db in results))
        flat = [m for batch in applied for m in batch]
        assert len(flat) == len(set(flat))
        assert await results[0].fetchval("SELECT count(*) FROM schema_migrations") == len(flat)
    finally:
        for db in results:
            await db.close()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"0001_a.sql": "", "0003_c.sql": ""}, "without gaps"),
        ({"0001_a.sql": "", "0001_b.postgres.sql": ""}, "two names"),
        ({"1_a.sql": ""}, "unrecognised"),
    ],
)
def test_bad_layouts_are_rejected(tmp_path: Path, files: dict[str, str], message: str) -> None:
    area = _area(tmp_path, "demo", files)
    with pytest.raises(SchemaError, match=message):
        discover(area, "sqlite")


def test_unknown_area_is_an_error() -> None:
    with pytest.raises(SchemaError, match="no package"):
        discover("no_such_area", "sqlite")
