"""Outbound EDUs produced from local changes: typing, receipts, presence, device lists,
signing keys and to-device messages.

The typing, receipts, presence and device-list handlers have no listener hooks; they all
announce changes through ``Notifier.notify(stream, position, rooms=, users=)``. ``tap``
wraps that one method so every announcement is also handed to this producer, which reads
the change back (from the handler's memory or the stream tables) and queues EDUs for the
servers that share the room or user. To-device messages for remote users do not notify
anyone, so the ``to_device`` stream position is polled and the outbox read when it moves.
Work is processed in order by one task so EDUs leave in the order of the changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from hs.federation.sender.sender import FederationSender, server_of
from hs.handlers.presence import PresenceHandler
from hs.handlers.typing import TypingHandler
from hs.notifier import Notifier
from hs.storage.e2e import E2EStore
from hs.storage.federation import FederationSenderStore
from hs.storage.receipts import PRIVATE_READ, ReceiptsStore
from hs.storage.streams import StreamIdGenerator
from hs.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

#: Device changes at one device_lists position get IDs ``position * this + index``.
DEVICE_IDS_PER_POSITION = 1 << 16
_STREAMS = frozenset({"typing", "receipts", "presence", "device_lists"})
_Work = tuple[str, int, list[str], list[str]]


def device_list_stream_id(position: int, index: int) -> int:
    """A per-user unique ``stream_id`` (stays below 2**53 for positions below 2**37)."""
    return position * DEVICE_IDS_PER_POSITION + min(index, DEVICE_IDS_PER_POSITION - 1)


class OutboundEdus:
    def __init__(self, sender: FederationSender, store: FederationSenderStore, *,
                 typing: TypingHandler | None = None, receipts: ReceiptsStore | None = None,
                 presence: PresenceHandler | None = None, e2e: E2EStore | None = None,
                 to_device_stream: StreamIdGenerator | None = None,
                 clock: Callable[[], int] | None = None,
                 poll_interval_s: float = 0.5) -> None:
        self.sender = sender
        self.server_name = sender.server_name
        self.store = store
        self.typing = typing
        self.receipts = receipts
        self.presence = presence
        self.e2e = e2e
        self.to_device_stream = to_device_stream
        self.clock = clock or sender.ctx.clock
        self.poll_interval_s = poll_interval_s
        #: room -> local users we last told other servers are typing there.
        self._typing_sent: dict[str, set[str]] = {}
        self._work: asyncio.Queue[_Work] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._to_device_pos = -1

    # -- hooking in ---------------------------------------------------------------------------

    def tap(self, notifier: Notifier) -> None:
        """Observe ``notifier.notify`` (see the module docstring)."""
        original = notifier.notify

        def notify(stream: str, position: int, *, rooms: Iterable[str] = (),
                   users: Iterable[str] = ()) -> int:
            room_list, user_list = list(rooms), list(users)
            woken = original(stream, position, rooms=room_list, users=user_list)
            if stream in _STREAMS:
                self.submit(stream, position, room_list, user_list)
            return woken

        notifier.notify = notify  # type: ignore[method-assign]

    def submit(self, stream: str, position: int, rooms: list[str], users: list[str]) -> None:
        self._work.put_nowait((stream, position, rooms, users))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._drain())

    def start(self) -> None:
        """Start polling the to-device outbox (needs a running loop)."""
        if self.to_device_stream is not None and self._poller is None:
            self._poller = asyncio.get_running_loop().create_task(self._poll_to_device())

    async def close(self) -> None:
        for task in (self._worker, self._poller):
            await cancel_and_wait(task)

    async def idle(self) -> None:
        """Wait until submitted work is processed (tests)."""
        while self._worker is not None and not self._worker.done():
            await asyncio.shield(self._worker)

    # -- processing ---------------------------------------------------------------------------

    async def _drain(self) -> None:
        while not self._work.empty():
            stream, position, rooms, _users = self._work.get_nowait()
            try:
                if stream == "typing":
                    await self._typing(rooms)
                elif stream == "receipts":
                    await self._receipts(position, rooms)
                elif stream == "presence":
                    await self._presence(position)
                elif stream == "device_lists":
                    await self._device_lists(position)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("outbound %s EDUs at %d failed", stream, position)

    def _is_mine(self, user_id: str) -> bool:
        return server_of(user_id) == self.server_name

    async def _room_servers(self, room_id: str) -> set[str]:
        return (await self.store.servers_in_rooms([room_id]))[room_id] - {self.server_name}

    async def _typing(self, rooms: list[str]) -> None:
        if self.typing is None:
            return
        for room_id in rooms:
            now = {u for u in self.typing.get_typing(room_id) if self._is_mine(u)}
            before = self._typing_sent.get(room_id, set())
            if now == before:
                continue
            if now:
                self._typing_sent[room_id] = now
            else:
                self._typing_sent.pop(room_id, None)
            servers = await self._room_servers(room_id)
            for user_id in sorted(now ^ before):
                content = {"room_id": room_id, "user_id": user_id, "typing": user_id in now}
                for dest in servers:
                    self.sender.send_edu(dest, "m.typing", content, key=(room_id, user_id))

    async def _receipts(self, position: int, rooms: list[str]) -> None:
        if self.receipts is None or not rooms:
            return
        # ``user_id`` "" sees no private receipt; private ones never leave the server.
        rows = await self.receipts.get_changed_receipts(position - 1, rooms, "", upto=position)
        for row in rows:
            if row.receipt_type == PRIVATE_READ or not self._is_mine(row.user_id):
                continue
            data: dict[str, Any] = {"ts": row.ts}
            if row.thread_id is not None:
                data["thread_id"] = row.thread_id
            content = {row.room_id: {row.receipt_type: {row.user_id: {
                "event_ids": [row.event_id], "data": data}}}}
            for dest in await self._room_servers(row.room_id):
                self.sender.send_edu(dest, "m.receipt", content)

    async def _presence(self, position: int) -> None:
        if self.presence is None or not self.presence.enabled:
            return
        now = self.clock()
        for row in await self.presence.store.changed_since(position - 1, position):
            if not self._is_mine(row.user_id):
                continue
            update: dict[str, Any] = {
                "user_id": row.user_id, "presence": row.state,
                "last_active_ago": max(now - row.last_active_ts, 0),
                "currently_active": bool(row.currently_active)}
            if row.status_msg is not None:
                update["status_msg"] = row.status_msg
            servers = await self.store.servers_sharing_rooms_with(row.user_id)
            for dest in servers - {self.server_name}:
                self.sender.send_edu(dest, "m.presence", {"push": [update]},
                                     key=row.user_id)

    async def _device_lists(self, position: int) -> None:
        if self.e2e is None:
            return
        by_user: dict[str, list[str]] = {}
        for user_id, device_id in await self.store.device_list_rows(position):
            if self._is_mine(user_id) and device_id:
                by_user.setdefault(user_id, []).append(device_id)
        for user_id, device_ids in by_user.items():
            # IDs advance even when nobody is told: a server that shares a room again
            # later then sees a prev_id gap and resyncs instead of missing changes.
            edus = await self.device_list_edus(user_id, device_ids, position)
            servers = await self.store.servers_sharing_rooms_with(user_id) - {self.server_name}
            for edu_type, content in edus:
                for dest in servers:
                    self.sender.send_edu(dest, edu_type, content)

    async def device_list_edus(self, user_id: str, device_ids: list[str], position: int
                               ) -> list[tuple[str, dict[str, Any]]]:
        """``m.device_list_update`` per changed device, chained by ``prev_id`` with IDs
        unique per user (spec "Device Management"), or ``m.signing_key_update`` when the
        "device" is the user's master key (cross-signing changes are recorded that way)."""
        assert self.e2e is not None
        prev = await self.store.get_device_list_id(user_id)
        keys = {r.device_id: r for r in await self.e2e.get_device_keys([user_id])}
        cross = (await self.e2e.get_cross_signing_keys([user_id])).get(user_id, {})
        master = cross.get("master")
        master_pub = None
        if master is not None:
            master_pub = next(iter(master.get("keys", {}).values()), None)
        out: list[tuple[str, dict[str, Any]]] = []
        index = 0
        for device_id in sorted(set(device_ids)):
            if device_id == master_pub and master is not None:
                content: dict[str, Any] = {"user_id": user_id, "master_key": master}
                if "self_signing" in cross:
                    content["self_signing_key"] = cross["self_signing"]
                out.append(("m.signing_key_update", content))
                continue
            stream_id = device_list_stream_id(position, index)
            index += 1
            if prev is not None and stream_id <= prev:
                continue  # already sent (a replay of the same position)
            content = {"user_id": user_id, "device_id": device_id, "stream_id": stream_id,
                       "prev_id": [] if prev is None else [prev]}
            prev = stream_id
            row = keys.get(device_id)
            if row is not None:
                content["keys"] = row.keys
                if row.display_name is not None:
                    content["device_display_name"] = row.display_name
            elif not await self.store.device_exists(user_id, device_id):
                content["deleted"] = True
            out.append(("m.device_list_update", content))
        if prev is not None:
            await self.store.set_device_list_id(user_id, prev)
        return out

    async def _poll_to_device(self) -> None:
        assert self.to_device_stream is not None
        while True:
            try:
                current = self.to_device_stream.current()
                if current != self._to_device_pos:
                    after = 0 if self._to_device_pos < 0 else self._to_device_pos
                    found = await self.store.outbox_destinations(after)
                    self._to_device_pos = current
                    self.sender.to_device_ready([d for d, _ in found])
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("to-device outbox poll failed")
            await asyncio.sleep(self.poll_interval_s)


__all__ = ["OutboundEdus"]
