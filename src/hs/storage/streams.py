"""Stream positions: the ordering that sync tokens and pagination are built on.

Writers take a position with ``async with gen.next() as pos:`` and write their rows tagged
with it; readers only look at positions ``<= gen.current()``. Positions can complete out of
order (a slow write holds 5 while 6 and 7 commit), so ``current()`` is the highest position
below which *every* allocated position has completed - committed or abandoned - and a reader
paging up to it never skips a write that commits later.

SQLite (one process): positions come from a counter row in ``stream_positions`` bumped by the
single writer; the in-flight set lives in memory.

PostgreSQL (possibly several processes): positions come from the sequence
``hs_stream_<name>``; each allocation is also recorded in ``stream_inflight`` and removed on
completion, which raises ``stream_positions.position``. The functions in
``core/schema/0002_stream_functions.postgres.sql`` order allocations and reads with an
advisory lock, so ``hs_stream_current()`` is exact across processes. A process learns about
other processes' writes by ``refresh()``, which reads that persisted state, or from
``NOTIFY hs_streams '<stream> <current>'``, which every completion sends with the new
current position (core migration 0003) and ``Streams.listen()`` applies without a read
(a Redis hook could replace it). Instance names must be unique per process: on start a
generator discards in-flight rows left by a crashed earlier run under its own name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, cast

from hs.storage.database import Database, DatabaseError, UniqueViolation
from hs.tasks import cancel_and_wait

if TYPE_CHECKING:  # asyncpg is imported only when PostgreSQL is used
    from hs.storage.dialects.postgres import PostgresDatabase

logger = logging.getLogger(__name__)

#: The streams every server has; others are created on first use.
STREAMS: tuple[str, ...] = (
    "events",
    "account_data",
    "receipts",
    "typing",
    "to_device",
    "device_lists",
    "presence",
    "push_rules",
)

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
_RETRY_DELAY_S = 1.0
#: A position drawn ahead (``reserve_ahead``) that no write took within this many seconds
#: is completed unused.
RESERVE_IDLE_S = 0.5
#: ... and is drawn this long after the previous write completed.
RESERVE_DELAY_S = 0.005
#: hs_stream_complete() sends NOTIFY on this channel with the stream name as payload.
NOTIFY_CHANNEL = "hs_streams"

Listener = Callable[[str, int], None]


class StreamIdGenerator:
    """Allocates positions on one stream and tracks how far readers may safely read.

    Create exactly one per stream per process (``Streams.load`` does): a second one would
    not know the first one's in-flight positions (SQLite) or would discard them as a crashed
    run's leftovers (PostgreSQL, same instance name).
    """

    def __init__(self, db: Database, name: str, instance_name: str) -> None:
        """Use ``await StreamIdGenerator.create(...)``, which also loads the position."""
        if not _NAME.match(name):
            raise ValueError(f"invalid stream name {name!r}")
        self.db = db
        self.name = name
        self.instance_name = instance_name
        self._current = 0
        self._max_allocated = 0  # SQLite only: the highest position handed out
        self._inflight: set[int] = set()
        #: Positions a writer's own statement completed (``completed_by_writer``).
        self._completed_early: set[int] = set()
        self._advanced = asyncio.Event()
        self._listeners: list[Listener] = []
        self._retries: set[asyncio.Task[None]] = set()
        self._refresh_task: asyncio.Task[None] | None = None
        self._refresh_again = False
        #: PostgreSQL: draw the next write's first position just after this one
        #: (``next_many(ahead=True)``). Only for a stream this process alone writes: a
        #: drawn-ahead position holds back ``current()`` for everyone until used or
        #: released (at most ``RESERVE_IDLE_S``), which only this process's own later
        #: positions can wait on then.
        self.reserve_ahead = False
        self._reserved: asyncio.Task[list[int]] | None = None
        #: Called with drawn-ahead positions that will hold nothing, before they complete
        #: (a reader's record of the stream can then account for them).
        self.unused_listeners: list[Callable[[list[int]], None]] = []
        self._reserve_timer: asyncio.TimerHandle | None = None
        self._reserve_later: asyncio.TimerHandle | None = None

    @classmethod
    async def create(
        cls, db: Database, name: str, instance_name: str = "main"
    ) -> StreamIdGenerator:
        gen = cls(db, name, instance_name)
        await gen._setup()
        return gen

    @property
    def _sequence(self) -> str:
        return f"hs_stream_{self.name}"

    async def _setup(self) -> None:
        if self.db.dialect == "postgres":
            # UniqueViolation: another process created it at the same moment.
            with contextlib.suppress(UniqueViolation):
                await self.db.execute(f"CREATE SEQUENCE IF NOT EXISTS {self._sequence}")
        await self.db.execute(
            "INSERT INTO stream_positions (stream_name, position) VALUES (?, 0)"
            " ON CONFLICT (stream_name) DO NOTHING",
            self.name,
        )
        if self.db.dialect == "postgres":
            # Rows under our name are from a run that died mid-write: those are abandoned.
            await self._persist_completion([], self.instance_name)
        else:
            stored = await self.db.fetchval(
                "SELECT position FROM stream_positions WHERE stream_name = ?", self.name
            )
            self._max_allocated = int(stored)
            self._set_current(int(stored))

    # -- reading ----------------------------------------------------------------------------

    def current(self) -> int:
        """Every position <= this has completed; read up to here and no further."""
        return self._current

    async def refresh(self) -> int:
        """Re-read the position persisted by all processes (PostgreSQL); returns current()."""
        if self.db.dialect == "postgres":
            value = await self.db.fetchval("SELECT hs_stream_current(?)", self.name)
            self.advance_to(int(value))
        return self._current

    def advance_to(self, position: int) -> None:
        """The database reported ``position`` as the stream's current (a notification or
        a read). Not past this process's own positions still in flight here: a writer's
        statement may have completed them in the database before the writer recorded its
        batch, and readers of this process may see a position only after that."""
        if self._inflight:
            position = min(position, min(self._inflight) - 1)
        self._set_current(position)

    def request_refresh(self) -> None:
        """Refresh soon, in the background; bursts of requests collapse into few reads."""
        if self._refresh_task is not None and not self._refresh_task.done():
            self._refresh_again = True
            return
        self._refresh_task = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def _refresh_loop(self) -> None:
        while True:
            self._refresh_again = False
            try:
                await self.refresh()
            except DatabaseError:
                logger.warning("stream %s: refresh failed", self.name, exc_info=True)
            if not self._refresh_again:
                return

    async def wait_for(self, position: int, timeout: float | None = None) -> bool:
        """Wait until ``current() >= position``; False if ``timeout`` seconds pass first."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._current < position:
            event = self._advanced
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                return self._current >= position
        return True

    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(stream_name, new_current)`` whenever current() advances."""
        self._listeners.append(listener)

    def _set_current(self, value: int) -> None:
        if value <= self._current:
            return
        self._current = value
        event, self._advanced = self._advanced, asyncio.Event()
        event.set()
        for listener in self._listeners:
            try:
                listener(self.name, value)
            except Exception:
                logger.exception("stream %s listener failed", self.name)

    # -- writing ----------------------------------------------------------------------------

    @asynccontextmanager
    async def next(self) -> AsyncIterator[int]:
        """One new position, completed when the block exits (also when it raises).

        Take it before opening the transaction that writes the rows, not inside it.
        """
        async with self.next_many(1) as positions:
            yield positions[0]

    @asynccontextmanager
    async def next_many(self, count: int, *, ahead: bool = False) -> AsyncIterator[list[int]]:
        """``count`` new increasing positions, completed together when the block exits.

        ``ahead`` (with ``reserve_ahead``, PostgreSQL): the first one may be the position
        drawn after the previous such write, and the next write's is drawn once this one
        is done, so a steady stream of writes does not wait for an allocation round trip
        each."""
        if count < 1:
            raise ValueError("count must be >= 1")
        ahead = ahead and self.reserve_ahead and self.db.dialect == "postgres"
        if ahead:
            positions = await self._take_reserved(count)
        else:
            positions = await self._allocate(count)
        self._inflight.update(positions)
        try:
            yield positions
        finally:
            # Shielded: a cancelled writer must still release its positions.
            await asyncio.shield(self._complete(positions))
            if ahead and self._reserved is None and self._reserve_later is None:
                # Drawn a moment after this write: drawing it during the write, or while
                # the requests it wakes are answered, makes it compete with them for the
                # database's CPU.
                self._reserve_later = asyncio.get_running_loop().call_later(
                    RESERVE_DELAY_S, self._reserve)

    def _reserve(self) -> None:
        self._reserve_later = None
        if self._reserved is None:
            reserved = asyncio.get_running_loop().create_task(self._allocate(1))
            reserved.add_done_callback(self._on_reserved)
            self._reserved = reserved

    async def _take_reserved(self, count: int) -> list[int]:
        """The reserved position (if its allocation succeeds) plus fresh ones. The
        sequence only grows, so the fresh ones come after."""
        task, self._reserved = self._reserved, None
        self._cancel_timers()  # a draw not started yet: this write draws its own
        got: list[int] = []
        if task is not None:
            try:
                got = await asyncio.shield(task)
            except asyncio.CancelledError:
                # The caller was cancelled: the drawn position must not stay in flight.
                task.add_done_callback(self._release_reserved)
                raise
            except Exception:
                logger.warning("stream %s: drawing ahead failed", self.name, exc_info=True)
        try:
            if len(got) < count:
                got += await self._allocate(count - len(got))
        except BaseException:
            if got:  # the drawn position will hold nothing
                self._spawn_completion(self._unused(got))
            raise
        return sorted(got)

    def _cancel_timers(self) -> None:
        """Neither release the drawn position when idle nor start drawing one."""
        for handle in (self._reserve_timer, self._reserve_later):
            if handle is not None:
                handle.cancel()
        self._reserve_timer = self._reserve_later = None

    def _on_reserved(self, task: asyncio.Task[list[int]]) -> None:
        if task is not self._reserved:
            return  # taken already
        if task.cancelled() or task.exception() is not None:
            self._reserved = None
            return
        self._reserve_timer = asyncio.get_running_loop().call_later(
            RESERVE_IDLE_S, self._release_idle, task)

    def _release_idle(self, task: asyncio.Task[list[int]]) -> None:
        if task is self._reserved:
            self._reserved = None
            self._reserve_timer = None
            self._release_reserved(task)

    def _release_reserved(self, task: asyncio.Task[list[int]]) -> None:
        """Complete a drawn-ahead position nobody will use (unless drawing it failed)."""
        if not task.cancelled() and task.exception() is None:
            self._spawn_completion(self._unused(task.result()))

    def _unused(self, positions: list[int]) -> list[int]:
        for listener in self.unused_listeners:
            try:
                listener(positions)
            except Exception:
                logger.exception("stream %s: unused-position listener failed", self.name)
        return positions

    def _spawn_completion(self, positions: list[int]) -> None:
        done = asyncio.get_running_loop().create_task(self._complete(positions))
        self._retries.add(done)
        done.add_done_callback(self._retries.discard)

    async def release_reserved(self) -> None:
        """Complete the drawn-ahead position now (shutdown)."""
        task, self._reserved = self._reserved, None
        self._cancel_timers()
        if task is not None:
            with contextlib.suppress(Exception):
                await self._complete(self._unused(await task))

    async def _allocate(self, count: int) -> list[int]:
        if self.db.dialect == "postgres":
            rows = await self.db.fetchall(
                "SELECT hs_stream_allocate(?, ?, ?)", self.name, self.instance_name, count
            )
            return sorted(int(r[0]) for r in rows)
        top = await self.db.fetchval(
            "UPDATE stream_positions SET position = position + ? WHERE stream_name = ?"
            " RETURNING position",
            count,
            self.name,
        )
        top = int(top)
        self._max_allocated = max(self._max_allocated, top)
        return list(range(top - count + 1, top + 1))

    def completed_by_writer(self, positions: list[int], current: int) -> None:
        """PostgreSQL: the writer's own transaction completed ``positions`` (it called
        ``hs_stream_complete`` before committing, which returned ``current``), saving the
        round trip that would complete them when the ``next_many`` block exits."""
        self._inflight.difference_update(positions)
        self._completed_early.update(positions)
        self._set_current(current)

    async def _complete(self, positions: list[int]) -> None:
        if self._completed_early:
            early = self._completed_early.intersection(positions)
            self._completed_early.difference_update(early)
            positions = [p for p in positions if p not in early]
            if not positions:
                return
        self._inflight.difference_update(positions)
        if self.db.dialect != "postgres":
            pending = min(self._inflight) - 1 if self._inflight else self._max_allocated
            self._set_current(pending)
            return
        try:
            await self._persist_completion(positions)
        except DatabaseError:
            logger.exception("stream %s: could not complete %s; retrying", self.name, positions)
            task = asyncio.get_running_loop().create_task(self._retry_completion(positions))
            self._retries.add(task)
            task.add_done_callback(self._retries.discard)

    async def _retry_completion(self, positions: list[int]) -> None:
        while True:
            await asyncio.sleep(_RETRY_DELAY_S)
            try:
                await self._persist_completion(positions)
                return
            except DatabaseError:
                logger.warning("stream %s: still cannot complete %s", self.name, positions)

    async def _persist_completion(
        self, positions: list[int], instance_name: str | None = None
    ) -> None:
        """Drop the in-flight rows (given positions, or all of an instance), raise the
        completed position, NOTIFY other processes and take the new current position."""
        value = await self.db.fetchval(
            "SELECT hs_stream_complete(?, ?::BIGINT[], ?)", self.name, positions, instance_name
        )
        self._set_current(int(value))

    async def forget_instance(self, instance_name: str) -> None:
        """Abandon the in-flight positions of a process that died and will not come back."""
        if self.db.dialect == "postgres":
            await self._persist_completion([], instance_name)


class Streams:
    """The generators for every stream of one process, by name."""

    def __init__(self, db: Database, generators: dict[str, StreamIdGenerator]) -> None:
        self.db = db
        self._generators = generators
        self._listener: _NotifyListener | None = None

    @classmethod
    async def load(
        cls, db: Database, instance_name: str = "main", names: Iterable[str] = STREAMS
    ) -> Streams:
        gens = {n: await StreamIdGenerator.create(db, n, instance_name) for n in names}
        return cls(db, gens)

    def __getitem__(self, name: str) -> StreamIdGenerator:
        return self._generators[name]

    def __contains__(self, name: object) -> bool:
        return name in self._generators

    def names(self) -> list[str]:
        return list(self._generators)

    def positions(self) -> dict[str, int]:
        """current() of every stream (what a sync token encodes)."""
        return {n: g.current() for n, g in self._generators.items()}

    async def refresh_all(self) -> dict[str, int]:
        """Pick up other processes' writes on every stream (PostgreSQL)."""
        for gen in self._generators.values():
            await gen.refresh()
        return self.positions()

    async def listen(self) -> None:
        """Follow other processes' completions as they happen (PostgreSQL; no-op on SQLite)."""
        if self.db.dialect != "postgres" or self._listener is not None:
            return
        self._listener = _NotifyListener(cast("PostgresDatabase", self.db), self)
        await self._listener.start()

    async def close(self) -> None:
        """Stop listening; complete positions drawn ahead."""
        for gen in self._generators.values():
            await gen.release_reserved()
        if self._listener is not None:
            listener, self._listener = self._listener, None
            await listener.stop()


