"""Receiving PDUs: ``PUT /send/{txnId}`` and every other place a remote event enters.

Server-server API, "Checks performed on receipt of a PDU", in the spec's order:

1. valid format for the room version; 2-3. signatures and content hash (a mismatch
redacts) - both in ``verify.verify_pdus``, batched per room; 4. auth against the event's
own ``auth_events`` (missing ones fetched with ``/event_auth``); 5. auth against the state
before the event (several ``prev_events``: their states resolved; unknown prev events:
``/get_missing_events``, then the state at the gap from ``/state``); 6. soft-fail against
the current state. A failure at 4 or 5 rejects the event (stored, never served as
accepted, reported in the /send response); a soft-failed event is stored but is not an
extremity and not in timelines. Every accepted event is persisted through the room's single
writer (``EventPipeline.run_exclusive``), so remote and local events never race.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from hs.core.events import compute_event_id
from hs.core.pdu import PDU, StateKey
from hs.core.room_versions import (
    EventFormat,
    RoomVersion,
    UnsupportedRoomVersionError,
    get_room_version,
)
from hs.core.state_res import resolve_state
from hs.federation.client import FederationClient
from hs.federation.keyring import Keyring
from hs.handlers.federation.acl import is_server_allowed
from hs.handlers.federation.common import (
    WithEvent,
    auth_keys,
    check_against_auth_events,
    check_against_state,
    create_id_for,
    state_pdus,
)
from hs.handlers.federation.missing import GapFiller
from hs.handlers.federation.verify import verify_pdus
from hs.handlers.rooms.pipeline import EventPipeline
from hs.storage.events import EventsStore
from hs.storage.events.types import EventToPersist, StateAfter, StateBefore, StateDelta

logger = logging.getLogger(__name__)

#: Spec limits on one transaction.
MAX_PDUS = 50
MAX_EDUS = 100
#: Transactions remembered per process for deduplication (origin, txn ID).
TXN_CACHE_SIZE = 10_000


class PDUError(Exception):
    """The PDU was dropped or rejected; the message goes into the /send response."""


class FederationEventHandler:
    """See the module docstring."""

    def __init__(self, server_name: str, events: EventsStore, pipeline: EventPipeline,
                 client: FederationClient, keyring: Keyring) -> None:
        self.server_name = server_name
        self.events = events
        self.pipeline = pipeline
        self.keyring = keyring
        self.gaps = GapFiller(events, client, keyring)
        self._txns: OrderedDict[tuple[str, str], asyncio.Future[dict[str, Any]]] = OrderedDict()

    # -- transactions -------------------------------------------------------------------

    async def on_transaction(self, origin: str, txn_id: str, pdus: Sequence[Any],
                             on_new: Callable[[], Awaitable[None]] | None = None
                             ) -> dict[str, Any]:
        """The /send response for a transaction's PDUs; a retried transaction (same origin
        and ID) gets the first answer without being processed again. ``on_new`` (the
        EDUs) runs only for a transaction not seen before."""
        key = (origin, txn_id)
        fut = self._txns.get(key)
        if fut is None:
            fut = asyncio.ensure_future(self._run_transaction(origin, pdus, on_new))
            self._txns[key] = fut
            while len(self._txns) > TXN_CACHE_SIZE:
                self._txns.popitem(last=False)
            fut.add_done_callback(lambda f: f.cancelled() or f.exception() is None
                                  or self._txns.pop(key, None))
        return {"pdus": await asyncio.shield(fut)}

    async def _run_transaction(self, origin: str, pdus: Sequence[Any],
                               on_new: Callable[[], Awaitable[None]] | None) -> dict[str, Any]:
        if on_new is not None:
            await on_new()
        return await self.on_pdus(origin, pdus)

    async def on_pdus(self, origin: str, pdus: Sequence[Any]) -> dict[str, Any]:
        """Per-PDU results ``{event_id: {} | {"error": ...}}``; rooms run concurrently."""
        by_room: dict[str, list[Any]] = {}
        for raw in pdus:
            room_id = raw.get("room_id") if isinstance(raw, dict) else None
            if isinstance(room_id, str):
                by_room.setdefault(room_id, []).append(raw)
        results: dict[str, Any] = {}
        done = await asyncio.gather(*(self._room_pdus(origin, r, raws)
                                      for r, raws in by_room.items()), return_exceptions=True)
        for outcome in done:
            if isinstance(outcome, BaseException):
                logger.error("processing PDUs from %s failed", origin, exc_info=outcome)
                continue
            results.update(outcome)
        return results

    async def _room_pdus(self, origin: str, room_id: str, raws: list[Any]) -> dict[str, Any]:
        version = await self.events.get_room_version(room_id)
        if version is None:
            logger.info("ignoring %d PDUs from %s for unknown room %s", len(raws), origin,
                        room_id)
            return {}
        rv = get_room_version(version)
        out: dict[str, Any] = {}
        if not await is_server_allowed(self.events, room_id, origin):
            for raw in raws:
                eid = _event_id_of(raw, rv)
                if eid is not None:
                    out[eid] = {"error": "Server is banned from this room"}
            return out
        good: list[PDU] = []
        for v in await verify_pdus(self.keyring, raws, rv):
            if v.pdu is None:
                eid = _event_id_of(v.raw, rv)
                if eid is not None:
                    out[eid] = {"error": v.error}
            else:
                good.append(v.pdu)
        good.sort(key=lambda p: (p.depth, p.event_id))

        async def run() -> dict[str, Any]:
            res: dict[str, Any] = {}
            for pdu in good:
                try:
                    await self.process(origin, pdu, rv, fill_gaps=True)
                    res[pdu.event_id] = {}
                except PDUError as exc:
                    res[pdu.event_id] = {"error": str(exc)}
            return res

        out.update(await self.pipeline.run_exclusive(room_id, run))
        return out

    # -- one PDU (called on the room's writer) ------------------------------------------

    async def process(self, origin: str, pdu: PDU, rv: RoomVersion, *, fill_gaps: bool,
                      backfilled: bool = False) -> None:
        """Steps 4-6 and persistence for a verified PDU; raises ``PDUError`` when the
        event is rejected. Must run on the room's writer. ``backfilled``: history fetched
        with /backfill (no soft-fail check, the current state is left alone)."""
        room_id = pdu.room_id
        meta = (await self.events.get_event_meta([pdu.event_id])).get(pdu.event_id)
        if meta is not None and not meta.outlier:
            if meta.rejected_reason is not None:
                raise PDUError(f"event was rejected: {meta.rejected_reason}")
            return
        reason = await self._check_auth_events(origin, pdu, rv)
        prev_ids = pdu.prev_event_ids()
        if fill_gaps and await self._missing_prevs(prev_ids):
            await self.gaps.get_missing(origin, room_id, rv, pdu, self._process_fetched)
        states = await self._prev_states(origin, room_id, rv, prev_ids)
        if not states and prev_ids:
            raise PDUError("could not determine the state before the event")
        if not states:  # the create event
            before: dict[StateKey, str] = {}
        elif len(states) == 1:
            before = dict(next(iter(states.values())))
        else:
            before = await resolve_state(room_id, rv, list(states.values()), self.events)
        if reason is None:
            reason = check_against_state(pdu, await state_pdus(self.events, before, pdu))
        soft_failed = False
        if reason is None and not backfilled:
            current = await self.events.get_current_state_ids(room_id, auth_keys(pdu))
            soft = check_against_state(pdu, await state_pdus(self.events, current, pdu))
            if soft is not None:
                logger.info("soft-failing %s: %s", pdu.event_id, soft)
                soft_failed = True
        pdu.rejected_reason = reason
        state_before = await self._describe(prev_ids, states, before)
        ev = EventToPersist(pdu, state_before, soft_failed=soft_failed, backfilled=backfilled)
        delta = None if ev.excluded or backfilled else await self._current_delta(
            room_id, rv, pdu, before)
        await self.pipeline.persist([ev], room_id, delta)
        if reason is not None:
            raise PDUError(f"event not allowed: {reason}")

    async def _process_fetched(self, origin: str, pdu: PDU) -> None:
        await self.process(origin, pdu, pdu.room_version, fill_gaps=False)

    async def _check_auth_events(self, origin: str, pdu: PDU, rv: RoomVersion) -> str | None:
        auth_ids = pdu.auth_event_ids()
        found = await self.events.get_events(auth_ids)
        if len(found) < len(set(auth_ids)):
            await self.gaps.fetch_auth_chain(origin, pdu.room_id, rv, pdu.event_id)
            found = await self.events.get_events(auth_ids)
        missing = [a for a in auth_ids if a not in found]
        if missing:
            return f"auth events {missing} could not be fetched"
        create = None
        create_id = create_id_for(pdu.room_id, rv)
        if create_id is not None:
            create = await self.events.get_event(create_id)
        return check_against_auth_events(pdu, [found[a] for a in auth_ids], create)

    async def _missing_prevs(self, prev_ids: Sequence[str]) -> list[str]:
        metas = await self.events.get_event_meta(prev_ids)
        return [p for p in prev_ids if p not in metas or metas[p].outlier]

    async def _prev_states(self, origin: str, room_id: str, rv: RoomVersion,
                           prev_ids: Sequence[str]) -> dict[str, dict[StateKey, str]]:
        """The state after each prev event: stored, or fetched for the gaps."""
        states: dict[str, dict[StateKey, str]] = {}
        metas = await self.events.get_event_meta(prev_ids)
        for prev in prev_ids:
            meta = metas.get(prev)
            state = None
            if meta is not None and not meta.outlier:
                state = await self.events.get_state_ids_at(prev)
            if state is None:
                state = await self.gaps.state_after(origin, room_id, rv, prev)
            if state is not None:
                states[prev] = dict(state)
        return states

    async def _describe(self, prev_ids: Sequence[str], states: Mapping[str, Mapping[StateKey, str]],
                        before: dict[StateKey, str]) -> StateBefore:
        """The cheapest storable form of ``before``: the first stored prev event's state
        (as is, or as a delta on its group), else a full snapshot."""
        for prev in prev_ids:
            if prev not in states:
                continue
            group = await self.events.get_state_group_for_event(prev)
            if group is None:
                continue
            base = states[prev]
            if dict(base) == before:
                return StateAfter(prev)
            changes: dict[StateKey, str | None] = {
                k: v for k, v in before.items() if base.get(k) != v}
            changes.update({k: None for k in base if k not in before})
            return StateDelta(group, changes)
        return before

    async def _current_delta(self, room_id: str, rv: RoomVersion, pdu: PDU,
                             before: dict[StateKey, str]
                             ) -> dict[StateKey, str | None] | None:
        """The change to the room's current state: None (the persister's default, the
        event applied to the current state) when the event extends the only extremity,
        else the resolution of the new extremities' states."""
        extremities = await self.events.get_forward_extremities(room_id)
        prev = set(pdu.prev_event_ids())
        if extremities and extremities <= prev and len(prev) == 1:
            return None
        after = dict(before)
        if pdu.is_state():
            after[pdu.state_tuple] = pdu.event_id
        others = [e for e in extremities - prev if e != pdu.event_id]
        states = [after]
        for e in others:
            s = await self.events.get_state_ids_at(e)
            if s is not None:
                states.append(dict(s))
        # The event is not stored yet: the resolver sees it through an overlay.
        target = after if len(states) == 1 else await resolve_state(
            room_id, rv, states, WithEvent(self.events, pdu))
        current = await self.events.get_current_state_ids(room_id)
        delta: dict[StateKey, str | None] = {
            k: v for k, v in target.items() if current.get(k) != v}
        delta.update({k: None for k in current if k not in target})
        return delta


def _event_id_of(raw: Any, rv: RoomVersion) -> str | None:
    """The event ID of a PDU we could not accept (to key its error), if computable."""
    if not isinstance(raw, dict):
        return None
    try:
        drop = ("unsigned",) if rv.event_format is EventFormat.V1 else ("unsigned", "event_id")
        return compute_event_id({k: v for k, v in raw.items() if k not in drop}, rv)
    except (ValueError, TypeError, KeyError, UnsupportedRoomVersionError):
        return None
