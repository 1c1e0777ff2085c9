"""SQLite through the stdlib driver: one writer thread, a few reader threads, WAL mode.

SQLite allows one writer at a time, so instead of letting connections fight over the file
lock every write and every transaction goes through a single connection on a dedicated
thread, serialized by an ``asyncio.Lock``. Reads outside a transaction run on reader
connections in their own threads; WAL mode lets them proceed while the writer commits, and
each read sees the latest committed state.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import BrokenExecutor, ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from hs.storage.database import (
    Database,
    DatabaseConfig,
    DatabaseError,
    ForeignKeyViolation,
    IntegrityError,
    Row,
    Transaction,
    UniqueViolation,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Extended result codes (sqlite3.h); names in the sqlite3 module only exist from 3.11 on.
_SQLITE_CONSTRAINT_UNIQUE = 2067
_SQLITE_CONSTRAINT_PRIMARYKEY = 1555
_SQLITE_CONSTRAINT_FOREIGNKEY = 787


def _to_bool(raw: bytes) -> bool:
    return raw not in (b"0", b"")


# BOOLEAN columns come back as bool, like on PostgreSQL (needs detect_types=PARSE_DECLTYPES).
sqlite3.register_converter("BOOLEAN", _to_bool)

_FIRST_WORD = re.compile(r"\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*([A-Za-z]+)", re.S)
_WRITE_WORD = re.compile(r"\b(INSERT|UPDATE|DELETE|REPLACE)\b", re.I)


@functools.lru_cache(maxsize=2048)
def is_read_only(sql: str) -> bool:
    """Whether a statement can run on a reader connection (they are ``query_only``)."""
    m = _FIRST_WORD.match(sql)
    if not m:
        return False
    word = m.group(1).upper()
    if word in ("SELECT", "VALUES"):
        return True
    return word == "WITH" and not _WRITE_WORD.search(sql)


#: ``IN (?, ?, ...)``: a list of two or more plain placeholders (``placeholders()``'s form).
_IN_LIST = re.compile(r"\bIN\s*\(\s*\?(?:\s*,\s*\?)+\s*\)", re.I)
#: Padding never takes a statement past this many parameters (SQLite's old default limit).
MAX_PADDED_PARAMS = 999


def _bucket(length: int) -> int:
    """The next power of two: the padded length of an IN list of ``length``."""
    return 1 << (length - 1).bit_length()


@functools.lru_cache(maxsize=256)
def _in_lists(sql: str) -> tuple[int, tuple[tuple[int, int, int], ...], str]:
    """``sql``'s ``?`` count, its IN lists of placeholders as ``(index of the first
    parameter, length, padded length)``, and the text with the lists padded."""
    lists = []
    parts = []
    params = pos = 0
    for m in _IN_LIST.finditer(sql):
        params += sql.count("?", pos, m.start())
        length = sql.count("?", m.start(), m.end())
        want = _bucket(length)
        lists.append((params, length, want))
        parts += [sql[pos:m.start()], "IN (", ", ".join("?" * want), ")"]
        params += length
        pos = m.end()
    parts.append(sql[pos:])
    return sql.count("?"), tuple(lists), "".join(parts)


def pad_in_lists(sql: str, args: Sequence[Any]) -> tuple[str, Sequence[Any]]:
    """``sql`` with every ``IN (?, ...)`` list padded to a power-of-two length by repeating
    its last value (``x IN (a, b, b)`` is ``x IN (a, b)``), and the arguments to match.

    Each connection keeps every distinct SQL text it ran compiled in its statement cache,
    and IN lists of every length made hundreds of texts per query: ~1 MiB of compiled
    statements per connection, ~8 MiB over the writer and the readers. Padded, a query
    has a handful of texts (and needs fewer compiles). A text is left alone when its
    ``?`` count differs from the arguments' (a ``?`` in a literal or comment, or numbered
    ``?NNN`` parameters), which also leaves any error to SQLite."""
    if ", ?" not in sql:
        return sql, args
    total, lists, padded_sql = _in_lists(sql)
    if total != len(args) or not lists:
        return sql, args
    extra = sum(want - length for _, length, want in lists)
    if extra == 0 or total + extra > MAX_PADDED_PARAMS:
        return sql, args
    padded: list[Any] = []
    pos = 0
    for first, length, want in lists:
        end = first + length
        padded += args[pos:end]
        padded += [args[end - 1]] * (want - length)
        pos = end
    padded += args[pos:]
    return padded_sql, padded


def map_error(exc: sqlite3.Error) -> DatabaseError:
    """The hs exception for a driver exception (the caller chains it with ``from``)."""
    if isinstance(exc, sqlite3.IntegrityError):
        code = getattr(exc, "sqlite_errorcode", None)
        text = str(exc)
        if code in (_SQLITE_CONSTRAINT_UNIQUE, _SQLITE_CONSTRAINT_PRIMARYKEY) or (
            "UNIQUE constraint failed" in text
        ):
            return UniqueViolation(text)
        if code == _SQLITE_CONSTRAINT_FOREIGNKEY or "FOREIGN KEY constraint" in text:
            return ForeignKeyViolation(text)
        return IntegrityError(text)
    return DatabaseError(str(exc))


def split_script(script: str) -> list[str]:
    """Split a SQL script into complete statements (trigger bodies stay whole)."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                statements.append(pending)
            pending = ""
    if pending.strip(" \t\r\n;"):
        statements.append(pending)
    return [s for s in statements if _has_code(s)]


