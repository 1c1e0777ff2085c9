"""One destination's outbound queue: a single transaction in flight at a time.

PDUs wait in memory only while the destination is healthy. As soon as a transaction fails
the queued PDUs are dropped and the destination enters *catch-up*: when it is reachable
again, the latest local PDU of every room it shares with us (recorded in
``federation_destination_rooms`` when the PDU was queued) is sent, and the remote fills the
gaps with ``/get_missing_events`` (spec "Backfilling and retrieving missing events"). EDUs
are capped (oldest dropped), keyed EDUs (typing, presence) keep only the latest value, and
to-device EDUs stay in the database outbox until a transaction carrying them succeeded, so
a dead destination costs bounded memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Hashable
from dataclasses import dataclass
from typing import Any

from hs.federation.client import (
    FederationClient,
    FederationRequestError,
    HttpResponseError,
    encode_path,
)
from hs.federation.sender.backoff import RetryPolicy
from hs.federation.sender.transaction import (
    MAX_EDUS_PER_TRANSACTION,
    MAX_PDUS_PER_TRANSACTION,
    TxnIds,
    transaction_body,
)
from hs.storage.federation import FederationSenderStore
from hs.storage.to_device import ToDeviceStore
from hs.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

#: PDUs held for a healthy but slow destination before falling back to catch-up.
MAX_PENDING_PDUS = 2000
#: Loads PDU JSON by event ID (for catch-up).
PduSource = Callable[[Collection[str]], Awaitable[dict[str, dict[str, Any]]]]


@dataclass(frozen=True, slots=True)
class QueuedPdu:
    event_id: str
    stream_ordering: int
    json: dict[str, Any]


@dataclass
class SenderContext:
    """What every destination queue shares."""

    server_name: str
    client: FederationClient
    store: FederationSenderStore
    to_device: ToDeviceStore | None
    pdu_source: PduSource
    policy: RetryPolicy
    clock: Callable[[], int]
    txn_ids: TxnIds
    max_queued_edus: int = 1000
    #: Timeout of one /send request (seconds).
    request_timeout: float = 60.0


class _Unreachable(Exception):
    """The transaction did not get through; back off."""


class DestinationQueue:
    def __init__(self, ctx: SenderContext, destination: str) -> None:
        self.ctx = ctx
        self.destination = destination
        self.pending_pdus: deque[QueuedPdu] = deque()
        self.pending_edus: deque[dict[str, Any]] = deque()
        #: Latest-wins EDUs: key -> EDU.
        self.keyed_edus: dict[Hashable, dict[str, Any]] = {}
        self.to_device_pending = False
        #: PDUs were dropped: send the rooms' latest events from the database instead.
        self.catching_up = False
        #: A PDU was dropped while a catch-up pass ran (it may have missed the row).
        self._dirty = False
        self.retry_at_ms = 0
        self.retry_interval_ms = 0
        self.failure_ts: int | None = None
        self.last_successful = 0
        self.dropped_edus = 0
        self.transactions_sent = 0
        self._loaded = False
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # -- enqueueing ---------------------------------------------------------------------------

    @property
    def backing_off(self) -> bool:
        return self.retry_at_ms > self.ctx.clock()

    def add_pdu(self, pdu: QueuedPdu) -> None:
        if self.catching_up or self.backing_off:
            # Catch-up covers it: the room's latest PDU was recorded before queueing.
            self.catching_up = True
            self._dirty = True
        else:
            self.pending_pdus.append(pdu)
            if len(self.pending_pdus) > MAX_PENDING_PDUS:
                # A slow (not failing) destination: fall back to catch-up, bounded memory.
                self.pending_pdus.clear()
                self.catching_up = True
        self.wake()

    def add_edu(self, edu: dict[str, Any], key: Hashable | None = None) -> None:
        if key is not None:
            self.keyed_edus.pop(key, None)
            self.keyed_edus[key] = edu
            while len(self.keyed_edus) > self.ctx.max_queued_edus:
                self.keyed_edus.pop(next(iter(self.keyed_edus)))
                self.dropped_edus += 1
        else:
            self.pending_edus.append(edu)
            self._trim_edus()
        self.wake()

    def add_to_device(self) -> None:
        self.to_device_pending = True
        self.wake()

    def _trim_edus(self) -> None:
        while len(self.pending_edus) > self.ctx.max_queued_edus:
            self.pending_edus.popleft()
            self.dropped_edus += 1

    def has_work(self) -> bool:
        return bool(self.pending_pdus or self.pending_edus or self.keyed_edus
                    or self.to_device_pending or self.catching_up)

    def wake(self) -> None:
        """Start the sending loop unless it runs (it sleeps out any backoff itself)."""
        if not self._closed and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        self._closed = True
        await cancel_and_wait(self._task)

    async def idle(self) -> None:
        """Wait for the loop to finish (tests)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    # -- the loop -----------------------------------------------------------------------------

    async def _load(self) -> None:
        health = await self.ctx.store.get_health(self.destination)
        self._loaded = True
        if health is None:
            return
        self.last_successful = health.last_successful_stream_ordering
        self.retry_interval_ms = health.retry_interval_ms
        self.failure_ts = health.failure_ts
        if health.failure_ts is not None:
            # Down when we last looked: whatever was queued then is lost; catch up.
            self.retry_at_ms = health.retry_last_ts + health.retry_interval_ms
            self.catching_up = True
            return
        # Healthy, but the process may have stopped with PDUs still queued in memory: a
        # room whose latest PDU is older than anything queued now was never sent.
        rows = await self.ctx.store.catch_up_events(self.destination, self.last_successful, 1)
        queued = min((p.stream_ordering for p in self.pending_pdus), default=None)
        if rows and (queued is None or rows[0][1] < queued):
            self.pending_pdus.clear()
            self.catching_up = True

    async def _run(self) -> None:
        try:
            if not self._loaded:
                await self._load()
            while self.has_work() and not self._closed:
                delay = self.retry_at_ms - self.ctx.clock()
                if delay > 0:
                    await asyncio.sleep(delay / 1000)
                    continue
                try:
                    await self._send_next()
                except _Unreachable as exc:
                    await self._failed(str(exc))
        except asyncio.CancelledError:
            raise
        except Exception:
            # Our side failed (database...): not the destination's fault; try again later.
            logger.exception("federation sender loop for %s crashed", self.destination)
            asyncio.get_running_loop().call_later(
                self.ctx.policy.min_interval_ms / 1000, self.wake)

    async def _failed(self, reason: str) -> None:
        """Back off (persisted first, so memory never claims more than the database)."""
        now = self.ctx.clock()
        interval = self.ctx.policy.next_interval(self.retry_interval_ms)
        failure_ts = now if self.failure_ts is None else self.failure_ts
        self.pending_pdus.clear()
        self.catching_up = True
        await self.ctx.store.set_retry(self.destination, failure_ts, now, interval)
        self.retry_interval_ms, self.retry_at_ms = interval, now + interval
        self.failure_ts = failure_ts
        logger.info("federation: %s unreachable (%s); retrying in %d ms", self.destination,
                    reason, interval)

    async def _recovered(self) -> None:
        if self.failure_ts is None and self.retry_interval_ms == 0:
            return
        logger.info("federation: %s is reachable again", self.destination)
        await self.ctx.store.set_retry(self.destination, None, 0, 0)
        self.failure_ts = None
        self.retry_interval_ms = 0
        self.retry_at_ms = 0

    async def _catch_up_pdus(self) -> list[QueuedPdu] | None:
        """The next catch-up batch, or None once catch-up is complete."""
        while True:
            rows = await self.ctx.store.catch_up_events(
                self.destination, self.last_successful, MAX_PDUS_PER_TRANSACTION)
            if rows:
                found = await self.ctx.pdu_source([e for e, _ in rows])
                pdus = [QueuedPdu(e, so, found[e]) for e, so in rows if e in found]
                if pdus:
                    return pdus
                # Events gone (purged): move past them.
                self.last_successful = rows[-1][1]
                await self.ctx.store.set_last_successful(self.destination,
                                                         self.last_successful)
                continue
            if self._dirty:
                self._dirty = False
                continue
            self.catching_up = False
            return None

    async def _send_next(self) -> None:
        ctx = self.ctx
        catch_up = self.catching_up
        pdus: list[QueuedPdu] = []
        if catch_up:
            pdus = await self._catch_up_pdus() or []
        else:
            while self.pending_pdus and len(pdus) < MAX_PDUS_PER_TRANSACTION:
                pdus.append(self.pending_pdus.popleft())
        keyed = list(self.keyed_edus.items())[:MAX_EDUS_PER_TRANSACTION]
        for key, _ in keyed:
            del self.keyed_edus[key]
        edus = [e for _, e in keyed]
        plain: list[dict[str, Any]] = []
        while self.pending_edus and len(edus) + len(plain) < MAX_EDUS_PER_TRANSACTION:
            plain.append(self.pending_edus.popleft())
        edus += plain
        outbox: list[tuple[int, dict[str, Any]]] = []
        room = MAX_EDUS_PER_TRANSACTION - len(edus)
        if self.to_device_pending and ctx.to_device is not None and room > 0:
            self.to_device_pending = False
            outbox = await ctx.to_device.get_outbox(self.destination, 0, room)
            if len(outbox) >= room:
                self.to_device_pending = True  # more after this page
            edus += [{"edu_type": "m.direct_to_device", "content": c} for _, c in outbox]
        elif ctx.to_device is None:
            self.to_device_pending = False
        if not pdus and not edus:
            return
        try:
            await self._put(pdus, edus)
        except _Unreachable:
            # Keep the EDUs (keyed ones unless superseded meanwhile); PDUs go to catch-up.
            for key, edu in keyed:
                self.keyed_edus.setdefault(key, edu)
            self.pending_edus.extendleft(reversed(plain))
            self._trim_edus()
            if outbox:
                self.to_device_pending = True
            # PDUs are not always queued in stream order across rooms: catch-up must start
            # below the oldest one that was lost, not just after the last acknowledged.
            lost = [p.stream_ordering for p in (*pdus, *self.pending_pdus)]
            if lost and min(lost) - 1 < self.last_successful:
                self.last_successful = min(lost) - 1
                await ctx.store.lower_last_successful(self.destination, self.last_successful)
            raise
        self.transactions_sent += 1
        if outbox:
            await ctx.to_device.delete_outbox(  # type: ignore[union-attr]
                self.destination, outbox[-1][0])
        if pdus:
            top = max(p.stream_ordering for p in pdus)
            if top > self.last_successful:
                self.last_successful = top
                await ctx.store.set_last_successful(self.destination, top)
        await self._recovered()

    async def _put(self, pdus: list[QueuedPdu], edus: list[dict[str, Any]]) -> None:
        ctx = self.ctx
        txn_id = ctx.txn_ids.next()
        body = transaction_body(ctx.server_name, ctx.clock(), [p.json for p in pdus], edus)
        path = encode_path("_matrix", "federation", "v1", "send", txn_id)
        try:
            response = await ctx.client.put_json(self.destination, path, body,
                                                 timeout=ctx.request_timeout)
        except HttpResponseError as exc:
            if exc.status >= 500 or exc.status == 429:
                raise _Unreachable(str(exc)) from None
            # 4xx: the receiver refuses this transaction for good; retrying cannot help.
            logger.warning("federation: %s rejected transaction %s: %s", self.destination,
                           txn_id, exc)
            return
        except (FederationRequestError, OSError, TimeoutError) as exc:
            raise _Unreachable(str(exc)) from None
        results = response.get("pdus") if isinstance(response, dict) else None
        if isinstance(results, dict):
            for event_id, result in results.items():
                if isinstance(result, dict) and result.get("error"):
                    logger.info("federation: %s rejected %s: %s", self.destination, event_id,
                                result["error"])


__all__ = ["DestinationQueue", "PduSource", "QueuedPdu", "SenderContext"]
