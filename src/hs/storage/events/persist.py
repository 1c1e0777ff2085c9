"""Writing a batch of events: everything in ONE transaction, a statement per table.

Order inside the transaction: take the per-room locks (PostgreSQL advisory locks, so
processes sharing a database serialize per room; SQLite has one writer anyway), sort out
duplicates, then write events, edges, state groups, extremities, memberships, relations,
redactions, transaction IDs, rooms and current state. Stream positions are allocated
before the transaction (``StreamIdGenerator`` requirement) and completed after it (the
PostgreSQL fast path completes them inside it, at the end), so
readers never see a position whose rows are not committed; a failing batch burns its
positions and writes nothing. Backfilled events take positions from a second generator and
store them negated, so they sort before everything sync has handed out.

Duplicates: an event already stored is reported (``deduplicated``) and not written again,
unless it was an outlier and now joins the DAG ("promoted": it gets a new position, its
edges count, it gets state). A transaction ID already used by the same device in the room
makes the event a duplicate of the earlier one.

Current state: for a room the batch's accepted state events (neither outlier, rejected nor
soft-failed) are applied in batch order - right for events appended at the extremities and
for in-order federation. A pipeline that resolved the state across several extremities
passes the resulting delta in ``current_state`` instead, which replaces that default for
its room (also how out-of-band memberships such as invites over federation get in).

Fast path (PostgreSQL): a batch of accepted non-state events whose state before is the
state after a stored or earlier batch event (every client message send; ``_fast_eligible``)
is written by ONE call of the server-side function ``hs_persist_events_fast`` (events
schema 0002), its own transaction: one round trip instead of BEGIN, ~14 statements and
COMMIT. It writes the same rows as the general path (tests compare the two); when it finds
a stored duplicate, stale extremities or missing state it writes nothing and the general
path takes the batch, raising or deduplicating as usual.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson

from hs.core.dag import NewEvent, update_forward_extremities
from hs.core.pdu import PDU, StateKey
from hs.storage.database import Database, Transaction
from hs.storage.events._util import chunks, qmarks
from hs.storage.events.recent import RecentWrites, Written
from hs.storage.events.types import (
    EventMeta,
    EventToPersist,
    PersistedEvent,
    StateAfter,
    StateDelta,
)
from hs.storage.rooms.writes import apply_current_state, write_memberships
from hs.storage.state.store import NewGroup, StateStore, UnknownStateGroupError
from hs.storage.streams import StreamIdGenerator

logger = logging.getLogger(__name__)

MEMBER = "m.room.member"
#: room_id -> changes to its current state (None removes the key).
CurrentStateDeltas = Mapping[str, Mapping[StateKey, str | None]]


#: Redactions of the ``events`` row being updated that come from the same room.
_SAME_ROOM_REDACTIONS = (
    "FROM redactions r JOIN events re ON re.event_id = r.event_id"
    " WHERE r.redacts = events.event_id AND re.room_id = events.room_id"
)


class MissingStateError(ValueError):
    """An event in the DAG came without (resolvable) state before it."""


class StaleExtremitiesError(Exception):
    """A room's forward extremities were not the ones the caller built its batch on
    (``expected_extremities``); nothing was written. The room pipeline builds on what it
    remembers of a room's tip without reading the extremities first and lets the
    transaction, which reads them anyway, confirm it."""

    def __init__(self, room_id: str) -> None:
        super().__init__(f"forward extremities of {room_id} changed")
        self.room_id = room_id


@dataclass(slots=True)
class _Item:
    index: int
    ev: EventToPersist
    position: int
    promote: bool  # stored as an outlier, now joining the DAG
    before: int | None = None
    after: int | None = None


@dataclass(frozen=True, slots=True)
class PersistOutcome:
    """What the store needs after the commit: results plus what to cache / invalidate."""

    results: list[PersistedEvent]
    written: list[tuple[PDU, EventMeta]]
    redacted: set[str]
    #: event -> (state group after, state group before) of the events given state.
    groups: dict[str, tuple[int, int]]
    #: The state groups the batch created, in creation order.
    new_groups: list[tuple[int, NewGroup]] = field(default_factory=list)
    #: New events of the batch that entered the current state -> the event each replaced
    #: ('' for none): their first delta, which never changes (``unsigned.replaces_state``).
    replaced: dict[str, str] = field(default_factory=dict)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _relation(pdu: PDU) -> tuple[str, str, str | None] | None:
    rel = pdu.content.get("m.relates_to")
    if not isinstance(rel, dict):
        return None
    rel_type, target = rel.get("rel_type"), rel.get("event_id")
    if not isinstance(rel_type, str) or not isinstance(target, str):
        return None
    key = rel.get("key") if rel_type == "m.annotation" else None
    return target, rel_type, key if isinstance(key, str) else None


@dataclass(frozen=True, slots=True)
class Precommit:
    """Writes riding on the fast path's statement: ``ctes`` (``name AS (...)`` items,
    the first of which may use ``f``, the persisted batch, e.g. ``(SELECT ok FROM f)``)
    with ``args``; ``count_cte`` names a CTE whose rows mean "not written" (counted
    into the result). ``done(written)`` is told whether they were, once the statement
    committed or failed (a failed combined statement is retried without them)."""

    ctes: str
    args: list[Any]
    count_cte: str
    done: Callable[[bool], None]


#: ``source(batch, positions)`` -> what to write with the batch, or None.
PrecommitSource = Callable[[Sequence[EventToPersist], Sequence[int]], Precommit | None]


class EventPersister:
    """See the module docstring."""

    def __init__(
        self,
        db: Database,
        stream: StreamIdGenerator,
        state: StateStore,
        backfill_stream: StreamIdGenerator | None = None,
        recent: RecentWrites | None = None,
    ) -> None:
        self.db = db
        self.stream = stream
        self.state = state
        self.backfill_stream = backfill_stream
        #: Where committed batches are recorded for /sync's short range reads.
        self.recent = recent
        if recent is not None:
            # A position drawn ahead for a persist that never came holds nothing.
            stream.unused_listeners.append(
                lambda positions: recent.record((p, None) for p in positions))
        #: PostgreSQL: persist simple batches with one statement (``_fast_eligible``);
        #: False forces the general path (tests compare the two).
        self.fast_path = True
        #: PostgreSQL: rows other stores want committed with a fast-path batch (push
        #: actions), asked for once the batch has its positions (``Precommit``).
        self.precommit: PrecommitSource | None = None

    async def persist(
        self,
        batch: Sequence[EventToPersist],
        current_state: CurrentStateDeltas | None = None,
        expected_extremities: Mapping[str, Collection[str]] | None = None,
    ) -> PersistOutcome:
        """``expected_extremities``: per room, the forward extremities the batch was built
        on; if they differ inside the transaction, ``StaleExtremitiesError`` is raised."""
        ids = [e.pdu.event_id for e in batch]
        if len(set(ids)) != len(ids):
            raise ValueError("an event appears twice in the batch")
        for e in batch:
            if not e.outlier and e.state_before is None:
                raise MissingStateError(f"{e.pdu.event_id}: no state before it given")
        if not batch:
            return PersistOutcome([], [], set(), {})
        n_back = sum(1 for e in batch if e.backfilled)
        if n_back and self.backfill_stream is None:
            raise ValueError("backfilled events need a backfill stream")
        if current_state and n_back == len(batch):
            raise ValueError("a current-state change needs a non-backfilled event")
        async with contextlib.AsyncExitStack() as stack:
            forward: Iterator[int] = iter(())
            backward: Iterator[int] = iter(())
            if len(batch) > n_back:
                forward = iter(await stack.enter_async_context(
                    self.stream.next_many(len(batch) - n_back, ahead=True)
                ))
            if n_back:
                assert self.backfill_stream is not None
                backward = iter(await stack.enter_async_context(
                    self.backfill_stream.next_many(n_back)
                ))
            # Backfilled history gets negative positions: below every sync token.
            positions = [-next(backward) if e.backfilled else next(forward) for e in batch]
            outcome: PersistOutcome | None = None
            if self.fast_path and self.db.dialect == "postgres" and _fast_eligible(
                batch, current_state, expected_extremities
            ):
                writer = _BatchWriter(
                    self, None, batch, positions, current_state, expected_extremities
                )
                outcome = await writer.run_fast()
            if outcome is None:  # the general path (also when the fast one declined)
                async with self.db.transaction() as txn:
                    writer = _BatchWriter(
                        self, txn, batch, positions, current_state, expected_extremities
                    )
                    outcome = await writer.run()
            # Committed, positions not complete yet: readers that can see them find them.
            if self.recent is not None:
                self.recent.record(writer.recent_entries())
            if writer.completed_current is not None:
                self.stream.completed_by_writer(positions, writer.completed_current)
            return outcome


class _BatchWriter:
    """One batch's writes inside its transaction."""

    def __init__(
        self,
        persister: EventPersister,
        txn: Transaction | None,
        batch: Sequence[EventToPersist],
        positions: list[int],
        current_state: CurrentStateDeltas | None,
        expected_extremities: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        self.p = persister
        self.expected = expected_extremities or {}
        self.extremities: dict[str, set[str]] = {}
        self.txn = cast(Transaction, txn)  # None only for run_fast(), which has none
        self.batch = batch
        self.positions = positions
        self.current_state = current_state or {}
        self.now = _now_ms()
        self.results: list[PersistedEvent | None] = [None] * len(batch)
        self.items: list[_Item] = []
        #: Set by ``run_fast``: the stream's current position after it completed the batch.
        self.completed_current: int | None = None
        self.batch_dups: list[tuple[int, _Item]] = []
        #: The state groups this batch creates (``PersistOutcome.new_groups``).
        self.new_groups: list[tuple[int, NewGroup]] = []
        #: ``PersistOutcome.replaced``.
        self.replaced: dict[str, str] = {}

    async def run(self) -> PersistOutcome:
        rooms = sorted({e.pdu.room_id for e in self.batch} | set(self.current_state))
        if self.p.db.dialect == "postgres":
            for room_id in rooms:  # sorted: two batches never wait on each other in a cycle
                await self.txn.fetchval(
                    "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", "hs_room:" + room_id
                )
        # Read first (under the room locks): a stale expectation aborts before any write.
        self.extremities = await self._read_extremities(rooms)
        for room_id, expected in self.expected.items():
            if self.extremities.get(room_id, set()) != set(expected):
                raise StaleExtremitiesError(room_id)
        await self._triage()
        await self._assign_state_groups()
        await self._write_events()
        await self._write_edges()
        await self._update_extremities(rooms)
        await self._write_memberships()
        redacted = await self._write_relations_and_redactions()
        await self._write_txn_ids_and_rooms()
        await self._update_current_state(rooms)
        return self._outcome(redacted)

    def _outcome(self, redacted: Mapping[str, str]) -> PersistOutcome:
        for it in self.items:
            self.results[it.index] = PersistedEvent(it.ev.pdu.event_id, it.position, it.after)
        for i, it in self.batch_dups:
            self.results[i] = PersistedEvent(it.ev.pdu.event_id, it.position, it.after, True)
        written = [(it.ev.pdu, self._meta(it, redacted)) for it in self.items]
        results = [r for r in self.results if r is not None]
        groups = {it.ev.pdu.event_id: (it.after, it.before) for it in self.items
                  if it.after is not None and it.before is not None}
        return PersistOutcome(results, written, set(redacted), groups, self.new_groups,
                              self.replaced)

    # -- the fast path (PostgreSQL) ---------------------------------------------------------

    async def run_fast(self) -> PersistOutcome | None:
        """The whole batch (``_fast_eligible``) with one call of ``hs_persist_events_fast``
        (events schema 0002), outside any explicit transaction: the call is one, and it
        also completes the batch's stream positions (``completed_current``). It writes
        the rows the general path would; None when it found the batch is not that simple
        after all (stale extremities, duplicates, missing state), having written nothing."""
        batch, now = self.batch, self.now
        index = {e.pdu.event_id: i for i, e in enumerate(batch)}
        refs: dict[str, int] = {}  # outside event whose group is taken -> 1-based index
        group_ix: list[int] = []
        ev_cols: list[list[Any]] = [[] for _ in range(10)]
        edges: dict[tuple[str, str], None] = {}
        auth_e: list[str] = []
        auth_a: list[str] = []
        batch_refs: dict[str, set[str]] = {}
        rel_cols: list[list[Any]] = [[] for _ in range(8)]
        red_e: list[str] = []
        red_t: list[str] = []
        txn_cols: list[list[str]] = [[] for _ in range(5)]
        for i, ev in enumerate(batch):
            pdu = ev.pdu
            eid, room_id = pdu.event_id, pdu.room_id
            sb = cast(StateAfter, ev.state_before)
            j = index.get(sb.event_id)
            group_ix.append(group_ix[j] if j is not None else
                            refs.setdefault(sb.event_id, len(refs) + 1))
            position = self.positions[i]
            for col, value in zip(ev_cols, (
                position, eid, room_id, pdu.type, pdu.sender, pdu.depth, pdu.origin_server_ts,
                ev.received_ts if ev.received_ts is not None else now,
                pdu.room_version.identifier, orjson.dumps(pdu.data).decode(),
            ), strict=True):
                col.append(value)
            prevs = pdu.prev_event_ids()
            for prev in prevs:
                edges[(eid, prev)] = None
            batch_refs.setdefault(room_id, set()).update(prevs)
            for aid in pdu.auth_event_ids():
                auth_e.append(eid)
                auth_a.append(aid)
            rel = _relation(pdu)
            if rel is not None:
                for col, value in zip(rel_cols, (eid, *rel, room_id, pdu.type, pdu.sender,
                                                 position), strict=True):
                    col.append(value)
            if pdu.type == "m.room.redaction" and pdu.redacts is not None:
                red_e.append(eid)
                red_t.append(pdu.redacts)
            if ev.txn is not None:
                for col, value in zip(txn_cols, (ev.txn.user_id, ev.txn.device_id, room_id,
                                                 ev.txn.txn_id, eid), strict=True):
                    col.append(value)
        all_refs = set().union(*batch_refs.values())
        retire = [(r, e) for r in sorted(batch_refs) for e in sorted(batch_refs[r])]
        cands = [(e.pdu.room_id, e.pdu.event_id) for e in batch
                 if e.pdu.event_id not in all_refs]
        expected = [(r, e) for r in sorted(self.expected) for e in sorted(set(self.expected[r]))]
        rooms = sorted(batch_refs)  # every event has a room, so a (maybe empty) entry
        # Written: the same statement completes the positions (``hs_stream_complete`` in
        # this transaction, after the writes), so the events commit already readable.
        persist_sql = (
            "SELECT f.ok, f.groups, f.marked_ids, f.marked_by,"
            " CASE WHEN f.ok THEN hs_stream_complete(?, ?::BIGINT[], NULL) END AS completed"
            " FROM hs_persist_events_fast(" + ", ".join(["?"] * 40) + ") AS f")
        args = [
            self.p.stream.name, self.positions,
            rooms, sorted(self.expected), [r for r, _ in expected], [e for _, e in expected],
            *ev_cols, list(refs), group_ix,
            [e for e, _ in edges], [p for _, p in edges], auth_e, auth_a,
            [r for r, _ in retire], [e for _, e in retire],
            [r for r, _ in cands], [e for _, e in cands],
            *rel_cols, red_e, red_t, *txn_cols, now,
        ]
        extra = self.p.precommit(batch, self.positions) if self.p.precommit else None
        row = None
        if extra is not None:
            try:
                # One statement still: the batch (materialized once) and the extra rows,
                # which are written only if it was.
                row = await self.p.db.fetchone(
                    f"WITH f AS MATERIALIZED ({persist_sql}), {extra.ctes}"
                    " SELECT ok, groups, marked_ids, marked_by, completed,"
                    f" (SELECT count(*) FROM {extra.count_cte}) FROM f",
                    *args, *extra.args)
            except Exception:
                logger.exception("persisting %s with its extra rows failed; again without",
                                 [e.pdu.event_id for e in batch])
                extra.done(False)
                extra = None
            except BaseException:  # cancelled: ``done`` is still owed its answer
                extra.done(False)
                raise
        if extra is None:
            row = await self.p.db.fetchone(persist_sql, *args)
        elif row is None or not row[0]:
            extra.done(False)
        else:
            extra.done(int(row[5]) == 0)
        if row is None or not row[0]:
            return None
        self.completed_current = int(row[4])
        groups: list[int] = list(row[1])
        for i, ev in enumerate(batch):
            g = int(groups[group_ix[i] - 1])
            self.items.append(_Item(i, ev, self.positions[i], False, g, g))
        return self._outcome(dict(zip(row[2] or (), row[3] or (), strict=True)))

    # -- deduplication ----------------------------------------------------------------------

    async def _triage(self) -> None:
        """Split the batch into new events, promoted outliers and duplicates."""
        txn = self.txn
        existing: dict[str, tuple[int, bool]] = {}
        ids = [e.pdu.event_id for e in self.batch]
        for part in chunks(ids):
            rows = await txn.fetchall(
                "SELECT event_id, stream_ordering, outlier FROM events"
                f" WHERE event_id IN ({qmarks(part)})",
                *part,
            )
            existing.update({r[0]: (int(r[1]), bool(r[2])) for r in rows})
        txn_hits = await self._existing_txn_ids()
        seen_txns: dict[tuple[str, str, str, str], str] = {}
        dup_ids: list[tuple[int, str]] = []
        for i, ev in enumerate(self.batch):
            eid = ev.pdu.event_id
            key = None
            if ev.txn is not None:
                key = (ev.txn.user_id, ev.txn.device_id, ev.pdu.room_id, ev.txn.txn_id)
            stored = existing.get(eid)
            if stored is not None and (not stored[1] or ev.outlier):
                dup_ids.append((i, eid))
                continue
            if key is not None and (key in txn_hits or key in seen_txns):
                dup_ids.append((i, txn_hits[key][0] if key in txn_hits else seen_txns[key]))
                continue
            if key is not None:
                seen_txns[key] = eid
            self.items.append(_Item(i, ev, self.positions[i], promote=stored is not None))
        if dup_ids:
            await self._report_duplicates(dup_ids)

    async def _existing_txn_ids(self) -> dict[tuple[str, str, str, str], tuple[str, int]]:
        keys = [
            (e.txn.user_id, e.txn.device_id, e.pdu.room_id, e.txn.txn_id)
            for e in self.batch
            if e.txn is not None
        ]
        out: dict[tuple[str, str, str, str], tuple[str, int]] = {}
        for part in chunks(keys, 100):
            cond = " OR ".join(
                ["(t.user_id = ? AND t.device_id = ? AND t.room_id = ? AND t.txn_id = ?)"]
                * len(part)
            )
            rows = await self.txn.fetchall(
                "SELECT t.user_id, t.device_id, t.room_id, t.txn_id, t.event_id,"
                " e.stream_ordering FROM event_txn_ids t"
                f" JOIN events e ON e.event_id = t.event_id WHERE {cond}",
                *[v for k in part for v in k],
            )
            out.update({(r[0], r[1], r[2], r[3]): (r[4], int(r[5])) for r in rows})
        return out

    async def _report_duplicates(self, dups: list[tuple[int, str]]) -> None:
        ids = list({eid for _, eid in dups})
        info: dict[str, tuple[int, int | None]] = {}
        for part in chunks(ids):
            rows = await self.txn.fetchall(
                "SELECT e.event_id, e.stream_ordering, g.state_group FROM events e"
                " LEFT JOIN event_to_state_group g ON g.event_id = e.event_id"
                f" WHERE e.event_id IN ({qmarks(part)})",
                *part,
            )
            info.update({r[0]: (int(r[1]), r[2]) for r in rows})
        batch_items = {it.ev.pdu.event_id: it for it in self.items}
        for i, eid in dups:
            if eid in info:
                pos, group = info[eid]
                self.results[i] = PersistedEvent(eid, pos, group, deduplicated=True)
            else:  # the txn ID's first use is earlier in this very batch: filled in by run()
                self.batch_dups.append((i, batch_items[eid]))

    # -- state groups -----------------------------------------------------------------------

    async def _assign_state_groups(self) -> None:
        """Resolve each event's state before into a group, create the groups needed."""
        dag = [it for it in self.items if not it.ev.outlier]
        if not dag:
            return
        in_batch = {it.ev.pdu.event_id for it in dag}
        refs_out = {
            sb.event_id
            for it in dag
            if isinstance(sb := it.ev.state_before, StateAfter) and sb.event_id not in in_batch
        }
        stored_after = await self.p.state.get_state_groups_for_events(refs_out, self.txn)
        stored_groups = {g for it in dag if (g := _stored_group(it.ev.state_before)) is not None}
        known = await self.p.state.group_depths(self.txn, stored_groups)
        if stored_groups - known.keys():
            raise UnknownStateGroupError(
                f"unknown state groups {sorted(stored_groups - known.keys())}"
            )
        count = sum(
            (1 if isinstance(it.ev.state_before, Mapping) or _new_delta(it.ev.state_before) else 0)
            + (1 if it.ev.pdu.is_state() and it.ev.rejected_reason is None else 0)
            for it in dag
        )
        fresh = iter(await self.p.state.allocate_ids(self.txn, count) if count else [])
        new_groups: list[tuple[int, NewGroup]] = []
        after_of: dict[str, int] = {}
        for it in dag:
            pdu, sb = it.ev.pdu, it.ev.state_before
            if isinstance(sb, int):
                before = sb
            elif isinstance(sb, StateAfter):
                if sb.event_id in after_of:
                    before = after_of[sb.event_id]
                elif sb.event_id in stored_after:
                    before = stored_after[sb.event_id][0]
                else:
                    raise MissingStateError(
                        f"{pdu.event_id}: no state stored after {sb.event_id}"
                    )
            elif isinstance(sb, StateDelta) and not _new_delta(sb):
                assert sb.prev_group is not None
                before = sb.prev_group  # no changes: the same state, the same group
            elif isinstance(sb, StateDelta):
                before = next(fresh)
                new_groups.append(
                    (before, NewGroup(pdu.room_id, pdu.event_id, sb.prev_group, sb.changes))
                )
            else:
                assert sb is not None  # checked in persist()
                before = next(fresh)
                new_groups.append((before, NewGroup(pdu.room_id, pdu.event_id, None, dict(sb))))
            after = before
            if pdu.is_state() and it.ev.rejected_reason is None:
                after = next(fresh)
                change = {pdu.state_tuple: pdu.event_id}
                new_groups.append((after, NewGroup(pdu.room_id, pdu.event_id, before, change)))
            it.before, it.after = before, after
            after_of[pdu.event_id] = after
        await self.p.state.create_groups(self.txn, new_groups)
        self.new_groups = new_groups
        await self.txn.executemany(
            "INSERT INTO event_to_state_group (event_id, state_group, state_group_before)"
            " VALUES (?, ?, ?)",
            [(it.ev.pdu.event_id, it.after, it.before) for it in dag],
        )

    # -- events and edges -------------------------------------------------------------------

    async def _write_events(self) -> None:
        new_rows = []
        promoted = []
        for it in self.items:
            ev, pdu = it.ev, it.ev.pdu
            received = ev.received_ts if ev.received_ts is not None else self.now
            in_timeline = not ev.excluded
            if it.promote:
                promoted.append(
                    (it.position, ev.soft_failed, ev.rejected_reason, in_timeline, received,
                     pdu.event_id)
                )
                continue
            new_rows.append(
                (
                    it.position, pdu.event_id, pdu.room_id, pdu.type, pdu.state_key, pdu.sender,
                    pdu.depth, pdu.origin_server_ts, received, ev.outlier, ev.soft_failed,
                    ev.rejected_reason, in_timeline, pdu.room_version.identifier,
                    orjson.dumps(pdu.data).decode(),
                )
            )
        if new_rows:
            await self.txn.executemany(
                "INSERT INTO events (stream_ordering, event_id, room_id, type, state_key,"
                " sender, depth, origin_server_ts, received_ts, outlier, soft_failed,"
                " rejected_reason, in_timeline, room_version, json)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                new_rows,
            )
        if promoted:
            await self.txn.executemany(
                "UPDATE events SET stream_ordering = ?, outlier = FALSE, soft_failed = ?,"
                " rejected_reason = ?, in_timeline = ?, received_ts = ? WHERE event_id = ?",
                promoted,
            )

    async def _write_edges(self) -> None:
        edges = [
            (it.ev.pdu.event_id, prev, it.ev.excluded)
            for it in self.items
            for prev in it.ev.pdu.prev_event_ids()
        ]
        auth = [
            (it.ev.pdu.event_id, aid) for it in self.items for aid in it.ev.pdu.auth_event_ids()
        ]
        if edges:
            await self.txn.executemany(
                "INSERT INTO event_edges (event_id, prev_event_id, is_excluded) VALUES (?, ?, ?)"
                " ON CONFLICT (event_id, prev_event_id)"
                " DO UPDATE SET is_excluded = EXCLUDED.is_excluded",
                edges,
            )
        if auth:
            await self.txn.executemany(
                "INSERT INTO event_auth (event_id, auth_id) VALUES (?, ?)"
                " ON CONFLICT (event_id, auth_id) DO NOTHING",
                auth,
            )

    async def _read_extremities(self, rooms: list[str]) -> dict[str, set[str]]:
        current: dict[str, set[str]] = {r: set() for r in rooms}
        for part in chunks(rooms):
            rows = await self.txn.fetchall(
                "SELECT room_id, event_id FROM event_forward_extremities"
                f" WHERE room_id IN ({qmarks(part)})",
                *part,
            )
            for room_id, eid in rows:
                current[room_id].add(eid)
        return current

    async def _update_extremities(self, rooms: list[str]) -> None:
        """New extremities from those read at the start (nothing else writes the table
        meanwhile: the room locks are held)."""
        txn = self.txn
        current = self.extremities
        by_room: dict[str, list[NewEvent]] = {}
        for it in self.items:
            pdu = it.ev.pdu
            by_room.setdefault(pdu.room_id, []).append(
                NewEvent(pdu.event_id, pdu.prev_event_ids(), it.ev.excluded)
            )
        candidates = [it.ev.pdu.event_id for it in self.items if not it.ev.excluded]
        referenced: set[str] = set()
        for part in chunks(candidates):
            rows = await txn.fetchall(
                "SELECT DISTINCT prev_event_id FROM event_edges"
                f" WHERE prev_event_id IN ({qmarks(part)}) AND NOT is_excluded",
                *part,
            )
            referenced.update(r[0] for r in rows)
        removed: list[tuple[str, str]] = []
        added: list[tuple[str, str]] = []
        for room_id, new_events in by_room.items():
            update = update_forward_extremities(current[room_id], new_events, referenced)
            removed += [(room_id, e) for e in update.removed]
            added += [(room_id, e) for e in update.added]
        if removed:
            await txn.executemany(
                "DELETE FROM event_forward_extremities WHERE room_id = ? AND event_id = ?",
                removed,
            )
        if added:
            await txn.executemany(
                "INSERT INTO event_forward_extremities (room_id, event_id) VALUES (?, ?)", added
            )

    # -- memberships, relations, redactions, txn IDs, rooms ---------------------------------

    async def _write_memberships(self) -> None:
        await write_memberships(self.txn, ((it.ev.pdu, it.position) for it in self.items))

    async def _write_relations_and_redactions(self) -> dict[str, str]:
        """Relations and redactions of timeline events; returns ``event_id -> redacted_by``
        for the events this batch marked as redacted."""
        relations = []
        redactions = []
        for it in self.items:
            if it.ev.excluded:
                continue
            pdu = it.ev.pdu
            if pdu.type == "m.room.redaction" and pdu.redacts is not None:
                redactions.append((pdu.event_id, pdu.redacts, self.now))
            rel = _relation(pdu)
            if rel is not None and not pdu.is_state():
                relations.append(
                    (pdu.event_id, *rel, pdu.room_id, pdu.type, pdu.sender, it.position)
                )
        if relations:
            await self.txn.executemany(
                "INSERT INTO event_relations (event_id, relates_to, rel_type, aggregation_key,"
                " room_id, event_type, sender, stream_ordering) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (event_id) DO NOTHING",
                relations,
            )
        if redactions:
            await self.txn.executemany(
                "INSERT INTO redactions (event_id, redacts, received_ts) VALUES (?, ?, ?)"
                " ON CONFLICT (event_id) DO NOTHING",
                redactions,
            )
        # Targets redacted by this batch, and events of this batch redacted earlier.
        targets = {r[1] for r in redactions} | {it.ev.pdu.event_id for it in self.items}
        marked: dict[str, str] = {}
        for part in chunks(sorted(targets)):
            # Only a redaction from the target's own room counts.
            rows = await self.txn.fetchall(
                "UPDATE events SET redacted = TRUE, redacted_by = (SELECT min(r.event_id)"
                f" {_SAME_ROOM_REDACTIONS})"
                f" WHERE event_id IN ({qmarks(part)}) AND redacted_by IS NULL"
                f" AND EXISTS (SELECT 1 {_SAME_ROOM_REDACTIONS})"
                " RETURNING event_id, redacted_by",
                *part,
            )
            marked.update({r[0]: r[1] for r in rows})
        for part in chunks(sorted(marked)):
            await self.txn.execute(
                f"DELETE FROM event_relations WHERE event_id IN ({qmarks(part)})", *part
            )
        return marked

    async def _write_txn_ids_and_rooms(self) -> None:
        txns = [
            (ev.txn.user_id, ev.txn.device_id, ev.pdu.room_id, ev.txn.txn_id, ev.pdu.event_id,
             self.now)
            for ev in (it.ev for it in self.items)
            if ev.txn is not None
        ]
        if txns:
            await self.txn.executemany(
                "INSERT INTO event_txn_ids (user_id, device_id, room_id, txn_id, event_id,"
                " inserted_ts) VALUES (?, ?, ?, ?, ?, ?)",
                txns,
            )
        creates = [
            (pdu.room_id, pdu.room_version.identifier, _creator(pdu), pdu.origin_server_ts)
            for pdu in (it.ev.pdu for it in self.items if it.ev.rejected_reason is None)
            if pdu.type == "m.room.create" and pdu.state_key == ""
        ]
        if creates:
            await self.txn.executemany(
                "INSERT INTO rooms (room_id, room_version, creator, created_ts)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (room_id) DO NOTHING",
                creates,
            )

    # -- current state ----------------------------------------------------------------------

    async def _update_current_state(self, rooms: list[str]) -> None:
        """The default delta (accepted state events in batch order) or the caller's."""
        deltas: dict[str, dict[StateKey, str | None]] = {}
        # Changes are logged at the room's newest (forward) position of the batch.
        fallback = max(self.positions)
        positions = dict.fromkeys(rooms, fallback)
        last: dict[str, int] = {}
        for it in self.items:
            pdu = it.ev.pdu
            if not it.ev.backfilled:
                last[pdu.room_id] = max(last.get(pdu.room_id, 0), it.position)
            if (
                pdu.room_id in self.current_state
                or it.ev.excluded
                or it.ev.backfilled
                or not pdu.is_state()
            ):
                continue
            deltas.setdefault(pdu.room_id, {})[pdu.state_tuple] = pdu.event_id
        positions.update(last)
        for room_id, delta in self.current_state.items():
            deltas[room_id] = dict(delta)
        batch_pdus = {it.ev.pdu.event_id: it.ev.pdu for it in self.items}
        entered = await apply_current_state(self.txn, deltas, positions, batch_pdus)
        new = {it.ev.pdu.event_id for it in self.items if not it.promote}
        self.replaced = {eid: prev for eid, prev in entered.items() if eid in new}

    def recent_entries(self) -> list[tuple[int, Written | None]]:
        """The batch's forward positions for ``RecentWrites``; none at all when the batch
        holds an outlier (a later promotion moves its rows to another position)."""
        if any(e.outlier for e in self.batch) or any(it.promote for it in self.items):
            return []
        member_delta = any(
            etype == MEMBER for delta in self.current_state.values() for etype, _ in delta
        ) or any(it.ev.pdu.type == MEMBER and it.ev.pdu.is_state() for it in self.items)
        by_position = {it.position: it for it in self.items}
        out: list[tuple[int, Written | None]] = []
        for position in self.positions:
            if position <= 0:  # backfilled: outside every sync range
                continue
            it = by_position.get(position)
            if it is None:
                out.append((position, None))  # a duplicate: nothing written there
                continue
            pdu = it.ev.pdu
            membership = None
            if (pdu.type == MEMBER and pdu.state_key is not None
                    and pdu.membership is not None and pdu.rejected_reason is None):
                membership = (pdu.state_key, pdu.membership)
            out.append((position, Written(pdu.room_id, pdu.event_id, not it.ev.excluded,
                                          membership, member_delta)))
        return out

    def _meta(self, it: _Item, redacted: Mapping[str, str]) -> EventMeta:
        ev, pdu = it.ev, it.ev.pdu
        return EventMeta(
            pdu.event_id, pdu.room_id, it.position, pdu.depth,
            ev.received_ts if ev.received_ts is not None else self.now,
            ev.outlier, ev.soft_failed, ev.rejected_reason, redacted.get(pdu.event_id),
        )


def _fast_eligible(
    batch: Sequence[EventToPersist],
    current_state: CurrentStateDeltas | None,
    expected: Mapping[str, Collection[str]] | None,
) -> bool:
    """Whether ``_BatchWriter.run_fast`` can take the batch: accepted non-state events
    joining the DAG (neither outliers, rejected, soft-failed nor backfilled) whose state
    before is the state after a stored event or an earlier event of the batch, transaction
    IDs distinct, no current-state delta, extremity expectations only for the batch's rooms.
    Whether some event or transaction ID is stored already is found out by the call."""
    if current_state:
        return False
    ids = {e.pdu.event_id for e in batch}
    seen: set[str] = set()
    txns: set[tuple[str, str, str, str]] = set()
    rooms: set[str] = set()
    for ev in batch:
        pdu = ev.pdu
        sb = ev.state_before
        if (ev.outlier or ev.soft_failed or ev.backfilled or pdu.rejected_reason is not None
                or pdu.is_state() or not isinstance(sb, StateAfter)):
            return False
        if sb.event_id in ids and sb.event_id not in seen:
            return False  # refers to a later event of the batch: the general path's error
        if ev.txn is not None:
            key = (ev.txn.user_id, ev.txn.device_id, pdu.room_id, ev.txn.txn_id)
            if key in txns:
                return False
            txns.add(key)
        seen.add(pdu.event_id)
        rooms.add(pdu.room_id)
    return not expected or expected.keys() <= rooms


def _stored_group(sb: object) -> int | None:
    """The existing group a state-before description refers to, if any."""
    if isinstance(sb, int):
        return sb
    return sb.prev_group if isinstance(sb, StateDelta) else None


def _new_delta(sb: object) -> bool:
    """Whether ``sb`` is a ``StateDelta`` that needs a group of its own."""
    return isinstance(sb, StateDelta) and (bool(sb.changes) or sb.prev_group is None)


def _creator(pdu: PDU) -> str:
    creator = pdu.content.get("creator")
    if not pdu.room_version.implicit_room_creator and isinstance(creator, str):
        return creator
    return pdu.sender


__all__ = [
    "CurrentStateDeltas",
    "EventPersister",
    "MissingStateError",
    "PersistOutcome",
    "StaleExtremitiesError",
]
