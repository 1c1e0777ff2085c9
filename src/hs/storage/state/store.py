"""State groups: room states stored as delta chains with periodic full snapshots.

A group is either a snapshot (``delta_depth`` 0, every entry stored) or the changes on top
of ``prev_group`` (``delta_depth`` = prev's + 1). When a delta would reach
``snapshot_interval`` the full state is written instead, so reading a group touches at most
``snapshot_interval`` groups: one recursive query for the chain, one for the entries.
Groups are immutable once committed, which is what makes the LRU of resolved maps safe.

Writing happens inside the event persister's transaction (``create_groups``); the group IDs
come from a sequence (PostgreSQL) or a counter row (SQLite's single writer).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from hs.core.pdu import StateKey
from hs.storage.database import Database, Queryable
from hs.storage.events._util import chunks, qmarks
from hs.storage.events.cache import LruCache, WeightedLruCache, scaled

StateMap = dict[StateKey, str]
#: (type, state_key or None for any key) pairs selecting part of a state map.
StateFilter = Iterable[tuple[str, str | None]]

DEFAULT_SNAPSHOT_INTERVAL = 50
#: State entries the group cache keeps over all its maps (x the cache factor): thousands
#: of small rooms' recent groups, or a few of a very big room's.
STATE_CACHE_ENTRIES = 100_000
#: Largest map ``remember_new_groups`` builds ahead of a read.
REMEMBER_MAX_ENTRIES = 1000


class UnknownStateGroupError(LookupError):
    """A state group ID that is not stored."""


@dataclass(frozen=True, slots=True)
class NewGroup:
    """A group to create: ``changes`` on ``prev_group`` (None: from the empty state)."""

    room_id: str
    event_id: str | None
    prev_group: int | None
    changes: Mapping[StateKey, str | None]


def filter_state(state: Mapping[StateKey, str], types: StateFilter | None) -> StateMap:
    """The entries of ``state`` selected by ``types`` (all when None)."""
    if types is None:
        return dict(state)
    exact: set[StateKey] = set()
    whole: set[str] = set()
    for etype, skey in types:
        if skey is None:
            whole.add(etype)
        else:
            exact.add((etype, skey))
    return {k: v for k, v in state.items() if k[0] in whole or k in exact}


def diff_state(
    old: Mapping[StateKey, str], new: Mapping[StateKey, str]
) -> dict[StateKey, str | None]:
    """The changes turning ``old`` into ``new`` (None: removed), e.g. to hand a resolved
    state to the persister as a ``StateDelta`` or a current-state delta."""
    changes: dict[StateKey, str | None] = {k: v for k, v in new.items() if old.get(k) != v}
    changes.update({k: None for k in old.keys() - new.keys()})
    return changes


class StateStore:
    """Reads state groups (cached) and creates them inside a caller's transaction."""

    def __init__(
        self,
        db: Database,
        *,
        snapshot_interval: int = DEFAULT_SNAPSHOT_INTERVAL,
        cache_factor: float = 1.0,
    ) -> None:
        if snapshot_interval < 1:
            raise ValueError("snapshot_interval must be >= 1")
        self.db = db
        self.snapshot_interval = snapshot_interval
        #: group -> its full state map, bounded by the maps' total size (entries).
        self._cache: WeightedLruCache[int, StateMap] = WeightedLruCache(
            scaled(STATE_CACHE_ENTRIES, cache_factor), _map_weight)
        #: event -> (group after, group before): written once when the event is persisted
        #: with state and never changed, so a hit is always true (misses are not cached:
        #: an outlier may gain state later).
        self._event_groups: LruCache[str, tuple[int, int]] = LruCache(
            scaled(20_000, cache_factor))

    # -- reading ----------------------------------------------------------------------------

    async def get_state_ids_for_group(
        self, group: int, types: StateFilter | None = None
    ) -> StateMap:
        """The state map of ``group``; raises ``UnknownStateGroupError``."""
        state = (await self.get_state_ids_for_groups([group]))[group]
        return filter_state(state, types)

    async def get_state_ids_for_groups(
        self, groups: Collection[int], q: Queryable | None = None
    ) -> dict[int, StateMap]:
        """Full state maps of ``groups`` (batched); pass ``q`` to read inside a transaction
        (results from an uncommitted transaction are not cached)."""
        in_txn = q is not None
        q = q or self.db
        out: dict[int, StateMap] = {}
        missing = []
        for g in set(groups):
            hit = self._cache.get(g)
            if hit is not None:
                out[g] = dict(hit)
            else:
                missing.append(g)
        if not missing:
            return out
        chain: dict[int, tuple[int | None, int]] = {}
        for part in chunks(missing):
            rows = await q.fetchall(
                "WITH RECURSIVE chain(id, prev, depth) AS ("
                " SELECT id, prev_group, delta_depth FROM state_groups"
                f" WHERE id IN ({qmarks(part)})"
                " UNION SELECT g.id, g.prev_group, g.delta_depth FROM state_groups g"
                " JOIN chain c ON g.id = c.prev WHERE c.depth > 0"
                ") SELECT id, prev, depth FROM chain",
                *part,
            )
            chain.update({int(r[0]): (r[1], int(r[2])) for r in rows})
        unknown = [g for g in missing if g not in chain]
        if unknown:
            raise UnknownStateGroupError(f"unknown state groups {sorted(unknown)}")
        # Each group's path back to a snapshot or a cached ancestor, newest first; the
        # ancestor's map is taken now, as the cache may evict it while we query.
        paths: dict[int, list[int]] = {}
        bases: dict[int, StateMap] = {}
        needed: set[int] = set()
        for g in missing:
            path = []
            cur: int | None = g
            while cur is not None:
                cached = self._cache.get(cur) if cur != g else None
                if cached is not None:
                    bases[g] = cached
                    break
                path.append(cur)
                prev, depth = chain[cur]
                cur = None if depth == 0 else prev
            paths[g] = path
            needed.update(path)
        entries: dict[int, list[tuple[str, str, str | None]]] = {g: [] for g in needed}
        for part in chunks(sorted(needed)):
            rows = await q.fetchall(
                "SELECT group_id, type, state_key, event_id FROM state_group_entries"
                f" WHERE group_id IN ({qmarks(part)})",
                *part,
            )
            for gid, etype, skey, eid in rows:
                entries[int(gid)].append((etype, skey, eid))
        for g, path in paths.items():
            state: StateMap = dict(bases.get(g, {}))
            for gid in reversed(path):
                _apply(state, {(t, k): e for t, k, e in entries[gid]})
            out[g] = state
            if not in_txn:
                self._cache.set(g, dict(state))
        return out

    async def get_state_groups_for_events(
        self, event_ids: Collection[str], q: Queryable | None = None
    ) -> dict[str, tuple[int, int]]:
        """``event_id -> (group after, group before)`` for events that have state."""
        cacheable = q is None or q is self.db
        q = q or self.db
        out: dict[str, tuple[int, int]] = {}
        missing: list[str] = []
        for event_id in set(event_ids):
            hit = self._event_groups.get(event_id) if cacheable else None
            if hit is None:
                missing.append(event_id)
            else:
                out[event_id] = hit
        for part in chunks(missing):
            rows = await q.fetchall(
                "SELECT event_id, state_group, state_group_before FROM event_to_state_group"
                f" WHERE event_id IN ({qmarks(part)})",
                *part,
            )
            found = {r[0]: (int(r[1]), int(r[2])) for r in rows}
            out.update(found)
            if cacheable:  # an uncommitted transaction's rows could still roll back
                for event_id, pair in found.items():
                    self._event_groups.set(event_id, pair)
        return out

    def remember_new_groups(self, new: Sequence[tuple[int, NewGroup]]) -> None:
        """Cache the full maps of groups just committed, where they follow from a cached
        (or just computed) previous group and the changes: the first read of a room's
        newest state (a woken /sync's lazy-loaded members) then costs no query. Maps of
        more than ``REMEMBER_MAX_ENTRIES`` are left to be read when needed."""
        known: dict[int, StateMap] = {}
        for gid, n in new:
            if n.prev_group is None:
                base: StateMap | None = {}
            else:
                base = known.get(n.prev_group)
                if base is None:
                    base = self._cache.get(n.prev_group)
            if base is None or len(base) >= REMEMBER_MAX_ENTRIES:
                continue
            state = dict(base)
            _apply(state, n.changes)
            known[gid] = state
            self._cache.set(gid, state)

    def remember_event_groups(self, groups: Mapping[str, tuple[int, int]]) -> None:
        """Cache committed ``event -> (after, before)`` rows (the persister's, after its
        commit), so the reads that follow a new event do not fetch them back."""
        for event_id, pair in groups.items():
            self._event_groups.set(event_id, pair)

    async def get_state_ids_at(
        self, event_id: str, types: StateFilter | None = None, *, before: bool = False
    ) -> StateMap | None:
        """The state after ``event_id`` (before it with ``before=True``); None when the
        event has no state (unknown, or an outlier)."""
        groups = await self.get_state_groups_for_events([event_id])
        if event_id not in groups:
            return None
        after, before_group = groups[event_id]
        return await self.get_state_ids_for_group(before_group if before else after, types)

    # -- writing (inside the persister's transaction) ---------------------------------------

    async def allocate_ids(self, q: Queryable, count: int) -> list[int]:
        """``count`` fresh group IDs, in one statement."""
        if self.db.dialect == "postgres":
            rows = await q.fetchall(
                "SELECT nextval('state_group_id_seq') FROM generate_series(1, ?)", count
            )
            return [int(r[0]) for r in rows]
        top = int(
            await q.fetchval(
                "UPDATE state_group_id_counter SET last_id = last_id + ? RETURNING last_id", count
            )
        )
        return list(range(top - count + 1, top + 1))

    async def group_depths(self, q: Queryable, groups: Collection[int]) -> dict[int, int]:
        """``delta_depth`` of stored groups (missing IDs are left out)."""
        out: dict[int, int] = {}
        for part in chunks(list(set(groups))):
            rows = await q.fetchall(
                f"SELECT id, delta_depth FROM state_groups WHERE id IN ({qmarks(part)})", *part
            )
            out.update({int(r[0]): int(r[1]) for r in rows})
        return out

    async def create_groups(self, q: Queryable, new: list[tuple[int, NewGroup]]) -> None:
        """Store ``new`` (IDs from ``allocate_ids``), in order: a group's ``prev_group`` may
        be stored or an earlier group of ``new``. One insert per table for the batch."""
        if not new:
            return
        local = dict(new)
        stored = {n.prev_group for _, n in new if n.prev_group is not None} - local.keys()
        depths = await self.group_depths(q, stored)
        if stored - depths.keys():
            raise UnknownStateGroupError(f"unknown state groups {sorted(stored - depths.keys())}")
        snapshots: set[int] = set()
        for gid, n in new:
            depth = 0 if n.prev_group is None else depths[n.prev_group] + 1
            if n.prev_group is None or depth >= self.snapshot_interval:
                snapshots.add(gid)
                depth = 0
            depths[gid] = depth
        # Stored groups whose full state a new snapshot is built from.
        bases: set[int] = set()
        for gid in snapshots:
            cur = local[gid].prev_group
            while cur is not None and cur in local and cur not in snapshots:
                cur = local[cur].prev_group
            if cur is not None and cur not in local:
                bases.add(cur)
        full: dict[int, StateMap] = dict(await self.get_state_ids_for_groups(bases, q))

        def full_state(gid: int) -> StateMap:
            if gid not in full:
                n = local[gid]
                state = {} if n.prev_group is None else dict(full_state(n.prev_group))
                _apply(state, n.changes)
                full[gid] = state
            return full[gid]

        group_rows = []
        entry_rows: list[tuple[int, str, str, str | None]] = []
        for gid, n in new:
            if gid in snapshots:
                items: Iterable[tuple[StateKey, str | None]] = full_state(gid).items()
            else:
                items = n.changes.items()
            entry_rows.extend((gid, k[0], k[1], v) for k, v in items)
            group_rows.append((gid, n.room_id, n.event_id, n.prev_group, depths[gid]))
        await q.executemany(
            "INSERT INTO state_groups (id, room_id, event_id, prev_group, delta_depth)"
            " VALUES (?, ?, ?, ?, ?)",
            group_rows,
        )
        if entry_rows:
            await q.executemany(
                "INSERT INTO state_group_entries (group_id, type, state_key, event_id)"
                " VALUES (?, ?, ?, ?)",
                entry_rows,
            )


def _map_weight(state: StateMap) -> int:
    return len(state) + 1


def _apply(state: StateMap, changes: Mapping[StateKey, str | None]) -> None:
    for key, eid in changes.items():
        if eid is None:
            state.pop(key, None)
        else:
            state[key] = eid


__all__ = [
    "DEFAULT_SNAPSHOT_INTERVAL",
    "NewGroup",
    "StateFilter",
    "StateMap",
    "StateStore",
    "UnknownStateGroupError",
    "diff_state",
    "filter_state",
]
