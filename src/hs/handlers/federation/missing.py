"""Filling gaps in the room DAG from the server that sent us an event.

Server-server API, "Backfilling and retrieving missing events" and "Checks performed on
receipt of a PDU": when an event's ``prev_events`` are unknown we ask its origin with
``POST /get_missing_events`` (bounded: ``MISSING_LIMIT`` events, one round); when gaps
remain we ask for the state at each still-missing prev event (``GET /state_ids``, then
the events we lack with ``GET /event``, or ``GET /state`` when many are missing) and store
them as outliers, so that the new event's state can be
resolved. Missing auth events come from ``GET /event_auth``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from hs.core.pdu import PDU, StateKey
from hs.core.room_versions import RoomVersion
from hs.federation.client import FederationClient, FederationRequestError, encode_path
from hs.federation.keyring import Keyring
from hs.handlers.federation.common import persist_outliers
from hs.handlers.federation.verify import verify_pdus
from hs.storage.events import EventsStore

logger = logging.getLogger(__name__)

#: Events asked for in one /get_missing_events round (Synapse asks for 10).
MISSING_LIMIT = 10
#: Up to this many missing state events are fetched one by one, beyond it with /state.
MAX_SINGLE_FETCHES = 50
FETCH_CONCURRENCY = 8
FED = "/_matrix/federation/v1"

#: ``process(origin, pdu)``: run the receipt checks on a fetched event (no gap filling).
Process = Callable[[str, PDU], Awaitable[None]]


class GapFiller:
    """Fetches what an incoming event references and we lack."""

    def __init__(self, events: EventsStore, client: FederationClient, keyring: Keyring
                 ) -> None:
        self.events = events
        self.client = client
        self.keyring = keyring

    async def _verified(self, raw: Any, rv: RoomVersion) -> list[PDU]:
        if not isinstance(raw, list):
            return []
        return [v.pdu for v in await verify_pdus(self.keyring, raw, rv) if v.pdu is not None]

    async def fetch_auth_chain(self, origin: str, room_id: str, rv: RoomVersion,
                               event_id: str) -> None:
        """``GET /event_auth`` for ``event_id``; the chain is stored as outliers."""
        try:
            body = await self.client.get_json(
                origin, FED + "/event_auth" + encode_path(room_id, event_id))
        except FederationRequestError as exc:
            logger.info("event_auth %s from %s failed: %s", event_id, origin, exc)
            return
        chain = body.get("auth_chain") if isinstance(body, dict) else None
        await persist_outliers(self.events, room_id, rv, await self._verified(chain, rv))

    async def get_missing(self, origin: str, room_id: str, rv: RoomVersion, pdu: PDU,
                          process: Process) -> None:
        """One bounded ``/get_missing_events`` round between our forward extremities
        and ``pdu``; the events returned are processed oldest first."""
        earliest = sorted(await self.events.get_forward_extremities(room_id))
        body = {"earliest_events": earliest, "latest_events": [pdu.event_id],
                "limit": MISSING_LIMIT, "min_depth": 0}
        try:
            resp = await self.client.post_json(
                origin, FED + "/get_missing_events" + encode_path(room_id), body)
        except FederationRequestError as exc:
            logger.info("get_missing_events from %s failed: %s", origin, exc)
            return
        raw = resp.get("events") if isinstance(resp, dict) else None
        fetched = [p for p in await self._verified(raw, rv)
                   if p.room_id == room_id and p.event_id != pdu.event_id]
        for missing in sorted(fetched, key=lambda p: (p.depth, p.event_id)):
            try:
                await process(origin, missing)
            except Exception as exc:  # one bad event must not stop the others
                logger.info("missing event %s from %s not accepted: %s",
                            missing.event_id, origin, exc)

    async def state_after(self, origin: str, room_id: str, rv: RoomVersion, event_id: str
                          ) -> dict[StateKey, str] | None:
        """The state after ``event_id`` as ``origin`` knows it: its state before the event
        (``GET /state_ids``) plus the event itself. Events we lack are fetched with
        ``GET /event`` (or in one ``GET /state`` when there are many) and stored as
        outliers after their own checks."""
        try:
            ids = await self.client.get_json(
                origin, FED + "/state_ids" + encode_path(room_id), {"event_id": event_id})
        except FederationRequestError as exc:
            logger.info("state_ids at %s from %s failed: %s", event_id, origin, exc)
            return None
        pdu_ids = _str_list(ids.get("pdu_ids") if isinstance(ids, dict) else None)
        chain_ids = _str_list(ids.get("auth_chain_ids") if isinstance(ids, dict) else None)
        if pdu_ids is None or chain_ids is None:
            return None
        wanted = {event_id, *pdu_ids, *chain_ids}
        have = await self.events.get_events(wanted)
        missing = sorted(wanted - have.keys())
        fetched = await (self._fetch_state(origin, room_id, rv, event_id)
                         if len(missing) > MAX_SINGLE_FETCHES
                         else self._fetch_events(origin, rv, missing))
        stored = await persist_outliers(self.events, room_id, rv, fetched)
        known = {**have, **stored}
        prev = known.get(event_id)
        if prev is None:
            return None
        result: dict[StateKey, str] = {}
        for eid in pdu_ids:
            p = known.get(eid)
            if p is not None and p.is_state() and p.rejected_reason is None:
                result[p.state_tuple] = eid
        if prev.is_state() and prev.rejected_reason is None:
            result[prev.state_tuple] = prev.event_id
        return result

    async def _fetch_events(self, origin: str, rv: RoomVersion, event_ids: list[str]
                            ) -> list[PDU]:
        """``GET /event`` for each ID (a few at a time); one batch verification."""
        gate = asyncio.Semaphore(FETCH_CONCURRENCY)

        async def one(eid: str) -> list[Any]:
            async with gate:
                try:
                    body = await self.client.get_json(origin, FED + "/event" + encode_path(eid))
                except FederationRequestError as exc:
                    logger.info("event %s from %s failed: %s", eid, origin, exc)
                    return []
            pdus = body.get("pdus") if isinstance(body, dict) else None
            return pdus[:1] if isinstance(pdus, list) else []

        raw = [p for got in await asyncio.gather(*(one(e) for e in event_ids)) for p in got]
        wanted = set(event_ids)
        return [p for p in await self._verified(raw, rv) if p.event_id in wanted]

    async def _fetch_state(self, origin: str, room_id: str, rv: RoomVersion, event_id: str
                           ) -> list[PDU]:
        """The whole state and auth chain at ``event_id`` in one ``GET /state``, plus the
        event itself."""
        try:
            state = await self.client.get_json(
                origin, FED + "/state" + encode_path(room_id), {"event_id": event_id})
        except FederationRequestError as exc:
            logger.info("state at %s from %s failed: %s", event_id, origin, exc)
            return []
        if not isinstance(state, dict):
            return []
        pdus = await self._verified(state.get("pdus"), rv)
        chain = await self._verified(state.get("auth_chain"), rv)
        return [*chain, *pdus, *await self._fetch_events(origin, rv, [event_id])]


def _str_list(value: Any) -> list[str] | None:
    """``value`` when it is a list of strings, else None."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None
