"""``EventsStore``: the room pipeline's and federation's view of events and state.

Composes the persister (``persist.py``), the state groups (``hs.storage.state``), the rooms
tables (``hs.storage.rooms``) and the timeline reads (``timeline.py``). Events are cached by
ID in a bounded LRU (PDU + metadata); entries change only when a later redaction marks
them, and the persister reports those so they are dropped. With several processes on one
PostgreSQL database a process does not see another's redaction marks until the entry is
evicted; the PDUs themselves are immutable.

The store is also a ``hs.core.state_res.store.StateResolutionStore`` (``get_events`` and
``get_auth_chain_difference``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import orjson

from hs.core.dag import auth_chain_async, auth_difference_async
from hs.core.pdu import PDU
from hs.core.room_versions import get_room_version
from hs.storage.database import Database
from hs.storage.events._util import chunks, qmarks
from hs.storage.events.cache import LruCache, scaled
from hs.storage.events.persist import CurrentStateDeltas, EventPersister, PrecommitSource
from hs.storage.events.recent import RecentWrites
from hs.storage.events.timeline import TimelineMixin
from hs.storage.events.types import EventMeta, EventToPersist, Member, PersistedEvent, RoomForUser
from hs.storage.rooms.store import MEMBER, RoomsStore
from hs.storage.state.store import DEFAULT_SNAPSHOT_INTERVAL, StateFilter, StateMap, StateStore
from hs.storage.streams import StreamIdGenerator

_EVENT_COLUMNS = (
    "event_id, json, room_version, rejected_reason, room_id, stream_ordering, depth,"
    " received_ts, outlier, soft_failed, redacted_by"
)


def _row_to_event(row: Sequence[Any]) -> tuple[PDU, EventMeta]:
    eid, raw, version, rejected, room_id, stream, depth, received, outlier, soft, red = row
    pdu = PDU(orjson.loads(raw), get_room_version(version), eid, rejected)
    meta = EventMeta(
        eid, room_id, int(stream), int(depth), int(received), bool(outlier), bool(soft),
        rejected, red,
    )
    return pdu, meta


class EventsStore(TimelineMixin):
    """Batched persistence and the reads built on it (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        events_stream: StreamIdGenerator,
        *,
        backfill_stream: StreamIdGenerator | None = None,
        cache_factor: float = 1.0,
        snapshot_interval: int = DEFAULT_SNAPSHOT_INTERVAL,
    ) -> None:
        """``backfill_stream`` (e.g. ``streams["backfill"]``) numbers backfilled events,
        stored as the negated position; without it backfilled events are refused."""
        self.db = db
        self.stream = events_stream
        self.state = StateStore(db, snapshot_interval=snapshot_interval, cache_factor=cache_factor)
        self.rooms = RoomsStore(db)
        #: This process's recent writes to the events stream (/sync's short ranges).
        self.recent = RecentWrites()
        self._persister = EventPersister(db, events_stream, self.state, backfill_stream,
                                         self.recent)
        self._cache: LruCache[str, tuple[PDU, EventMeta]] = LruCache(
            scaled(10_000, cache_factor)
        )
        #: ``listener(batch, results)`` after every committed batch (metrics); must not block.
        self.persist_listeners: list[
            Callable[[Sequence[EventToPersist], list[PersistedEvent]], None]
        ] = []
        #: ``remember(replaced)`` with ``PersistOutcome.replaced`` of a committed batch.
        self.replaced_listeners: list[Callable[[Mapping[str, str]], None]] = []

    @classmethod
    async def create(cls, db: Database, instance_name: str = "main", **kwargs: Any) -> EventsStore:
        """A store with its own ``events`` and ``backfill`` generators (tests, tools)."""
        stream = await StreamIdGenerator.create(db, "events", instance_name)
        backfill = await StreamIdGenerator.create(db, "backfill", instance_name)
        return cls(db, stream, backfill_stream=backfill, **kwargs)

    # -- writing ----------------------------------------------------------------------------

    def set_precommit(self, source: PrecommitSource | None) -> None:
        """PostgreSQL: rows to commit with each fast-path batch (``persist.Precommit``)."""
        self._persister.precommit = source

    async def persist_events(
        self,
        batch: Sequence[EventToPersist],
        *,
        current_state: CurrentStateDeltas | None = None,
        expected_extremities: Mapping[str, Collection[str]] | None = None,
    ) -> list[PersistedEvent]:
        """Persist ``batch`` atomically; one ``PersistedEvent`` per input, in order.

        ``current_state``: per room, the current-state delta to apply instead of the
        default (the batch's accepted state events in order); see ``persist.py``.
        ``expected_extremities``: per room, the forward extremities the batch was built
        on; ``StaleExtremitiesError`` (nothing written) when they changed.
        """
        member_rooms = {e.pdu.room_id for e in batch
                        if e.pdu.type == MEMBER and e.pdu.state_key is not None}
        member_rooms.update(current_state or ())
        try:
            outcome = await self._persister.persist(batch, current_state, expected_extremities)
        finally:
            if member_rooms:
                self.rooms.members_changed(member_rooms)
        self._cache.invalidate(outcome.redacted)
        for pdu, meta in outcome.written:
            self._cache.set(pdu.event_id, (pdu, meta))
        # Committed: the first /sync or page that shows these events needs their groups.
        self.state.remember_event_groups(outcome.groups)
        self.state.remember_new_groups(outcome.new_groups)
        if outcome.replaced:
            for remember in self.replaced_listeners:
                remember(outcome.replaced)
        for listener in self.persist_listeners:
            listener(batch, outcome.results)
        return outcome.results

    # -- events -----------------------------------------------------------------------------

    async def get_events_with_meta(
        self, event_ids: Iterable[str]
    ) -> dict[str, tuple[PDU, EventMeta]]:
        """Events we hold among ``event_ids`` with their metadata (unknown IDs left out)."""
        out: dict[str, tuple[PDU, EventMeta]] = {}
        missing = []
        for eid in dict.fromkeys(event_ids):
            hit = self._cache.get(eid)
            if hit is None:
                missing.append(eid)
            else:
                out[eid] = hit
        for part in chunks(missing):
            rows = await self.db.fetchall(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE event_id IN ({qmarks(part)})", *part
            )
            for row in rows:
                entry = _row_to_event(row)
                out[row[0]] = entry
                self._cache.set(row[0], entry)
        return out

    async def get_events(self, event_ids: Collection[str]) -> dict[str, PDU]:
        """PDUs by ID; rejected ones too (``rejected_reason`` set), unknown IDs left out."""
        return {eid: pdu for eid, (pdu, _) in (await self.get_events_with_meta(event_ids)).items()}

    async def get_event(self, event_id: str) -> PDU | None:
        return (await self.get_events([event_id])).get(event_id)

    async def get_event_meta(self, event_ids: Iterable[str]) -> dict[str, EventMeta]:
        return {e: m for e, (_, m) in (await self.get_events_with_meta(event_ids)).items()}

    async def have_events(self, event_ids: Collection[str]) -> set[str]:
        """Which of ``event_ids`` are stored (outliers included), without loading them."""
        found: set[str] = {e for e in event_ids if e in self._cache}
        rest = [e for e in set(event_ids) if e not in found]
        for part in chunks(rest):
            rows = await self.db.fetchall(
                f"SELECT event_id FROM events WHERE event_id IN ({qmarks(part)})", *part
            )
            found.update(r[0] for r in rows)
        return found

    # -- DAG --------------------------------------------------------------------------------

    async def get_forward_extremities(self, room_id: str) -> set[str]:
        rows = await self.db.fetchall(
            "SELECT event_id FROM event_forward_extremities WHERE room_id = ?", room_id
        )
        return {r[0] for r in rows}

    async def get_prev_and_auth_ids(
        self, event_ids: Collection[str]
    ) -> dict[str, tuple[list[str], list[str]]]:
        """``event_id -> (prev_event_ids, auth_event_ids)`` for stored events."""
        out: dict[str, tuple[list[str], list[str]]] = {}
        ids = list(set(event_ids))
        for part in chunks(ids):
            rows = await self.db.fetchall(
                f"SELECT event_id FROM events WHERE event_id IN ({qmarks(part)})", *part
            )
            out.update({r[0]: ([], []) for r in rows})
            for eid, prev in await self.db.fetchall(
                "SELECT event_id, prev_event_id FROM event_edges"
                f" WHERE event_id IN ({qmarks(part)})",
                *part,
            ):
                out[eid][0].append(prev)
            for eid, auth in await self.db.fetchall(
                f"SELECT event_id, auth_id FROM event_auth WHERE event_id IN ({qmarks(part)})",
                *part,
            ):
                out[eid][1].append(auth)
        return out

    async def is_referenced(self, event_ids: Collection[str]) -> set[str]:
        """Which of ``event_ids`` are a prev event of a stored, non-excluded event."""
        found: set[str] = set()
        for part in chunks(list(set(event_ids))):
            rows = await self.db.fetchall(
                "SELECT DISTINCT prev_event_id FROM event_edges"
                f" WHERE prev_event_id IN ({qmarks(part)}) AND NOT is_excluded",
                *part,
            )
            found.update(r[0] for r in rows)
        return found

    async def _fetch_auth(self, frontier: list[str]) -> dict[str, list[str]]:
        """One frontier of an auth walk: stored events -> their auth event IDs."""
        out: dict[str, list[str]] = {}
        for part in chunks(frontier):
            rows = await self.db.fetchall(
                "SELECT e.event_id, a.auth_id FROM events e"
                " LEFT JOIN event_auth a ON a.event_id = e.event_id"
                f" WHERE e.event_id IN ({qmarks(part)})",
                *part,
            )
            for eid, auth in rows:
                parents = out.setdefault(eid, [])
                if auth is not None:
                    parents.append(auth)
        return out

    async def auth_chain_ids(
        self, event_ids: Iterable[str], *, allow_missing: bool = False
    ) -> set[str]:
        """The union of the auth chains of ``event_ids``: one query per frontier."""
        return await auth_chain_async(event_ids, self._fetch_auth, allow_missing)

    async def get_auth_chain_difference(
        self, room_id: str, state_sets: list[set[str]]
    ) -> set[str]:
        """StateResolutionStore: auth difference of the sets (a set's own events count)."""
        return await auth_difference_async(state_sets, self._fetch_auth, allow_missing=True)

    # -- state, rooms, memberships ----------------------------------------------------------

    async def get_state_ids_at(
        self, event_id: str, types: StateFilter | None = None, *, before: bool = False
    ) -> StateMap | None:
        """The state after (``before=True``: before) an event; None if it has no state."""
        return await self.state.get_state_ids_at(event_id, types, before=before)

    async def get_state_ids_for_group(
        self, group: int, types: StateFilter | None = None
    ) -> StateMap:
        return await self.state.get_state_ids_for_group(group, types)

    async def get_state_group_for_event(self, event_id: str) -> int | None:
        """The group holding the state after ``event_id``."""
        groups = await self.state.get_state_groups_for_events([event_id])
        return groups[event_id][0] if event_id in groups else None

    async def get_current_state_ids(
        self, room_id: str, types: StateFilter | None = None
    ) -> StateMap:
        return await self.rooms.get_current_state_ids(room_id, types)

    async def get_room_version(self, room_id: str) -> str | None:
        return await self.rooms.get_room_version(room_id)

    async def event_id_for_txn(
        self, user_id: str, device_id: str, room_id: str, txn_id: str
    ) -> str | None:
        """The event a client's earlier send with this transaction ID created."""
        value = await self.db.fetchval(
            "SELECT event_id FROM event_txn_ids WHERE user_id = ? AND device_id = ?"
            " AND room_id = ? AND txn_id = ?",
            user_id,
            device_id,
            room_id,
            txn_id,
        )
        return None if value is None else str(value)

    async def delete_txn_ids_for_device(self, user_id: str, device_id: str) -> int:
        """Forget a deleted device's transaction IDs (they are scoped to the device)."""
        return await self.db.execute(
            "DELETE FROM event_txn_ids WHERE user_id = ? AND device_id = ?", user_id, device_id
        )

    async def prune_txn_ids(self, older_than_ts: int) -> int:
        """Drop transaction IDs recorded before ``older_than_ts`` (ms): clients retry
        within minutes, so keeping them forever only grows the table."""
        return await self.db.execute(
            "DELETE FROM event_txn_ids WHERE inserted_ts < ?", older_than_ts
        )

    async def get_rooms_for_user(
        self, user_id: str, memberships: Sequence[str] = ("join",)
    ) -> list[RoomForUser]:
        return await self.rooms.get_rooms_for_user(user_id, memberships)

    async def get_members(
        self,
        room_id: str,
        memberships: Sequence[str] | None = None,
        *,
        at_event: str | None = None,
    ) -> dict[str, Member]:
        """Members now, or in the state after ``at_event``; optionally filtered."""
        if at_event is None:
            return await self.rooms.get_members(room_id, memberships)
        state = await self.state.get_state_ids_at(at_event, [(MEMBER, None)])
        if state is None:
            return {}
        return await self.rooms.members_from_state(state, memberships)

    # -- stream positions -------------------------------------------------------------------

    def max_stream_ordering(self) -> int:
        """The highest position readers may see (every event at or below is committed)."""
        return self.stream.current()

    async def get_room_max_stream_ordering(self, room_id: str) -> int | None:
        """The position of the room's newest timeline event visible to readers."""
        value = await self.db.fetchval(
            "SELECT max(stream_ordering) FROM events WHERE room_id = ? AND in_timeline"
            " AND stream_ordering <= ?",
            room_id,
            self.stream.current(),
        )
        return None if value is None else int(value)


__all__ = ["EventsStore"]
