"""The local event pipeline: build, sign, authorize, compute state, persist, notify.

``EventPipeline.send(draft)`` queues a ``Draft`` on the room's writer (``linearizer``);
the writer hands every draft queued for a room to ``_process_batch``, which

1. reads the room's tip once: forward extremities (the deepest ``MAX_PREV_EVENTS``),
   their depth, and the state before the first new event - the current state when
   there is one extremity, else ``resolve_state`` over the extremities' states. When
   the writer remembers its own last event and the state after it (``_Tip``, bounded
   LRU), it builds on that without reading anything; the persisting transaction, which
   reads the extremities anyway, checks they are still exactly that event
   (``StaleExtremitiesError``: nothing written, the batch is rebuilt on the stored tip);
2. builds each draft on the previous one (``ChainBuilder``): prev_events, depth,
   auth_events chosen by ``auth_types_for_event``, the room version's event format,
   hashes and signature; checks the size limit; authorizes it with
   ``check_auth_rules`` against the state before it. A refused draft fails alone (403
   with the auth rules' reason) and is not persisted; the chain continues without it;
3. persists the accepted events with ONE ``persist_events`` call (one transaction),
   each event's state before being the state after its predecessor in the batch;
   batches of other rooms ready at the same time share that transaction
   (``committer.GroupCommitter``);
4. notifies the ``events`` stream for the room and the targets of membership events,
   then runs the post-persist hooks (push actions, federation); /sync waits for the
   hooks of the batches it covers only before reading unread counts (``hooks_settled``).

Room creation (``creation.build_room``) builds its initial events with the same
``ChainBuilder`` from an empty room and persists them as one batch through ``persist``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nacl.signing import SigningKey

from hs.core.auth import AuthError, auth_types_for_event, check_auth_rules
from hs.core.canonical_json import CanonicalJSONError, encode_canonical_json
from hs.core.events import add_hashes_and_sign, compute_event_id, make_event_id_v1
from hs.core.keys import generate_signing_key
from hs.core.pdu import PDU, StateKey
from hs.core.room_versions import EventFormat, RoomVersion, get_room_version
from hs.core.state_res import resolve_state
from hs.handlers.rooms.committer import GroupCommitter
from hs.handlers.rooms.linearizer import BatchingLinearizer
from hs.handlers.rooms.validation import MAX_PDU_BYTES, event_too_large
from hs.http.errors import MatrixError, bad_json, forbidden, not_found
from hs.notifier import Notifier
from hs.storage.events import EventsStore
from hs.storage.events.persist import StaleExtremitiesError
from hs.storage.events.types import (
    EventToPersist,
    PersistedEvent,
    StateAfter,
    StateBefore,
    StateDelta,
    TxnKey,
)

logger = logging.getLogger(__name__)

#: Cap on prev_events of a new event (spec: servers SHOULD keep this small; Synapse: 10).
MAX_PREV_EVENTS = 10
#: Largest depth canonical JSON can carry.
MAX_DEPTH = 2**53 - 1
CREATE: StateKey = ("m.room.create", "")
POWER_LEVELS: StateKey = ("m.room.power_levels", "")
MEMBER = "m.room.member"


def _wanted(drafts: Sequence[Draft], rv: RoomVersion) -> set[StateKey]:
    """The state keys authorizing ``drafts`` reads (plus each state event's own key)."""
    wanted: set[StateKey] = {CREATE, POWER_LEVELS}
    for d in drafts:
        wanted.update(auth_types_for_event(d.type, d.sender, d.state_key, d.content, rv))
        if d.state_key is not None:
            wanted.add((d.type, d.state_key))
    return wanted




@dataclass(slots=True)
class Draft:
    """What a local client asked to send; the pipeline turns it into a PDU."""

    type: str
    sender: str
    content: dict[str, Any]
    state_key: str | None = None
    #: The redacted event (m.room.redaction); placed per room version.
    redacts: str | None = None
    txn: TxnKey | None = None


@dataclass(frozen=True, slots=True)
class External:
    """Work queued on a room's writer between drafts: federation persists events it built
    or received through the same single writer per room (``EventPipeline.run_exclusive``)."""

    run: Callable[[], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class SentEvent:
    event_id: str
    stream_ordering: int
    deduplicated: bool = False


@dataclass(slots=True)
class ChainBuilder:
    """Builds consecutive events of one room, each on the previous one.

    ``state`` maps keys to event IDs for (at least) every key the drafts' auth needs;
    ``pdus`` holds those events. Accepting an event advances prev/depth/state.
    """

    room_version: RoomVersion
    room_id: str | None
    server_name: str
    signing_key: SigningKey
    clock: Callable[[], int]
    prev_ids: list[str]
    depth: int
    state: dict[StateKey, str]
    pdus: dict[str, PDU]
    state_before: StateBefore
    accepted: list[EventToPersist] = field(default_factory=list)
    #: The room's forward extremities this chain starts from when they were not read
    #: but remembered (``_Tip``): the persisting transaction checks them.
    expected_extremities: frozenset[str] | None = None

    def build(self, draft: Draft) -> PDU:
        """The signed PDU for ``draft`` on the current tip (raises M_TOO_LARGE/M_BAD_JSON)."""
        rv = self.room_version
        keys = auth_types_for_event(draft.type, draft.sender, draft.state_key, draft.content, rv)
        auth_ids = [self.state[k] for k in keys if k in self.state]
        event: dict[str, Any] = {
            "type": draft.type,
            "sender": draft.sender,
            "content": draft.content,
            "depth": min(self.depth + 1, MAX_DEPTH),
            "origin_server_ts": self.clock(),
            "prev_events": self._refs(self.prev_ids),
            "auth_events": self._refs(auth_ids),
        }
        if self.room_id is not None:
            event["room_id"] = self.room_id
        if draft.state_key is not None:
            event["state_key"] = draft.state_key
        if not rv.implicit_room_creator:
            # v1-v10 events carry ``origin``; from v11 it is no longer part of the format.
            event["origin"] = self.server_name
        if draft.redacts is not None:
            if rv.redacts_in_content:
                event["content"] = {**draft.content, "redacts": draft.redacts}
            else:
                event["redacts"] = draft.redacts
        if rv.event_format is EventFormat.V1:
            event["event_id"] = make_event_id_v1(self.server_name)
        try:
            add_hashes_and_sign(event, rv, self.server_name, self.signing_key)
            size = len(encode_canonical_json(event))
        except CanonicalJSONError as exc:
            raise bad_json(f"Event is not canonical JSON: {exc}") from None
        if size > MAX_PDU_BYTES:
            raise event_too_large()
        event_id = event["event_id"] if rv.event_format is EventFormat.V1 else (
            compute_event_id(event, rv))
        return PDU(event, rv, event_id)

    def _refs(self, ids: Sequence[str]) -> list[Any]:
        if self.room_version.event_format is not EventFormat.V1:
            return list(ids)
        # v1/v2: [event_id, {"sha256": <the referenced event's content hash>}] pairs.
        out: list[Any] = []
        for eid in ids:
            pdu = self.pdus.get(eid)
            hashes = pdu.data.get("hashes") if pdu is not None else None
            sha = hashes.get("sha256") if isinstance(hashes, dict) else None
            out.append([eid, {"sha256": sha} if isinstance(sha, str) else {}])
        return out

    def auth_state(self) -> dict[StateKey, PDU]:
        return {k: self.pdus[e] for k, e in self.state.items() if e in self.pdus}

    def authorize(self, pdu: PDU) -> None:
        """403 with the auth rules' reason unless ``pdu`` is allowed on the current state."""
        try:
            check_auth_rules(pdu, self.auth_state(), check_auth_event_selection=False)
        except AuthError as exc:
            raise forbidden(exc.reason) from None

    def accept(self, pdu: PDU, txn: TxnKey | None = None) -> None:
        """Append ``pdu`` to the batch and make it the new tip."""
        self.accepted.append(EventToPersist(pdu, self.state_before, txn=txn))
        self.pdus[pdu.event_id] = pdu
        if pdu.is_state():
            self.state[pdu.state_tuple] = pdu.event_id
        self.prev_ids = [pdu.event_id]
        self.depth = pdu.depth
        self.state_before = StateAfter(pdu.event_id)


@dataclass(slots=True)
class _Tip:
    """What the writer knew after its last batch in a room: the last event and the
    state after it for the keys auth needed (None = known absent). Valid while that
    event is still the room's only forward extremity (the state after an event never
    changes), so a busy room's next batch needs no state query at all."""

    version: RoomVersion
    last_event_id: str
    depth: int
    state: dict[StateKey, str | None]


@dataclass(slots=True, eq=False)
class _InFlight:
    """A batch between its submission and the end of its post-persist hooks."""

    done: asyncio.Future[None]
    #: Its lowest stream position, once committed.
    low: int | None = None


#: ``hook(room_id, batch, results)`` run after a batch is persisted (``on_persisted``).
PersistHook = Callable[[str, Sequence[EventToPersist], Sequence[PersistedEvent]],
                       Awaitable[None]]
#: Rooms whose tip is remembered (LRU); a miss only costs the queries.
TIP_CACHE_SIZE = 4096
#: A tip stops inheriting its predecessor's keys beyond this many (busy big rooms).
TIP_STATE_KEYS = 256


class EventPipeline:
    """See the module docstring."""

    def __init__(self, events: EventsStore, notifier: Notifier, server_name: str,
                 signing_keys: Callable[[], list[SigningKey]],
                 clock: Callable[[], int] = lambda: int(time.time() * 1000),
                 *, max_batch: int = 100) -> None:
        self.events = events
        self.notifier = notifier
        self.server_name = server_name
        self._signing_keys = signing_keys
        self.clock = clock
        self.writer: BatchingLinearizer[Draft | External, Any] = BatchingLinearizer(
            self._process_items, max_batch=max_batch)
        #: Batches persisted (``persist`` calls). Batches of different rooms that are
        #: ready together share one transaction (``committer.commits`` counts those).
        self.transactions = 0
        self.committer = GroupCommitter(self._persist_group)
        self._tips: OrderedDict[str, _Tip] = OrderedDict()
        #: Post-persist hooks, awaited as ``hook(room_id, batch, results)`` after the
        #: batch committed and its readers were woken; /sync waits for them before
        #: reading unread counts (``hooks_settled``: push actions must be visible with
        #: the event). A failing hook is logged; the events stay persisted.
        self.on_persisted: list[PersistHook] = []
        #: Awaited as ``hook(room_id, batch)`` before a batch of local drafts is persisted
        #: (push actions prepared to commit with it); a failure is only logged.
        self.before_persist: list[Callable[[str, Sequence[EventToPersist]],
                                           Awaitable[None]]] = []
        self._inflight: set[_InFlight] = set()
        #: ``listener(room_id)`` called right after a commit that may have changed the
        #: room's current state (a state event, or a resolved delta), before anything is
        #: woken: caches of current state built by hooks drop the room there.
        self.on_state_changed: list[Callable[[str], None]] = []

    @property
    def signing_key(self) -> SigningKey:
        keys = self._signing_keys()
        if not keys:
            # Built without a key file (tests): sign with an ephemeral key, kept for
            # the life of the process so all our events share one key ID.
            keys.append(generate_signing_key("ephemeral"))
        return keys[0]

    async def send(self, room_id: str, draft: Draft) -> SentEvent:
        sent: SentEvent = await self.writer.submit(room_id, draft)
        return sent

    async def run_exclusive(self, room_id: str, run: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``run()`` on the room's writer (no local send of the room interleaves)."""
        return await self.writer.submit(room_id, External(run))

    # -- the writer ---------------------------------------------------------------------

    async def _process_items(self, room_id: str, items: Sequence[Draft | External]
                             ) -> list[Any]:
        """Drafts in runs through ``_process_batch``; external work alone, in order."""
        if not any(isinstance(i, External) for i in items):
            return await self._process_batch(room_id, items)  # type: ignore[arg-type]
        out: list[Any] = []
        run: list[Draft] = []
        for item in [*items, None]:
            if isinstance(item, Draft):
                run.append(item)
                continue
            if run:
                out.extend(await self._process_batch(room_id, run))
                run = []
            if isinstance(item, External):
                self._tips.pop(room_id, None)  # the room may change under the writer
                try:
                    out.append(await item.run())
                except Exception as exc:
                    out.append(exc)
        return out

    async def _process_batch(self, room_id: str, drafts: Sequence[Draft]
                             ) -> list[SentEvent | BaseException]:
        try:
            return await self._build_and_persist(room_id, drafts)
        except StaleExtremitiesError:
            # The remembered tip was out of date (the room changed without this writer):
            # nothing was written; build the batch again on the extremities as stored.
            logger.info("tip of %s was stale; rebuilding the batch", room_id)
            self._tips.pop(room_id, None)
            return await self._build_and_persist(room_id, drafts)

    async def _build_and_persist(self, room_id: str, drafts: Sequence[Draft]
                                 ) -> list[SentEvent | BaseException]:
        try:
            builder, current_delta = await self._tip(room_id, drafts)
        except MatrixError as exc:
            return [exc] * len(drafts)
        outcomes: list[BaseException | int] = []
        txn_seen: dict[tuple[str, str, str], int] = {}
        for draft in drafts:
            key = None if draft.txn is None else (
                draft.txn.user_id, draft.txn.device_id, draft.txn.txn_id)
            if key is not None and key in txn_seen:
                outcomes.append(-1 - txn_seen[key])  # same txn earlier in this batch
                continue
            try:
                pdu = builder.build(draft)
                builder.authorize(pdu)
            except MatrixError as exc:
                outcomes.append(exc)
                continue
            builder.accept(pdu, draft.txn)
            if key is not None:
                txn_seen[key] = len(builder.accepted) - 1
            outcomes.append(len(builder.accepted) - 1)
        if not builder.accepted:
            return [o for o in outcomes if isinstance(o, BaseException)]
        if current_delta is not None:
            current_delta = {**current_delta, **{
                e.pdu.state_tuple: e.pdu.event_id for e in builder.accepted if e.pdu.is_state()}}
        for prepare in self.before_persist:
            try:
                await prepare(room_id, builder.accepted)
            except Exception:
                logger.exception("before-persist hook %r failed in %s", prepare, room_id)
        try:
            results = await self.persist(builder.accepted, room_id, current_delta,
                                         expected_extremities=builder.expected_extremities)
        except BaseException:
            self._tips.pop(room_id, None)
            raise
        if any(r.deduplicated for r in results):
            # A retried transaction ID: its new event was not written, the tip is not it.
            self._tips.pop(room_id, None)
        else:
            self.remember_tip(room_id, builder, drafts)
        out: list[SentEvent | BaseException] = []
        for o in outcomes:
            if isinstance(o, BaseException):
                out.append(o)
            else:
                r = results[o if o >= 0 else -1 - o]
                out.append(SentEvent(r.event_id, r.stream_ordering, r.deduplicated or o < 0))
        return out

    async def persist(self, batch: list[EventToPersist], room_id: str,
                      current_delta: Mapping[StateKey, str | None] | None = None, *,
                      expected_extremities: frozenset[str] | None = None
                      ) -> list[PersistedEvent]:
        """Persist the batch (in one transaction, possibly shared with other rooms'
        batches: ``committer``), wake the room and membership targets, then run the hooks.

        The wake-up does not wait for the hooks (push actions, the federation sender):
        a woken /sync overlaps its reads with them and waits only where it needs their
        result (``hooks_settled`` before reading unread counts), so the counts still
        arrive with the event."""
        self.transactions += 1
        flight = _InFlight(asyncio.get_running_loop().create_future())
        self._inflight.add(flight)
        try:
            results = await self.committer.submit(room_id, batch, current_delta,
                                                  expected_extremities)
            # Deduplicated results carry older positions: waiting on them is only spare.
            flight.low = min(r.stream_ordering for r in results)
            if current_delta or any(e.pdu.is_state() and not e.outlier for e in batch):
                for listener in self.on_state_changed:
                    listener(room_id)
            targets = [e.pdu.state_key for e in batch
                       if e.pdu.type == "m.room.member" and e.pdu.state_key is not None]
            top = max(r.stream_ordering for r in results)
            self.notifier.notify("events", top, rooms=[room_id], users=targets)
            # The hooks are independent: run together, readers wait for the slowest.
            hooks = list(self.on_persisted)
            outcomes = await asyncio.gather(
                *(hook(room_id, batch, results) for hook in hooks), return_exceptions=True)
        finally:
            self._inflight.discard(flight)
            flight.done.set_result(None)
        for hook, outcome in zip(hooks, outcomes, strict=True):
            if isinstance(outcome, asyncio.CancelledError):
                raise outcome
            if isinstance(outcome, Exception):
                logger.error("post-persist hook %r failed in %s", hook, room_id,
                             exc_info=outcome)
        return results

    async def hooks_settled(self, upto: int) -> None:
        """Return once the post-persist hooks of every batch in flight with a position
        at or below ``upto`` (or whose positions are not known yet) have finished: a
        reader of what the hooks write (unread counts) for events up to ``upto``."""
        waits = [f.done for f in self._inflight if f.low is None or f.low <= upto]
        if waits:
            # ``wait``, not ``gather``: a cancelled reader must not cancel the futures.
            await asyncio.wait(waits)

    def remember_tip(self, room_id: str, builder: ChainBuilder, drafts: Sequence[Draft]
                     ) -> None:
        """Record the state after ``builder``'s last accepted event (just persisted)."""
        known: dict[StateKey, str | None] = {}
        previous = self._tips.get(room_id)
        if (previous is not None and builder.expected_extremities is not None
                and builder.expected_extremities == {previous.last_event_id}
                and len(previous.state) < TIP_STATE_KEYS):
            # Built on that tip: what it knew still holds for every key the batch did not
            # change (``builder.state`` has the changes), so senders taking turns in a
            # room each find their membership known instead of read again.
            known.update(previous.state)
        known.update(dict.fromkeys(_wanted(drafts, builder.room_version)))
        known.update(builder.state)
        self._tips[room_id] = _Tip(builder.room_version, builder.prev_ids[0], builder.depth,
                                   known)
        self._tips.move_to_end(room_id)
        while len(self._tips) > TIP_CACHE_SIZE:
            self._tips.popitem(last=False)

    async def _tip(self, room_id: str, drafts: Sequence[Draft]
                   ) -> tuple[ChainBuilder, dict[StateKey, str | None] | None]:
        """The builder positioned at the room's forward extremities.

        Returns the current-state delta to persist when the extremities had to be
        resolved (None: the persister's default, the batch's state events in order)."""
        cached = self._tips.get(room_id)
        if cached is not None:
            rv = cached.version
        else:
            version = await self.events.get_room_version(room_id)
            if version is None:
                raise not_found(f"Unknown room {room_id}")
            rv = get_room_version(version)
        wanted = _wanted(drafts, rv)
        current_delta: dict[StateKey, str | None] | None = None
        state_before: StateBefore
        if cached is not None:
            # Built on the remembered tip without reading the extremities: the persisting
            # transaction checks they are still {last event} (``StaleExtremitiesError``).
            prev_ids, depth = [cached.last_event_id], cached.depth
            state = {k: v for k, v in cached.state.items() if k in wanted and v is not None}
            missing = [k for k in wanted if k not in cached.state]
            if missing:
                state.update(await self.events.get_current_state_ids(room_id, missing))
            pdus = await self.events.get_events([*state.values(), *prev_ids])
            builder = ChainBuilder(rv, room_id, self.server_name, self.signing_key, self.clock,
                                   prev_ids, depth, state, pdus, StateAfter(prev_ids[0]),
                                   expected_extremities=frozenset(prev_ids))
            return builder, None
        extremities = await self.events.get_forward_extremities(room_id)
        if not extremities:
            raise forbidden("This server is not in the room")
        metas = await self.events.get_event_meta(extremities)
        prev = sorted(metas.values(), key=lambda m: (-m.depth, m.event_id))[:MAX_PREV_EVENTS]
        prev_ids = [m.event_id for m in prev]
        depth = max((m.depth for m in prev), default=0)
        if len(prev_ids) == 1:
            state = await self.events.get_current_state_ids(room_id, list(wanted))
            state_before = StateAfter(prev_ids[0])
        else:
            resolved, state_before = await self._resolve(room_id, rv, prev_ids)
            current = await self.events.get_current_state_ids(room_id)
            current_delta = {k: v for k, v in resolved.items() if current.get(k) != v}
            current_delta.update({k: None for k in current if k not in resolved})
            state = {k: v for k, v in resolved.items() if k in wanted}
        pdus = await self.events.get_events([*state.values(), *prev_ids])
        builder = ChainBuilder(rv, room_id, self.server_name, self.signing_key, self.clock,
                               prev_ids, depth, state, pdus, state_before)
        return builder, current_delta

    def forget_tip(self, room_id: str) -> None:
        """Drop what the writer remembers of a room (e.g. after an out-of-band change)."""
        self._tips.pop(room_id, None)

    async def _resolve(self, room_id: str, rv: RoomVersion, prev_ids: list[str]
                       ) -> tuple[dict[StateKey, str], StateBefore]:
        """State resolution over the extremities' states; the state before the new event
        is stored as a delta on the first extremity's group."""
        groups = await self.events.state.get_state_groups_for_events(prev_ids)
        with_state = [e for e in prev_ids if e in groups]
        if not with_state:
            raise forbidden("No state known at the room's forward extremities")
        sets = await self.events.state.get_state_ids_for_groups(
            [groups[e][0] for e in with_state])
        maps = [sets[groups[e][0]] for e in with_state]
        resolved = await resolve_state(room_id, rv, maps, self.events)
        base = maps[0]
        changes: dict[StateKey, str | None] = {
            k: v for k, v in resolved.items() if base.get(k) != v}
        changes.update({k: None for k in base if k not in resolved})
        return resolved, StateDelta(groups[with_state[0]][0], changes)

    async def _persist_group(self, batch: list[EventToPersist],
                             current_state: Mapping[str, Mapping[StateKey, str | None]] | None,
                             expected: Mapping[str, frozenset[str]] | None
                             ) -> list[PersistedEvent]:
        return await self.events.persist_events(batch, current_state=current_state,
                                                expected_extremities=expected)

    async def close(self) -> None:
        await self.writer.close()
        await self.committer.close()
