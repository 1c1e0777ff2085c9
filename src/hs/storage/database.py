"""The one database API every store codes against, whatever the engine underneath.

SQL is written once, with ``?`` placeholders and portable types; the PostgreSQL dialect
rewrites the placeholders to ``$n`` and both dialects return rows as plain tuples. Keeping the
surface this small (five query methods plus ``transaction``) is what lets every store run on
both SQLite and PostgreSQL and lets ``port_db`` move a server between them.

Conventions for callers:

* Booleans: declare columns ``BOOLEAN`` and pass Python ``bool``. Selected ``BOOLEAN``
  columns come back as ``bool`` on both dialects (SQLite stores 0/1; a declared-type converter
  turns it back). Computed expressions (``SELECT a AND b``) are ``int`` on SQLite, so treat
  them by truthiness. Columns declared ``SMALLINT``/``INTEGER`` stay ints everywhere.
* PostgreSQL is strictly typed: pass ``int`` for integer columns, ``str`` for text, ``bytes``
  for ``{BYTES}`` columns. SQLite accepts anything, so test on both.
* A ``?`` is always a placeholder, also after a ``jsonb`` column: use ``jsonb_exists()``.
* Inside ``async with db.transaction() as txn`` use ``txn`` for every statement. Calling the
  ``Database`` itself there would wait for the transaction it is part of; SQLite detects this
  and raises ``DatabaseError`` instead of deadlocking.
* After a ``UniqueViolation`` inside a transaction PostgreSQL refuses further statements in
  it: let the error leave the ``async with`` (it rolls back) or avoid it with
  ``ON CONFLICT``.
"""

from __future__ import annotations

import abc
import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

Row = tuple[Any, ...]
T = TypeVar("T")


class DatabaseError(Exception):
    """Any failure reported by the database engine or driver."""


class IntegrityError(DatabaseError):
    """A constraint rejected the statement."""


class UniqueViolation(IntegrityError):
    """A UNIQUE or PRIMARY KEY constraint rejected the statement (e.g. "user exists" races)."""


class ForeignKeyViolation(IntegrityError):
    """A FOREIGN KEY constraint rejected the statement."""


class TransactionConflict(DatabaseError):
    """PostgreSQL aborted the transaction (serialization failure or deadlock); retry it."""


class SchemaError(DatabaseError):
    """The schema files or the database's recorded schema versions are inconsistent."""


@dataclass(frozen=True)
class DatabaseConfig:
    """Where the database lives and how many connections to hold.

    For PostgreSQL either ``pg_dsn`` or the individual fields (or both: fields override the
    DSN) are used; unset fields fall back to libpq's environment (``PGHOST`` ...).
    """

    dialect: Literal["sqlite", "postgres"]
    sqlite_path: str | None = None
    pg_dsn: str | None = None
    user: str | None = None
    password: str | None = None
    database: str | None = None
    host: str | None = None
    port: int | None = None
    pool_min: int = 1
    pool_max: int = 10
    #: Reader threads (each with its own connection) next to SQLite's single writer.
    sqlite_readers: int = 4
    #: NORMAL (default): in WAL mode a COMMIT has written its WAL frames to the OS before it
    #: returns, so an acknowledged write survives SIGKILL or any crash of the process; only
    #: an OS crash or power loss can drop the last few commits (never corrupting the file).
    #: That costs ~0.1 ms per commit instead of an fsync (~5 ms on ordinary disks), which a
    #: single-writer homeserver needs. FULL fsyncs every commit: durable across power loss.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "NORMAL"
    busy_timeout_ms: int = 10_000

    def __post_init__(self) -> None:
        if self.dialect not in ("sqlite", "postgres"):
            raise ValueError(f"unknown database dialect {self.dialect!r}")
        if self.dialect == "sqlite" and not self.sqlite_path:
            raise ValueError("sqlite_path is required for the sqlite dialect")
        if self.pool_min < 0 or self.pool_max < max(1, self.pool_min):
            raise ValueError("need 0 <= pool_min <= pool_max and pool_max >= 1")
        if self.sqlite_synchronous not in ("FULL", "NORMAL"):
            raise ValueError("sqlite_synchronous must be FULL or NORMAL")