class _NotifyListener:
    """LISTENs on ``hs_streams`` on a dedicated connection and refreshes the named stream;
    reconnects (and refreshes everything, to cover missed notifications) when it drops."""

    def __init__(self, db: PostgresDatabase, streams: Streams) -> None:
        self._db = db
        self._streams = streams
        self._conn: Any = None
        self._stopped = False
        self._reconnect_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._connect()

    async def _connect(self) -> None:
        conn = await self._db.connect_dedicated()
        try:
            await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
        except BaseException:
            await conn.close()
            raise
        conn.add_termination_listener(self._on_terminated)
        self._conn = conn

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        # '<stream> <current>' (core migration 0003); a bare name (or no number) from an
        # older server: read the position back.
        name, _, value = payload.partition(" ")
        if name not in self._streams:
            return
        gen = self._streams[name]
        try:
            position = int(value)
        except ValueError:
            gen.request_refresh()
            return
        gen.advance_to(position)

    def _on_terminated(self, _conn: Any) -> None:
        self._conn = None
        if not self._stopped and (self._reconnect_task is None or self._reconnect_task.done()):
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = _RETRY_DELAY_S / 10
        while not self._stopped:
            await asyncio.sleep(delay)
            try:
                await self._connect()
            except DatabaseError:
                delay = min(delay * 2, 30.0)
                continue
            for name in self._streams.names():
                self._streams[name].request_refresh()
            return

    async def stop(self) -> None:
        self._stopped = True
        await cancel_and_wait(self._reconnect_task)
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()


__all__ = ["NOTIFY_CHANNEL", "STREAMS", "StreamIdGenerator", "Streams"]
