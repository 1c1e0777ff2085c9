"""Move a server's data from SQLite to PostgreSQL (``hs port-db``).

Both databases are first brought to the same schema versions by the normal migrations; then
every table is copied in batches with COPY inside one PostgreSQL transaction, identity and
stream sequences are moved past the copied values, and per-table row counts are compared
before committing - so a failed or inconsistent port leaves the target as it was.

SQLite is read inside one read transaction, so the copy is a consistent snapshot; still run
it with the server stopped, or rows written after the snapshot are left behind.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sqlite3
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hs.storage.areas import SQLITE_COUNTERS
from hs.storage.database import DatabaseConfig, DatabaseError, open_database
from hs.storage.dialects.postgres import PostgresDatabase
from hs.storage.migrations import applied_versions, migrate

#: Not copied: the target keeps its own migration record; in-flight rows are transient.
SKIPPED_TABLES = frozenset({"schema_migrations", "stream_inflight"})

Progress = Callable[[str, int, int], None]
_STREAM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


class PortError(DatabaseError):
    """The port cannot proceed or did not verify; the target was left unchanged."""


def _coercer(pg_type: str) -> Callable[[Any], Any] | None:
    """Turn SQLite's loosely typed values into what PostgreSQL's binary COPY expects."""
    if pg_type == "boolean":
        return lambda v: v if v is None or isinstance(v, bool) else _truthy(v)
    if pg_type == "bytea":
        return lambda v: v.encode() if isinstance(v, str) else v
    if pg_type in ("bigint", "integer", "smallint"):
        return lambda v: v if v is None or type(v) is int else int(v)
    if pg_type in ("double precision", "real", "numeric"):
        return lambda v: v if v is None else float(v)
    if pg_type in ("text", "character varying", "json", "jsonb"):
        return lambda v: v if v is None or isinstance(v, str) else _as_text(v)
    return None


def _truthy(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() not in ("", "0", "f", "false")
    return bool(v)


def _as_text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class _SqliteReader:
    """Reads the SQLite file on one dedicated thread (cursors are per-thread), inside one
    read transaction so that counts and rows come from a single consistent snapshot."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._exec = ThreadPoolExecutor(1, thread_name_prefix="hs-port-reader")
        self._conn: sqlite3.Connection | None = None

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._exec, fn, *args)

    async def open(self) -> None:
        def connect() -> None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # pin the snapshot
            self._conn = conn

        await self._call(connect)

    async def close(self) -> None:
        if self._conn is not None:
            await self._call(self._conn.close)
        self._exec.shutdown(wait=True)

    def _run(self, sql: str) -> sqlite3.Cursor:
        if self._conn is None:
            raise PortError("SQLite reader is not open")
        return self._conn.execute(sql)

    async def query(self, sql: str) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = await self._call(lambda: self._run(sql).fetchall())
        return rows

    async def columns(self, table: str) -> list[str]:
        return [r[1] for r in await self.query(f'PRAGMA table_info("{table}")')]

    async def count(self, table: str) -> int:
        return int((await self.query(f'SELECT count(*) FROM "{table}"'))[0][0])

    async def open_cursor(self, table: str, columns: Sequence[str]) -> sqlite3.Cursor:
        cols = ", ".join(f'"{c}"' for c in columns)

        def run() -> sqlite3.Cursor:
            try:  # insertion order keeps self-referencing foreign keys satisfiable
                return self._run(f'SELECT {cols} FROM "{table}" ORDER BY rowid')
            except sqlite3.OperationalError:  # WITHOUT ROWID table
                return self._run(f'SELECT {cols} FROM "{table}"')

        cursor: sqlite3.Cursor = await self._call(run)
        return cursor

    async def fetch(self, cursor: sqlite3.Cursor, size: int) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = await self._call(cursor.fetchmany, size)
        return rows


async def _pg_columns(conn: Any, table: str) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
        table,
    )
    return [(r[0], r[1]) for r in rows]


async def _setval(conn: Any, sequence: str, last: int | None) -> None:
    """Make ``nextval(sequence)`` return ``last + 1`` (1 when nothing was handed out)."""
    if last is None or last < 1:
        await conn.execute("SELECT setval($1::regclass, 1, false)", sequence)
    else:
        await conn.execute("SELECT setval($1::regclass, $2)", sequence, int(last))


async def _reset_sequences(conn: Any, counters: dict[str, int | None]) -> None:
    """Move identity/serial sequences past the copied ids, stream sequences to the copied
    stream positions and counter-backed sequences to the SQLite counters, so new rows and
    positions continue after the old ones."""
    rows = await conn.fetch(
        "SELECT table_name, column_name,"
        " pg_get_serial_sequence(quote_ident(table_name), column_name)"
        " FROM information_schema.columns WHERE table_schema = current_schema()"
    )
    for table, column, sequence in rows:
        if sequence is None:
            continue
        await _setval(conn, sequence, await conn.fetchval(f'SELECT max("{column}") FROM "{table}"'))
    for name, position in await conn.fetch("SELECT stream_name, position FROM stream_positions"):
        if not _STREAM_NAME.match(name):
            raise PortError(f"invalid stream name {name!r} in stream_positions")
        sequence = f"hs_stream_{name}"
        await conn.execute(f"CREATE SEQUENCE IF NOT EXISTS {sequence}")
        await _setval(conn, sequence, position)
    for sequence, last in counters.items():
        await _setval(conn, sequence, last)