def _has_code(statement: str) -> bool:
    stripped = re.sub(r"--[^\n]*|/\*.*?\*/", "", statement, flags=re.S)
    return bool(stripped.strip(" \t\r\n;"))


# --- functions that run on a connection's own thread ---------------------------------------


def _t_execute(conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> int:
    cur = conn.execute(sql, args)
    try:
        if cur.description is not None:
            cur.fetchall()  # step RETURNING / SELECT statements to completion
        return cur.rowcount
    finally:
        cur.close()


def _t_executemany(
    conn: sqlite3.Connection, sql: str, args_seq: list[Sequence[Any]], own_txn: bool
) -> None:
    if not own_txn:
        conn.executemany(sql, args_seq).close()
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(sql, args_seq).close()
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _t_fetchone(conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> Row | None:
    cur = conn.execute(sql, args)
    try:
        row: Row | None = cur.fetchone()
        return row
    finally:
        cur.close()


def _t_fetchall(conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> list[Row]:
    cur = conn.execute(sql, args)
    try:
        return cur.fetchall()
    finally:
        cur.close()


def _t_fetchval(conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> Any:
    row = _t_fetchone(conn, sql, args)
    return None if row is None else row[0]


def _t_script(conn: sqlite3.Connection, statements: list[str]) -> None:
    for statement in statements:
        conn.execute(statement).close()


def _t_undo_savepoint(conn: sqlite3.Connection, name: str) -> None:
    conn.execute(f"ROLLBACK TO {name}")
    conn.execute(f"RELEASE {name}")


def _t_finish(conn: sqlite3.Connection, commit: bool) -> None:
    if not conn.in_transaction:
        return
    if commit:
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    else:
        conn.execute("ROLLBACK")


class SqliteDatabase(Database):
    """See the module docstring; construct through ``open_database``."""

    dialect = "sqlite"

    def __init__(self, config: DatabaseConfig) -> None:
        if config.dialect != "sqlite" or not config.sqlite_path:
            raise ValueError("SqliteDatabase needs a sqlite config with a path")
        self.config = config
        self.path = config.sqlite_path
        # ":memory:" cannot be shared between connections: everything then uses the writer.
        self._reader_count = 0 if self.path == ":memory:" else max(0, config.sqlite_readers)
        self._writer_exec = ThreadPoolExecutor(1, thread_name_prefix="hs-sqlite-writer")
        self._reader_exec: ThreadPoolExecutor | None = None
        self._writer: sqlite3.Connection | None = None
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._local = threading.local()
        self._write_lock = asyncio.Lock()
        #: The task running the open transaction: the only one that could deadlock on itself.
        self._txn_task: asyncio.Task[Any] | None = None
        self._writer_busy = 0
        self._readers_busy = 0
        self._closed = False
        #: A reader connection used on the event loop's own thread for cheap reads.
        self._inline_reader: sqlite3.Connection | None = None
        #: SQL text -> recent execution time (s, moving average): decides inline vs thread.
        self._read_cost: dict[str, float] = {}
        #: Reads served inline, and background checkpoints run (metrics and tests).
        self.inline_reads = 0
        self.checkpoints = 0
        self._checkpointer: asyncio.Task[None] | None = None
        self._checkpoint_exec = ThreadPoolExecutor(1, thread_name_prefix="hs-sqlite-ckpt")
        self._checkpoint_conn: sqlite3.Connection | None = None

    # -- connections ------------------------------------------------------------------------

    def _connect(self, *, writer: bool, busy_timeout_ms: int | None = None
                 ) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,  # only used from its own thread, closed from another
            detect_types=sqlite3.PARSE_DECLTYPES,
            cached_statements=512,
        )
        timeout = self.config.busy_timeout_ms if busy_timeout_ms is None else busy_timeout_ms
        conn.execute(f"PRAGMA busy_timeout = {int(timeout)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA synchronous = {self.config.sqlite_synchronous}")
        if writer:
            if self.path != ":memory:":
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise DatabaseError(f"could not enable WAL mode on {self.path} ({mode})")
                # Checkpoints run on their own connection and thread (``_checkpoints``):
                # in the committing connection one stalls that commit, and every write
                # queued behind it, for tens of milliseconds.
                conn.execute("PRAGMA wal_autocheckpoint = 0")
        else:
            conn.execute("PRAGMA query_only = ON")
            # Each connection has its own page cache (2 MiB by default) over the same file,
            # which the OS caches once anyway: the readers keep a small one each (they read
            # indexed rows, mostly hot pages), the writer the default for its transactions.
            conn.execute(f"PRAGMA cache_size = {-READER_CACHE_KIB}")
        return conn

    def _init_reader(self) -> None:
        conn = self._connect(writer=False)
        self._local.conn = conn
        with self._readers_lock:
            self._readers.append(conn)

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._writer = await loop.run_in_executor(
                self._writer_exec, functools.partial(self._connect, writer=True)
            )
        except sqlite3.Error as exc:
            raise map_error(exc) from exc
        if self._reader_count:
            self._reader_exec = ThreadPoolExecutor(
                self._reader_count,
                thread_name_prefix="hs-sqlite-reader",
                initializer=self._init_reader,
            )
            try:
                # Never waits on a lock: a busy read goes to a reader thread instead.
                self._inline_reader = self._connect(writer=False, busy_timeout_ms=0)
            except sqlite3.Error as exc:
                raise map_error(exc) from exc
            self._checkpointer = asyncio.get_running_loop().create_task(self._checkpoints())

    async def _checkpoints(self) -> None:
        """Copy the WAL back into the database in the background every
        ``CHECKPOINT_INTERVAL_S`` (SQLite's PASSIVE mode: it never blocks readers or the
        writer, and costs next to nothing when the WAL has no new frames)."""
        loop = asyncio.get_running_loop()
        while not self._closed:
            await asyncio.sleep(CHECKPOINT_INTERVAL_S)
            try:
                await loop.run_in_executor(self._checkpoint_exec, self._checkpoint_once)
            except (sqlite3.Error, DatabaseError) as exc:
                logger.warning("sqlite checkpoint failed: %s", exc)

    def _checkpoint_once(self) -> None:
        if self._checkpoint_conn is None:
            self._checkpoint_conn = self._connect(writer=False, busy_timeout_ms=0)
            self._checkpoint_conn.execute("PRAGMA query_only = OFF")
        self._checkpoint_conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        self.checkpoints += 1

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointer
        async with self._write_lock:
            if self._writer is not None:
                # Best effort: the query planner statistics are only an optimisation.
                with contextlib.suppress(DatabaseError):
                    await self._on_writer(lambda c: c.execute("PRAGMA optimize").close())
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        self._checkpoint_exec.shutdown(wait=True)
        if self._checkpoint_conn is not None:
            self._checkpoint_conn.close()
        self._writer_exec.shutdown(wait=True)
        if self._reader_exec is not None:
            self._reader_exec.shutdown(wait=True)
        for conn in self._readers:
            conn.close()
        if self._inline_reader is not None:
            self._inline_reader.close()
        if self._writer is not None:
            self._writer.close()

    # -- dispatch ---------------------------------------------------------------------------

    async def _on_writer(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        writer = self._writer
        if writer is None or self._writer_exec is None:
            raise DatabaseError("database is not open")
        self._writer_busy += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._writer_exec, fn, writer
            )
        except sqlite3.Error as exc:
            raise map_error(exc) from exc
        finally:
            self._writer_busy -= 1

    def _learn(self, sql: str, seconds: float) -> None:
        """Record a read's execution time (any thread: one dict store under the GIL)."""
        cost = self._read_cost
        if len(cost) >= _MAX_LEARNED and sql not in cost:
            cost.clear()  # IN-lists of every length make many texts; start learning again
        old = cost.get(sql)
        cost[sql] = seconds if old is None else (old + seconds) / 2

    def _read_on_thread(self, fn: Callable[[sqlite3.Connection], T], sql: str | None) -> T:
        if sql is None:
            return fn(self._local.conn)
        start = time.perf_counter()
        result = fn(self._local.conn)
        self._learn(sql, time.perf_counter() - start)
        return result

    def _read_inline(self, fn: Callable[[sqlite3.Connection], T], sql: str
                     ) -> tuple[bool, T | None]:
        """Run a read known to be cheap on the loop's thread: ``(False, None)`` when the
        database was busy (the caller then uses a reader thread)."""
        assert self._inline_reader is not None
        start = time.perf_counter()
        try:
            result = fn(self._inline_reader)
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) in _BUSY_CODES:
                return False, None
            raise map_error(exc) from exc
        except sqlite3.Error as exc:
            raise map_error(exc) from exc
        self._learn(sql, time.perf_counter() - start)
        self.inline_reads += 1
        return True, result

    async def _on_reader(self, fn: Callable[[sqlite3.Connection], T],
                         sql: str | None = None) -> T:
        """A read on a reader connection. Reads whose recent executions took under
        ``INLINE_READ_BUDGET_S`` run right here on the event loop's thread: an indexed
        lookup takes ~10 us, while a hand-off to a reader thread and back costs ~40 us of
        CPU and, worse, ~0.1-0.3 ms of latency per sequential read (a woken /sync makes
        several). Everything else, and every text's first run, goes to a reader thread,
        where its time is measured; a read that gets slower moves back there."""
        if self._reader_exec is None:
            return await self._write(fn)
        if self._closed:
            raise DatabaseError("database is closed")
        if sql is not None and self._inline_reader is not None:
            cost = self._read_cost.get(sql)
            if cost is not None and cost < INLINE_READ_BUDGET_S:
                done, result = self._read_inline(fn, sql)
                if done:
                    return result  # type: ignore[return-value]
        self._readers_busy += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._reader_exec, self._read_on_thread, fn, sql
            )
        except sqlite3.Error as exc:
            raise map_error(exc) from exc
        except BrokenExecutor as exc:  # a reader connection could not be opened
            raise DatabaseError(f"sqlite reader pool failed: {exc}") from exc
        finally:
            self._readers_busy -= 1

    def _in_own_transaction(self) -> bool:
        return self._txn_task is not None and self._txn_task is asyncio.current_task()

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._in_own_transaction():
            raise DatabaseError(
                "statement issued on the Database inside its own transaction; use the "
                "Transaction object"
            )
        if self._closed:
            raise DatabaseError("database is closed")
        async with self._write_lock:
            return await self._on_writer(fn)

    async def _route(self, sql: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        if is_read_only(sql) and not self._in_own_transaction():
            return await self._on_reader(fn, sql)
        return await self._write(fn)

    # -- the Database API -------------------------------------------------------------------

    async def execute(self, sql: str, *args: Any) -> int:
        sql, params = pad_in_lists(sql, args)
        return await self._route(sql, functools.partial(_t_execute, sql=sql, args=params))

    async def executemany(self, sql: str, args_seq: Iterable[Sequence[Any]]) -> None:
        rows = list(args_seq)
        await self._write(
            functools.partial(_t_executemany, sql=sql, args_seq=rows, own_txn=True)
        )

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        sql, params = pad_in_lists(sql, args)
        return await self._route(sql, functools.partial(_t_fetchone, sql=sql, args=params))

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        sql, params = pad_in_lists(sql, args)
        return await self._route(sql, functools.partial(_t_fetchall, sql=sql, args=params))

    async def fetchval(self, sql: str, *args: Any) -> Any:
        sql, params = pad_in_lists(sql, args)
        return await self._route(sql, functools.partial(_t_fetchval, sql=sql, args=params))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        if self._in_own_transaction():
            raise DatabaseError("nested transactions are not supported; use txn.savepoint()")
        if self._closed:
            raise DatabaseError("database is closed")
        async with self._write_lock:
            await self._begin()
            txn = _SqliteTransaction(self)
            self._txn_task = asyncio.current_task()
            try:
                yield txn
            except BaseException:
                txn.closed = True
                # Shielded: the writer lock must not be released before the rollback ran.
                await asyncio.shield(self._finish(commit=False))
                raise
            else:
                txn.closed = True
                await asyncio.shield(self._finish(commit=True))
            finally:
                self._txn_task = None

    async def _begin(self) -> None:
        """``BEGIN IMMEDIATE``: inline when the write lock is free (nobody else writes to
        the file but this process's writer, so it nearly always is), else on the writer's
        thread, which waits up to ``busy_timeout_ms`` for another process to finish."""
        writer = self._writer
        if writer is not None and self._reader_count:
            try:
                writer.execute("PRAGMA busy_timeout = 0")
                try:
                    writer.execute("BEGIN IMMEDIATE").close()
                    return
                finally:
                    writer.execute(f"PRAGMA busy_timeout = {int(self.config.busy_timeout_ms)}")
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorcode", None) not in _BUSY_CODES:
                    raise map_error(exc) from exc
            except sqlite3.Error as exc:
                raise map_error(exc) from exc
        await self._on_writer(lambda c: c.execute("BEGIN IMMEDIATE").close())

    async def _finish(self, *, commit: bool) -> None:
        """COMMIT or ROLLBACK: inline unless a commit must fsync (``synchronous = FULL``):
        in WAL mode with NORMAL a commit only appends to the WAL (checkpoints run apart)."""
        writer = self._writer
        if writer is not None and (not commit or self.config.sqlite_synchronous != "FULL"):
            try:
                _t_finish(writer, commit)
            except sqlite3.Error as exc:
                raise map_error(exc) from exc
            return
        await self._on_writer(functools.partial(_t_finish, commit=commit))

    def pool_stats(self) -> dict[str, int]:
        size = 1 + self._reader_count
        # The writer is in use while any write runs or a transaction holds it.
        writer = 1 if self._writer_busy or self._write_lock.locked() else 0
        in_use = writer + min(self._readers_busy, self._reader_count)
        return {"size": size, "in_use": in_use, "idle": size - in_use, "max": size}

    async def table_names(self) -> list[str]:
        rows = await self.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY rowid"
        )
        return [r[0] for r in rows]


#: Page cache of each read-only connection, KiB (the writer keeps SQLite's 2 MiB).
READER_CACHE_KIB = 512
#: How often the background checkpointer copies the WAL into the database file.
CHECKPOINT_INTERVAL_S = 1.0
#: Reads whose recent executions took less than this run inline on the loop's thread.
INLINE_READ_BUDGET_S = 0.0003
#: SQL texts whose timings are remembered at most.
_MAX_LEARNED = 4096
#: SQLITE_BUSY and SQLITE_LOCKED.
_BUSY_CODES = (5, 6)

#: Inside a transaction, ``executemany`` with more rows than this runs on the writer's
#: thread (the event loop keeps serving requests meanwhile); smaller work runs inline.
INLINE_MAX_ROWS = 256


class _SqliteTransaction(Transaction):
    """Runs every statement on the writer, which the transaction holds exclusively.

    ``BEGIN IMMEDIATE`` (which may wait for another process's lock) and ``COMMIT`` (which
    may run a WAL checkpoint) go to the writer's thread. The statements in between run on
    the event loop's thread: the transaction already holds the database's write lock, so
    they cannot wait on anyone, and a typical statement takes a few microseconds where a
    hand-off to a thread and back costs ~50 us of CPU and two context switches (a message
    send made ~40 of them). Only big ``executemany`` batches still go to the thread.
    """

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db
        self.closed = False
        self._depth = 0

    async def _run(self, fn: Callable[[sqlite3.Connection], T], *, inline: bool = True) -> T:
        if self.closed:
            raise DatabaseError("transaction already finished")
        writer = self._db._writer
        if not inline or writer is None:
            return await self._db._on_writer(fn)
        try:
            return fn(writer)
        except sqlite3.Error as exc:
            raise map_error(exc) from exc

    async def execute(self, sql: str, *args: Any) -> int:
        sql, params = pad_in_lists(sql, args)
        return await self._run(functools.partial(_t_execute, sql=sql, args=params))

    async def executemany(self, sql: str, args_seq: Iterable[Sequence[Any]]) -> None:
        rows = list(args_seq)
        await self._run(functools.partial(_t_executemany, sql=sql, args_seq=rows, own_txn=False),
                        inline=len(rows) <= INLINE_MAX_ROWS)

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        sql, params = pad_in_lists(sql, args)
        return await self._run(functools.partial(_t_fetchone, sql=sql, args=params))

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        sql, params = pad_in_lists(sql, args)
        return await self._run(functools.partial(_t_fetchall, sql=sql, args=params))

    async def fetchval(self, sql: str, *args: Any) -> Any:
        sql, params = pad_in_lists(sql, args)
        return await self._run(functools.partial(_t_fetchval, sql=sql, args=params))

    async def execute_script(self, sql: str) -> None:
        await self._run(functools.partial(_t_script, statements=split_script(sql)), inline=False)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        self._depth += 1
        name = f"hs_sp_{self._depth}"
        try:
            await self._run(lambda c: c.execute(f"SAVEPOINT {name}").close())
            try:
                yield
            except BaseException:
                await asyncio.shield(self._run(functools.partial(_t_undo_savepoint, name=name)))
                raise
            await self._run(lambda c: c.execute(f"RELEASE {name}").close())
        finally:
            self._depth -= 1
