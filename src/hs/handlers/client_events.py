"""Events in the client format (client-server "Room Events" / ClientEvent).

Everything a page of events needs is fetched for the page at once: metadata (redactions),
the redaction events (``unsigned.redacted_because``), the sending device's transaction
IDs, the state before each state event (``prev_content``/``prev_sender``/
``replaces_state``), and the bundled aggregations in ``unsigned["m.relations"]``: the
latest ``m.replace``, the ``m.thread`` summary and the ``m.reference`` chunk. A redacted
event is served redacted (``hs.core.events.redact``) with no aggregations; rejected and
soft-failed events are never served.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hs.core.events import redact
from hs.core.pdu import PDU, StateKey
from hs.handlers.filters import apply_event_fields
from hs.storage.events import EventMeta, EventsStore, ThreadSummary
from hs.storage.events.cache import Coalescer, LruCache
from hs.storage.events.types import EventToPersist, PersistedEvent
from hs.storage.filters import ClientReadStore
from hs.storage.state.store import StateStore

REDACTION = "m.room.redaction"
MEMBER = "m.room.member"
#: Recently sent events whose transaction ID is remembered (``_sent_txns``).
SENT_TXNS_CACHE = 5_000


#: Latest edits, thread summaries and references of a page of events.
_Relations = tuple[dict[str, PDU], dict[str, ThreadSummary], dict[str, list[str]]]


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who the events are serialized for: ``transaction_id`` is only shown to the device
    that sent the event, and ``current_user_participated`` depends on the user."""

    user_id: str
    device_id: str | None = None


#: Cached "the group has no such entry" (event IDs are never empty).
_ABSENT = ""


class StateEntryLookup:
    """Single entries of state groups, cached in a bounded LRU. Groups never change, so
    an entry is cached forever; a page's visibility and client fields need one or two
    keys per group (history visibility, the viewer's membership, the replaced state),
    and copying whole state maps of a big room for each would dominate the request."""

    def __init__(self, state: StateStore, max_size: int = 50_000) -> None:
        self.state = state
        self._cache: LruCache[tuple[int, StateKey], str] = LruCache(max_size)

    async def get(self, wanted: Collection[tuple[int, StateKey]]
                  ) -> dict[tuple[int, StateKey], str]:
        """``(group, key) -> event ID`` for the wanted entries that exist."""
        out: dict[tuple[int, StateKey], str] = {}
        missing: set[int] = set()
        for entry in wanted:
            hit = self._cache.get(entry)
            if hit is None:
                missing.add(entry[0])
            elif hit != _ABSENT:
                out[entry] = hit
        if missing:
            maps = await self.state.get_state_ids_for_groups(missing)
            for entry in wanted:
                group_map = maps.get(entry[0])
                if group_map is not None:
                    value = group_map.get(entry[1])
                    self._cache.set(entry, value or _ABSENT)
                    if value:
                        out[entry] = value
        return out


