"""PostgreSQL through an asyncpg pool.

Statements are written with ``?`` placeholders and rewritten once (cached) to ``$1..$n``;
asyncpg then prepares each distinct statement once per connection and reuses it, so the hot
paths pay for parsing and planning only on first use.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import AsyncIterator, Awaitable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg

from hs.storage.database import (
    Database,
    DatabaseConfig,
    DatabaseError,
    ForeignKeyViolation,
    IntegrityError,
    Row,
    Transaction,
    TransactionConflict,
    UniqueViolation,
)

T = TypeVar("T")


#: ``[NOT] IN (?, ?, ...)`` at a word boundary: a list of placeholders only.
_IN_LIST = re.compile(r"(NOT\s+)?IN\s*\(\s*\?(?:\s*,\s*\?)*\s*\)", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)
def pg_statement(sql: str) -> tuple[str, tuple[int, ...] | None]:
    """``sql`` with ``?`` placeholders rewritten to ``$1, $2, ...`` (literals and comments
    left alone), and how to group the arguments (``group_args``).

    ``x IN (?, ?, ?)`` becomes ``x = ANY($n)`` and ``x NOT IN (...)`` ``x <> ALL($n)``
    (what PostgreSQL makes of an IN list anyway), with the list's arguments passed as one
    array: a query over 1 or 300 IDs is then ONE prepared statement, whose plan PostgreSQL
    settles after a few executions, instead of a statement per list length, each planned
    again on its first executions on every pooled connection (several ms each for the
    larger queries, paid by whichever request came first)."""
    if "?" not in sql:
        return sql, None
    out: list[str] = []
    groups: list[int] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch == "?":
            groups.append(0)
            out.append(f"${len(groups)}")
            i += 1
            continue
        if ch in "nNiI" and (i == 0 or not _is_word(sql[i - 1])):
            m = _IN_LIST.match(sql, i)
            if m is not None:
                groups.append(m.group(0).count("?"))
                op = "<> ALL" if m.group(1) else "= ANY"
                out.append(f"{op}(${len(groups)})")
                i = m.end()
                continue
        end = _skip_literal(sql, i)
        out.append(sql[i:end])
        i = end
    shape = tuple(groups)
    return "".join(out), shape if any(shape) else None


def group_args(shape: tuple[int, ...] | None, args: Sequence[Any]) -> Sequence[Any]:
    """``args`` for a ``pg_statement``: each IN list's arguments as one list."""
    if shape is None:
        return args
    out: list[Any] = []
    i = 0
    for size in shape:
        if size:
            out.append(list(args[i:i + size]))
            i += size
        else:
            out.append(args[i])
            i += 1
    return out


def _skip_literal(sql: str, i: int) -> int:
    """The index just past the token starting at ``i`` (a whole literal or comment)."""
    ch = sql[i]
    n = len(sql)
    if ch == "'":
        escapes = i > 0 and sql[i - 1] in "eE" and (i < 2 or not _is_word(sql[i - 2]))
        j = i + 1
        while j < n:
            if escapes and sql[j] == "\\":
                j += 2
                continue
            if sql[j] == "'":
                if j + 1 < n and sql[j + 1] == "'":
                    j += 2
                    continue
                return j + 1
            j += 1
        return n
    if ch == '"':
        j = sql.find('"', i + 1)
        return n if j < 0 else j + 1
    if sql.startswith("--", i):
        j = sql.find("\n", i)
        return n if j < 0 else j + 1
    if sql.startswith("/*", i):
        j = sql.find("*/", i + 2)
        return n if j < 0 else j + 2
    if ch == "$" and (i == 0 or not _is_word(sql[i - 1])):
        j = sql.find("$", i + 1)
        tag = sql[i : j + 1] if j > 0 else ""
        if tag and all(_is_word(c) for c in tag[1:-1]) and not tag[1:2].isdigit():
            close = sql.find(tag, j + 1)
            return n if close < 0 else close + len(tag)
    return i + 1


def _is_word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def map_error(exc: BaseException) -> DatabaseError:
    """The hs exception for an asyncpg exception (the caller chains it with ``from``)."""
    text = str(exc)
    if isinstance(exc, asyncpg.UniqueViolationError):
        return UniqueViolation(text)
    if isinstance(exc, asyncpg.ForeignKeyViolationError):
        return ForeignKeyViolation(text)
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return IntegrityError(text)
    if isinstance(exc, asyncpg.SerializationError | asyncpg.DeadlockDetectedError):
        return TransactionConflict(text)
    return DatabaseError(text or type(exc).__name__)


_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


async def _mapped(aw: Awaitable[T]) -> T:
    try:
        return await aw
    except _DRIVER_ERRORS as exc:
        raise map_error(exc) from exc


def _rowcount(status: str) -> int:
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else -1


class _PgQueries:
    """The query methods over anything with asyncpg's connection interface (pool or conn)."""

    _target: Any

    async def execute(self, sql: str, *args: Any) -> int:
        text, shape = pg_statement(sql)
        status = await _mapped(self._target.execute(text, *group_args(shape, args)))
        return _rowcount(status)

    async def executemany(self, sql: str, args_seq: Iterable[Sequence[Any]]) -> None:
        text, shape = pg_statement(sql)
        rows = [tuple(group_args(shape, a)) for a in args_seq]
        if rows:
            await _mapped(self._target.executemany(text, rows))

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        text, shape = pg_statement(sql)
        record = await _mapped(self._target.fetchrow(text, *group_args(shape, args)))
        return None if record is None else tuple(record)

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        text, shape = pg_statement(sql)
        records = await _mapped(self._target.fetch(text, *group_args(shape, args)))
        return [tuple(r) for r in records]

    async def fetchval(self, sql: str, *args: Any) -> Any:
        text, shape = pg_statement(sql)
        return await _mapped(self._target.fetchval(text, *group_args(shape, args)))