async def port_database(
    sqlite: DatabaseConfig,
    postgres: DatabaseConfig,
    progress: Progress | None = None,
    *,
    batch_size: int = 5000,
    areas: Sequence[Any] | None = None,
) -> dict[str, tuple[int, int]]:
    """Copy every table from ``sqlite`` into ``postgres``; returns {table: (sqlite, pg) rows}.

    ``progress(table, rows_copied, rows_total)`` is called after each batch. The target must
    be new or hold only empty tables. Raises ``PortError`` (target unchanged) when the
    schemas disagree or the row counts do not match after the copy.
    """
    if sqlite.dialect != "sqlite" or postgres.dialect != "postgres" or not sqlite.sqlite_path:
        raise PortError("port_database copies from a sqlite config into a postgres config")
    src = await open_database(sqlite, areas=areas)
    try:
        source_versions = await applied_versions(src)
        source_tables = await src.table_names()
        tables = [t for t in source_tables if t not in SKIPPED_TABLES | SQLITE_COUNTERS.keys()]
        counters: dict[str, int | None] = {}
        for table, (column, sequence) in SQLITE_COUNTERS.items():
            if table in source_tables:
                counters[sequence] = await src.fetchval(f'SELECT max("{column}") FROM "{table}"')
    finally:
        await src.close()

    dst = await open_database(postgres, run_migrations=False)
    try:
        assert isinstance(dst, PostgresDatabase)
        if await applied_versions(dst):  # not new: allowed only if nothing would be lost
            existing = set(await dst.table_names())
            for table in tables:
                if table == "stream_positions":
                    continue  # seeded by any server start; replaced wholesale below
                if table in existing and await dst.fetchval(
                    f'SELECT EXISTS (SELECT 1 FROM "{table}")'
                ):
                    raise PortError(f"target database is not empty (table {table} has rows)")
        await migrate(dst, areas)
        if await applied_versions(dst) != source_versions:
            raise PortError("source and target schema versions differ after migrating")
        missing = set(tables) - set(await dst.table_names())
        if missing:
            raise PortError(f"tables missing from the PostgreSQL schema: {sorted(missing)}")
        return await _copy(sqlite.sqlite_path, dst, tables, counters, progress, batch_size)
    finally:
        await dst.close()


async def _copy(
    path: str,
    dst: PostgresDatabase,
    tables: list[str],
    counters: dict[str, int | None],
    progress: Progress | None,
    batch_size: int,
) -> dict[str, tuple[int, int]]:
    reader = _SqliteReader(path)
    await reader.open()
    try:
        async with dst.acquire() as conn, conn.transaction():
            await conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables))
            counts: dict[str, tuple[int, int]] = {}
            for table in tables:
                counts[table] = await _copy_table(reader, conn, table, progress, batch_size)
            await _reset_sequences(conn, counters)
            bad = {t: c for t, c in counts.items() if c[0] != c[1]}
            if bad:
                raise PortError(f"row counts differ after copying: {bad}")
            return counts
    finally:
        await reader.close()


async def _copy_table(
    reader: _SqliteReader, conn: Any, table: str, progress: Progress | None, batch_size: int
) -> tuple[int, int]:
    pg_cols = await _pg_columns(conn, table)
    pg_types = dict(pg_cols)
    src_cols = await reader.columns(table)
    extra = [c for c in src_cols if c not in pg_types]
    if extra:
        raise PortError(f"{table}: columns {extra} exist in SQLite but not in PostgreSQL")
    coercers = [_coercer(pg_types[c]) for c in src_cols]
    total = await reader.count(table)
    cursor = await reader.open_cursor(table, src_cols)
    copied = 0
    while True:
        rows = await reader.fetch(cursor, batch_size)
        if not rows:
            break
        records = [
            tuple(v if f is None else f(v) for v, f in zip(row, coercers, strict=True))
            for row in rows
        ]
        await conn.copy_records_to_table(table, records=records, columns=src_cols)
        copied += len(records)
        if progress is not None:
            progress(table, copied, total)
    if progress is not None and total == 0:
        progress(table, 0, 0)
    pg_count = int(await conn.fetchval(f'SELECT count(*) FROM "{table}"'))
    return total, pg_count


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hs.storage.port_db --sqlite PATH --postgres DSN``."""
    parser = argparse.ArgumentParser(description="Copy an hs SQLite database to PostgreSQL.")
    parser.add_argument("--sqlite", required=True, help="path of the SQLite database file")
    parser.add_argument("--postgres", required=True, help="DSN of the (empty) target database")
    parser.add_argument("--batch-size", type=int, default=5000)
    args = parser.parse_args(argv)

    def report(table: str, done: int, total: int) -> None:
        print(f"\r{table}: {done}/{total}", end="" if done < total else "\n", file=sys.stderr)

    counts = asyncio.run(
        port_database(
            DatabaseConfig(dialect="sqlite", sqlite_path=args.sqlite),
            DatabaseConfig(dialect="postgres", pg_dsn=args.postgres),
            report,
            batch_size=args.batch_size,
        )
    )
    print(f"ported {sum(c[1] for c in counts.values())} rows in {len(counts)} tables")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["SKIPPED_TABLES", "PortError", "main", "port_database"]