class Queryable(abc.ABC):
    """The five query methods shared by ``Database`` and ``Transaction``."""

    @abc.abstractmethod
    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; return the affected row count (-1 when not applicable)."""

    @abc.abstractmethod
    async def executemany(self, sql: str, args_seq: Iterable[Sequence[Any]]) -> None:
        """Run one statement per argument tuple, atomically."""

    @abc.abstractmethod
    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        """The first row, or None."""

    @abc.abstractmethod
    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        """All rows."""

    @abc.abstractmethod
    async def fetchval(self, sql: str, *args: Any) -> Any:
        """The first column of the first row, or None when there is no row."""


class Transaction(Queryable):
    """Statements on one connection, committed together when the ``async with`` exits."""

    @abc.abstractmethod
    async def execute_script(self, sql: str) -> None:
        """Run several ``;``-separated statements without arguments (used by migrations)."""

    @abc.abstractmethod
    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A nested scope that is undone alone when it raises; the transaction goes on.

        The way to try an INSERT and handle ``UniqueViolation`` inside a transaction: on
        PostgreSQL a failed statement otherwise poisons the whole transaction.
        """


class Database(Queryable):
    """A connection pool for one dialect; see the module docstring for the conventions."""

    dialect: str
    config: DatabaseConfig

    @abc.abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A transaction: commit on normal exit, rollback when the block raises."""

    async def run_transaction(
        self, fn: Callable[[Transaction], Awaitable[T]], *, retries: int = 3
    ) -> T:
        """``fn(txn)`` in a transaction, re-run (with fresh reads) on ``TransactionConflict``.

        ``fn`` may run more than once, so it must not have side effects outside the database.
        """
        for attempt in itertools.count():
            try:
                async with self.transaction() as txn:
                    return await fn(txn)
            except TransactionConflict:
                if attempt >= retries:
                    raise
                await asyncio.sleep(random.uniform(0, 0.01 * 2**attempt))
        raise AssertionError("unreachable")

    @abc.abstractmethod
    async def close(self) -> None:
        """Release every connection; the object is unusable afterwards."""

    @abc.abstractmethod
    def pool_stats(self) -> dict[str, int]:
        """Connection counts for metrics: ``size``, ``in_use``, ``idle``, ``max``."""

    @abc.abstractmethod
    async def table_names(self) -> list[str]:
        """Names of the user tables in this database (engine-internal tables excluded)."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect; called once by ``open_database``."""


def placeholders(count: int) -> str:
    """``"?, ?, ?"`` for an ``IN (...)`` list of ``count`` values (count must be >= 1)."""
    if count < 1:
        raise ValueError("an IN list needs at least one value")
    return ", ".join("?" * count)


def create_database(config: DatabaseConfig) -> Database:
    """The unopened ``Database`` for ``config.dialect``."""
    if config.dialect == "sqlite":
        from hs.storage.dialects.sqlite import SqliteDatabase

        return SqliteDatabase(config)
    from hs.storage.dialects.postgres import PostgresDatabase

    return PostgresDatabase(config)


async def open_database(
    config: DatabaseConfig,
    *,
    run_migrations: bool = True,
    areas: Sequence[Any] | None = None,
) -> Database:
    """Connect and (by default) bring every storage area's schema up to date.

    ``areas`` overrides ``hs.storage.areas.AREAS``: names or ``migrations.AreaSource``s.
    """
    from hs.storage.migrations import migrate

    db = create_database(config)
    try:
        await db.open()
        if run_migrations:
            await migrate(db, areas)
    except BaseException:
        await db.close()
        raise
    return db


__all__ = [
    "Database",
    "DatabaseConfig",
    "DatabaseError",
    "ForeignKeyViolation",
    "IntegrityError",
    "Queryable",
    "Row",
    "SchemaError",
    "Transaction",
    "TransactionConflict",
    "UniqueViolation",
    "create_database",
    "open_database",
    "placeholders",
]