async def _keep_session(connection: Any) -> None:
    """Pool release hook replacing asyncpg's reset query (``pg_advisory_unlock_all(); CLOSE
    ALL; UNLISTEN *; RESET ALL``, one round trip per release, ~7% of the send path's CPU):
    pooled connections never hold session state (no session settings, session advisory
    locks, cursors outside transactions or LISTENs: those use ``connect_dedicated``), and
    asyncpg still rolls back a transaction left open before calling this."""


#: Array types hs sends and reads whose codecs asyncpg looks up in the catalog.
_ARRAY_TYPES = ("BIGINT[]", "INTEGER[]", "SMALLINT[]", "BOOLEAN[]", "TEXT[]", "BYTEA[]")


async def warm_connection(connection: Any) -> None:
    """Pool init hook: learn the array types' codecs when the connection opens. asyncpg
    looks up each type outside its core set in the catalog once per connection (a
    recursive query of 3-14 ms on a busy server), and otherwise the first request using
    ``= ANY(...)`` or an array argument on each new pooled connection waits for it."""
    casts = ", ".join(f"${i}::{t}" for i, t in enumerate(_ARRAY_TYPES, 1))
    await connection.fetchrow(f"SELECT {casts}", *([None] * len(_ARRAY_TYPES)))


class PostgresDatabase(_PgQueries, Database):
    """See the module docstring; construct through ``open_database``."""

    dialect = "postgres"

    def __init__(self, config: DatabaseConfig) -> None:
        if config.dialect != "postgres":
            raise ValueError("PostgresDatabase needs a postgres config")
        self.config = config
        self._pool: asyncpg.Pool | None = None

    @property
    def _target(self) -> asyncpg.Pool:  # type: ignore[override]
        if self._pool is None:
            raise DatabaseError("database is not open")
        return self._pool

    def _connect_kwargs(self) -> dict[str, Any]:
        c = self.config
        fields = {
            "user": c.user,
            "password": c.password,
            "database": c.database,
            "host": c.host,
            "port": c.port,
        }
        return {k: v for k, v in fields.items() if v is not None}

    async def open(self) -> None:
        c = self.config
        self._pool = await _mapped(
            asyncpg.create_pool(
                c.pg_dsn,
                min_size=c.pool_min,
                max_size=c.pool_max,
                statement_cache_size=1024,
                # Recycling a connection after 50,000 queries (asyncpg's default) means
                # reconnecting every few seconds under load; nothing here leaks per query.
                max_queries=5_000_000,
                reset=_keep_session,
                init=warm_connection,
                **self._connect_kwargs(),
            )
        )

    async def connect_dedicated(self) -> Any:
        """A new asyncpg connection outside the pool, for long-lived uses such as LISTEN.

        The caller closes it.
        """
        return await _mapped(asyncpg.connect(self.config.pg_dsn, **self._connect_kwargs()))

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    def acquire(self) -> Any:
        """A raw asyncpg connection (``async with``) for tools such as ``port_db``."""
        return self._target.acquire()

    async def executemany(self, sql: str, args_seq: Iterable[Sequence[Any]]) -> None:
        rows = [tuple(a) for a in args_seq]
        if not rows:
            return
        async with self.transaction() as txn:
            await txn.executemany(sql, rows)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        pool = self._target
        conn = await _mapped(pool.acquire())
        try:
            tx = conn.transaction()
            await _mapped(tx.start())
            txn = _PgTransaction(conn)
            try:
                yield txn
            except BaseException:
                txn.closed = True
                # A failed rollback means a broken connection, which the pool discards.
                with contextlib.suppress(*_DRIVER_ERRORS):
                    await tx.rollback()
                raise
            txn.closed = True
            await _mapped(tx.commit())
        finally:
            await pool.release(conn)

    def pool_stats(self) -> dict[str, int]:
        pool = self._pool
        if pool is None:
            return {"size": 0, "in_use": 0, "idle": 0, "max": self.config.pool_max}
        size, idle = pool.get_size(), pool.get_idle_size()
        return {"size": size, "in_use": size - idle, "idle": idle, "max": pool.get_max_size()}

    async def table_names(self) -> list[str]:
        rows = await self.fetchall(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema() ORDER BY c.oid"
        )
        return [r[0] for r in rows]


class _PgConnQueries(_PgQueries):
    """Query methods bound to one connection (a transaction's)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._target = conn


class _PgTransaction(_PgConnQueries, Transaction):
    def __init__(self, conn: asyncpg.Connection) -> None:
        super().__init__(conn)
        self.closed = False

    def _check(self) -> None:
        if self.closed:
            raise DatabaseError("transaction already finished")

    async def execute(self, sql: str, *args: Any) -> int:
        self._check()
        return await super().execute(sql, *args)

    async def executemany(self, sql: str, args_seq: Iterable[Sequence[Any]]) -> None:
        self._check()
        await super().executemany(sql, args_seq)

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        self._check()
        return await super().fetchone(sql, *args)

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        self._check()
        return await super().fetchall(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        self._check()
        return await super().fetchval(sql, *args)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        self._check()
        nested = self._target.transaction()  # asyncpg makes a nested one a SAVEPOINT
        await _mapped(nested.start())
        try:
            yield
        except BaseException:
            with contextlib.suppress(*_DRIVER_ERRORS):
                await nested.rollback()
            raise
        await _mapped(nested.commit())

    async def execute_script(self, sql: str) -> None:
        self._check()
        # No arguments: asyncpg sends it with the simple protocol, which runs many statements.
        await _mapped(self._target.execute(sql))
