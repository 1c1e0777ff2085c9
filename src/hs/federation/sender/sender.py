"""The outbound federation sender: fans locally created PDUs and EDUs out to destination
queues (``queue.DestinationQueue``), one transaction in flight per destination."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Hashable, Sequence
from typing import Any

from hs.core.pdu import PDU
from hs.federation.client import FederationClient
from hs.federation.sender.backoff import RetryPolicy
from hs.federation.sender.queue import (
    DestinationQueue,
    PduSource,
    QueuedPdu,
    SenderContext,
)
from hs.federation.sender.transaction import TxnIds
from hs.storage.events import EventToPersist
from hs.storage.events.cache import LruCache
from hs.storage.events.types import PersistedEvent
from hs.storage.federation import FederationSenderStore
from hs.storage.to_device import ToDeviceStore

logger = logging.getLogger(__name__)
#: Rooms whose servers are kept.
SERVERS_CACHE = 2048


def _wall_ms() -> int:
    return int(time.time() * 1000)


def server_of(user_id: str) -> str:
    return user_id.split(":", 1)[1] if ":" in user_id else ""


class FederationSender:
    def __init__(self, server_name: str, client: FederationClient,
                 store: FederationSenderStore, pdu_source: PduSource, *,
                 to_device: ToDeviceStore | None = None, policy: RetryPolicy | None = None,
                 clock: Any = _wall_ms, max_queued_edus: int = 1000,
                 request_timeout: float = 60.0) -> None:
        self.server_name = server_name
        self.store = store
        self.ctx = SenderContext(server_name, client, store, to_device, pdu_source,
                                 policy or RetryPolicy(), clock, TxnIds(), max_queued_edus,
                                 request_timeout)
        self.queues: dict[str, DestinationQueue] = {}
        #: The outbound EDU producer feeding this sender (set by ``wiring``), closed with it.
        self.outbound: Any = None
        self._closed = False
        #: room -> servers of its joined members, until the room pipeline reports a
        #: possible current-state change (``forget_room``): one read less per message.
        self._servers: LruCache[str, frozenset[str]] = LruCache(SERVERS_CACHE)
        self._epoch = 0  # bumped by forget_room: a read that raced one is not kept
        self._resume_task: asyncio.Task[None] | None = None

    def allowed(self, destination: str) -> bool:
        return (bool(destination) and destination != self.server_name
                and self.ctx.client.is_destination_allowed(destination))

    def queue(self, destination: str) -> DestinationQueue:
        q = self.queues.get(destination)
        if q is None:
            q = self.queues[destination] = DestinationQueue(self.ctx, destination)
        return q

    # -- PDUs -------------------------------------------------------------------------------

    async def send_pdus(self, room_id: str, pdus: Sequence[QueuedPdu],
                        destinations: Collection[str]) -> None:
        """Queue ``pdus`` (of one room, in order) for ``destinations``; the newest is first
        recorded as the room's catch-up event for each of them."""
        targets = sorted(d for d in set(destinations) if self.allowed(d))
        if not targets or not pdus or self._closed:
            return
        latest = max(pdus, key=lambda p: p.stream_ordering)
        await self.store.record_room_pdu(targets, room_id, latest.event_id,
                                         latest.stream_ordering)
        for dest in targets:
            q = self.queue(dest)
            for pdu in pdus:
                q.add_pdu(pdu)

    async def relay_pdu(self, room_id: str, pdu: PDU, stream_ordering: int,
                        exclude: Collection[str]) -> None:
        """Send a remote server's event that we accepted as the resident server (its
        send_join/leave/knock) to the room's other servers."""
        data = {k: v for k, v in pdu.data.items() if k != "unsigned"}
        servers = (await self.store.servers_in_rooms([room_id]))[room_id] - set(exclude)
        servers.discard(self.server_name)
        await self.send_pdus(room_id, [QueuedPdu(pdu.event_id, stream_ordering, data)],
                             servers)

    async def on_persisted(self, room_id: str, batch: Sequence[EventToPersist],
                           results: Sequence[PersistedEvent]) -> None:
        """``EventPipeline.on_persisted`` hook: send new local events to the servers of the
        room's joined members (current state, after the batch) - plus the target's server
        of a leave/ban, which was in the room just before."""
        pdus: list[QueuedPdu] = []
        extra: set[str] = set()
        for item, result in zip(batch, results, strict=True):
            pdu = item.pdu
            if (result.deduplicated or item.outlier or item.backfilled
                    or pdu.rejected_reason is not None
                    or server_of(pdu.sender) != self.server_name):
                continue
            data = {k: v for k, v in pdu.data.items() if k != "unsigned"}
            pdus.append(QueuedPdu(pdu.event_id, result.stream_ordering, data))
            if pdu.type == "m.room.member" and pdu.state_key and pdu.membership in (
                    "leave", "ban"):
                extra.add(server_of(pdu.state_key))
        if not pdus:
            return
        servers = await self._servers_in_room(room_id) | extra
        await self.send_pdus(room_id, pdus, servers)

    def forget_room(self, room_id: str) -> None:
        """``EventPipeline.on_state_changed``: the room's members may have changed."""
        self._epoch += 1
        self._servers.invalidate([room_id])

    async def _servers_in_room(self, room_id: str) -> frozenset[str]:
        servers = self._servers.get(room_id)
        if servers is None:
            epoch = self._epoch
            servers = frozenset((await self.store.servers_in_rooms([room_id]))[room_id])
            if epoch == self._epoch:
                self._servers.set(room_id, servers)
        return servers

    # -- EDUs -------------------------------------------------------------------------------

    def send_edu(self, destination: str, edu_type: str, content: dict[str, Any],
                 key: Hashable | None = None) -> None:
        """Queue an EDU; with ``key`` a later EDU of the same key replaces a queued one."""
        if self._closed or not self.allowed(destination):
            return
        edu = {"edu_type": edu_type, "content": content}
        self.queue(destination).add_edu(edu, None if key is None else (edu_type, key))

    def to_device_ready(self, destinations: Collection[str]) -> None:
        """The to-device outbox has EDUs for these destinations."""
        for dest in destinations:
            if not self._closed and self.allowed(dest):
                self.queue(dest).add_to_device()

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Resume destinations that were down at shutdown (retry when their backoff ends,
        then catch up), without waiting for new traffic to them. Needs a running loop."""
        self._resume_task = asyncio.get_running_loop().create_task(self._resume())

    async def _resume(self) -> None:
        try:
            for dest in await self.store.failed_destinations():
                if not self._closed and self.allowed(dest):
                    self.queue(dest).wake()
        except Exception:
            logger.exception("federation sender: could not resume failed destinations")

    async def flush(self) -> None:
        """Wait until every queue is idle (tests and shutdown)."""
        for q in list(self.queues.values()):
            await q.idle()

    async def close(self) -> None:
        self._closed = True
        if self._resume_task is not None:
            self._resume_task.cancel()
        if self.outbound is not None:
            await self.outbound.close()
        await asyncio.gather(*(q.close() for q in self.queues.values()))


__all__ = ["FederationSender", "server_of"]