class ClientEventSerializer:
    def __init__(self, events: EventsStore, reads: ClientReadStore,
                 clock: Callable[[], int]) -> None:
        self.events = events
        self.reads = reads
        self.clock = clock
        self.entries = StateEntryLookup(events.state)
        #: The relation reads of a page, shared by the requests one message wakes.
        self._relation_reads: Coalescer[tuple[str, ...], _Relations] = Coalescer()
        #: Events known to have no relations (most messages): their aggregations are not
        #: read again until an event relating to them is persisted (``_on_persisted``).
        self._no_relations: LruCache[str, bool] = LruCache(50_000)
        #: Bumped by every persisted batch with a relation: a read that raced one is not
        #: remembered.
        self._relation_writes = 0
        #: Events just sent here with a transaction ID -> (user, device, txn ID): the
        #: sender's own /sync echoes each one back with ``unsigned.transaction_id``
        #: without reading it (an event has at most the one transaction ID it was sent
        #: with).
        self._sent_txns: LruCache[str, tuple[str, str, str]] = LruCache(SENT_TXNS_CACHE)
        events.persist_listeners.append(self._on_persisted)

    async def serialize(
        self,
        pdus: Sequence[PDU],
        viewer: Viewer | None,
        *,
        bundle: bool = True,
        event_fields: Sequence[str] | None = None,
        event_format: str = "client",
        state_facts: bool = True,
    ) -> list[dict[str, Any]]:
        """Client-format dicts of ``pdus`` in order (rejected/soft-failed ones left out);
        see ``serialize_pairs``."""
        return [event for _, event in await self.serialize_pairs(
            pdus, viewer, bundle=bundle, event_fields=event_fields, event_format=event_format,
            state_facts=state_facts)]

    async def serialize_pairs(
        self,
        pdus: Sequence[PDU],
        viewer: Viewer | None,
        *,
        bundle: bool = True,
        event_fields: Sequence[str] | None = None,
        event_format: str = "client",
        state_facts: bool = True,
    ) -> list[tuple[str, dict[str, Any]]]:
        """``(event ID, client-format dict)`` of ``pdus`` in order (rejected/soft-failed
        ones left out): the ID tells callers that serialize several rooms' events in one
        batch which event is which, whatever ``event_fields`` kept.

        ``state_facts=False`` is for whole state lists (``/state``, ``/members``), where
        nearly every event has its own state group and reading them all would cost a
        state map per event: ``unsigned.membership`` is left out and ``prev_content``
        comes from the rooms' current-state changes instead.
        """
        if not pdus:
            return []
        now = self.clock()
        entries = await self.events.get_events_with_meta(p.event_id for p in pdus)
        kept: list[tuple[PDU, EventMeta | None]] = []
        for pdu in pdus:
            meta = entries[pdu.event_id][1] if pdu.event_id in entries else None
            if meta is not None and (meta.rejected_reason is not None or meta.soft_failed):
                continue
            if meta is None and pdu.rejected_reason is not None:
                continue
            kept.append((pdu, meta))

        redacted_by = {p.event_id: m.redacted_by for p, m in kept if m and m.redacted_by}
        because = await self._redacted_because(set(redacted_by.values()), viewer)
        txn_ids: dict[str, str] = {}
        if viewer is not None and viewer.device_id is not None:
            own = []
            for p, _ in kept:
                if p.sender != viewer.user_id:
                    continue
                sent = self._sent_txns.get(p.event_id)
                if sent is None:
                    own.append(p.event_id)
                elif sent[1] == viewer.device_id:  # another device's: none for this one
                    txn_ids[p.event_id] = sent[2]
            if own:
                txn_ids.update(await self.reads.txn_ids_for_events(
                    viewer.user_id, viewer.device_id, own))
        prev_state: dict[str, PDU] = {}
        membership: dict[str, str] = {}
        if state_facts:
            prev_state, membership = await self._state_facts([p for p, _ in kept], viewer)
        else:
            prev_state = await self._replaced_state(kept)
        relations: dict[str, dict[str, Any]] = {}
        if bundle:
            relations = await self._aggregations(
                [p for p, _ in kept if p.event_id not in redacted_by and not p.is_state()],
                viewer)

        out: list[tuple[str, dict[str, Any]]] = []
        for pdu, meta in kept:
            eid = pdu.event_id
            data = pdu.data
            if eid in redacted_by:
                data = redact(data, pdu.room_version)
            if event_format == "federation":
                event = dict(data)
                event["unsigned"] = {"age": now - pdu.origin_server_ts}
            else:
                event = _client_dict(pdu, data, now, meta.room_id if meta else None)
            unsigned = event["unsigned"]
            if eid in redacted_by:
                red = because.get(redacted_by[eid])
                if red is not None:
                    unsigned["redacted_because"] = red
            if eid in txn_ids:
                unsigned["transaction_id"] = txn_ids[eid]
            if eid in membership:
                unsigned["membership"] = membership[eid]
            prev = prev_state.get(eid)
            if prev is not None:
                unsigned["replaces_state"] = prev.event_id
                unsigned["prev_content"] = dict(prev.content)
                unsigned["prev_sender"] = prev.sender
            if eid in relations:
                unsigned["m.relations"] = relations[eid]
            out.append((eid, apply_event_fields(event, event_fields) if event_fields else event))
        return out

    async def _redacted_because(
        self, redaction_ids: set[str], viewer: Viewer | None
    ) -> dict[str, dict[str, Any]]:
        if not redaction_ids:
            return {}
        found = await self.events.get_events(redaction_ids)
        served = await self.serialize(list(found.values()), viewer, bundle=False)
        return {e["event_id"]: e for e in served}

    async def _state_facts(
        self, events: list[PDU], viewer: Viewer | None
    ) -> tuple[dict[str, PDU], dict[str, str]]:
        """From the events' state groups (one lookup for the page): the state event each
        state event replaced (served redacted when redacted since), and the viewer's
        membership after each event (``unsigned.membership``, v1.11; "leave" when they
        had none)."""
        state_events = [p for p in events if p.is_state()]
        if not events or (viewer is None and not state_events):
            return {}, {}
        groups = await self.events.state.get_state_groups_for_events(
            [p.event_id for p in events])
        wanted: set[tuple[int, StateKey]] = {
            (groups[p.event_id][1], p.state_tuple) for p in state_events if p.event_id in groups}
        key: StateKey = (MEMBER, viewer.user_id if viewer is not None else "")
        if viewer is not None:
            wanted |= {(g[0], key) for g in groups.values()}
        entries = await self.entries.get(wanted)
        prev_ids: dict[str, str] = {}
        for pdu in state_events:
            if pdu.event_id in groups:
                prev = entries.get((groups[pdu.event_id][1], pdu.state_tuple))
                if prev is not None and prev != pdu.event_id:
                    prev_ids[pdu.event_id] = prev
        member_ids: dict[str, str] = {}
        if viewer is not None:
            for eid, (after, _) in groups.items():
                mid = entries.get((after, key))
                if mid is not None:
                    member_ids[eid] = mid
        rows = await self.events.rooms.get_memberships_by_event_ids(set(member_ids.values()))
        membership = {e: "leave" for e in groups} if viewer is not None else {}
        membership.update({e: rows[m].membership for e, m in member_ids.items() if m in rows})
        return await self._load_prev(prev_ids), membership

    async def _replaced_state(self, kept: list[tuple[PDU, EventMeta | None]]
                              ) -> dict[str, PDU]:
        by_room: dict[str, list[str]] = {}
        for pdu, meta in kept:
            if meta is not None and pdu.is_state():
                by_room.setdefault(meta.room_id, []).append(pdu.event_id)
        prev_ids: dict[str, str] = {}
        for room_id, ids in by_room.items():
            prev_ids.update(await self.reads.replaced_state(room_id, ids))
        return await self._load_prev(prev_ids)

    async def _load_prev(self, prev_ids: dict[str, str]) -> dict[str, PDU]:
        """``event_id -> replaced event``; served redacted when redacted since."""
        found = await self.events.get_events_with_meta(prev_ids.values())
        out: dict[str, PDU] = {}
        for eid, prev_id in prev_ids.items():
            if prev_id not in found:
                continue
            prev, meta = found[prev_id]
            if meta.redacted_by:
                prev = PDU(redact(prev.data, prev.room_version), prev.room_version,
                           prev.event_id)
            out[eid] = prev
        return out

    def _on_persisted(self, batch: Sequence[EventToPersist],
                      results: Sequence[PersistedEvent]) -> None:
        """``EventsStore.persist_listeners`` entry (after the commit): events a client
        just sent here (a transaction ID: the event and its ID were made in this process
        a moment ago, so nothing can relate to it yet) start as "no relations", which
        spares the first /sync serving each message its three relation reads; then forget
        "no relations" for the targets of the batch's relations (edits, replies in
        threads, references: all carry ``m.relates_to.event_id``), which covers a batch
        that relates to its own events."""
        for item, result in zip(batch, results, strict=False):
            if (item.txn is not None and not result.deduplicated and not item.outlier
                    and not item.backfilled and result.event_id == item.pdu.event_id):
                self._no_relations.set(item.pdu.event_id, True)
                self._sent_txns.set(item.pdu.event_id, (
                    item.txn.user_id, item.txn.device_id, item.txn.txn_id))
        targets = []
        for item in batch:
            relates = item.pdu.content.get("m.relates_to")
            target = relates.get("event_id") if isinstance(relates, Mapping) else None
            if isinstance(target, str):
                targets.append(target)
        if targets:
            self._relation_writes += 1
            self._no_relations.invalidate(targets)

    async def _read_relations(self, ids: list[str]) -> _Relations:
        """The viewer-independent part: latest edits, thread summaries, references."""
        upto = self.events.max_stream_ordering()
        edits, threads, refs = await asyncio.gather(
            self.events.get_latest_edits(ids), self.events.get_thread_summaries(ids),
            self.reads.references(ids, upto))
        return edits, threads, refs

    async def _aggregations(
        self, targets: list[PDU], viewer: Viewer | None
    ) -> dict[str, dict[str, Any]]:
        """``unsigned["m.relations"]`` per event (client-server "Aggregations of child
        events"): the latest edit and the thread summary as full events, references."""
        if not targets:
            return {}
        ids = [p.event_id for p in targets if self._no_relations.get(p.event_id) is None]
        if not ids:
            return {}
        writes = self._relation_writes
        edits, threads, refs = await self._relation_reads.run(
            tuple(ids), lambda: self._read_relations(ids))
        if writes == self._relation_writes:
            for eid in ids:
                if eid not in edits and eid not in threads and eid not in refs:
                    self._no_relations.set(eid, True)
        participated: set[str] = set()
        if viewer is not None and threads:
            senders = {p.event_id: p.sender for p in targets}
            participated = {r for r in threads if senders.get(r) == viewer.user_id}
            participated |= await self.reads.threads_participated(
                set(threads) - participated, viewer.user_id)
        latest = await self.events.get_events([t.latest_event_id for t in threads.values()])
        bundled = list(edits.values()) + list(latest.values())
        served = {e["event_id"]: e for e in await self.serialize(bundled, viewer, bundle=False)}
        out: dict[str, dict[str, Any]] = {}
        for eid in ids:
            rel: dict[str, Any] = {}
            edit = edits.get(eid)
            if edit is not None and edit.event_id in served:
                rel["m.replace"] = served[edit.event_id]
            summary = threads.get(eid)
            if summary is not None and summary.latest_event_id in served:
                rel["m.thread"] = {
                    "latest_event": served[summary.latest_event_id],
                    "count": summary.count,
                    "current_user_participated": eid in participated,
                }
            if eid in refs:
                rel["m.reference"] = {"chunk": [{"event_id": r} for r in refs[eid]]}
            if rel:
                out[eid] = rel
        return out


def _client_dict(pdu: PDU, data: dict[str, Any], now: int, room_id: str | None
                 ) -> dict[str, Any]:
    content = data.get("content")
    event: dict[str, Any] = {
        "event_id": pdu.event_id,
        "type": data.get("type"),
        "content": dict(content) if isinstance(content, dict) else {},
        "sender": data.get("sender"),
        "origin_server_ts": data.get("origin_server_ts", 0),
        # From the store when known: a v12 create event carries no ``room_id``.
        "room_id": room_id or data.get("room_id"),
        "unsigned": {"age": max(0, now - pdu.origin_server_ts)},
    }
    if "state_key" in data:
        event["state_key"] = data["state_key"]
    if event["type"] == REDACTION:
        # v11 moved ``redacts`` into content; serve it in both places so clients written
        # for either layout find it (as Synapse does).
        target = data.get("redacts")
        if not isinstance(target, str):
            target = event["content"].get("redacts")
        if isinstance(target, str):
            event["redacts"] = target
            event["content"]["redacts"] = target
    return event


__all__ = ["ClientEventSerializer", "StateEntryLookup", "Viewer"]
