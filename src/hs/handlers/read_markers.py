"""Fully read markers (client-server "Read markers"): ``m.fully_read`` kept as room
account data ``{"event_id": ...}``, set only through ``/read_markers`` (or the receipt
endpoint), optionally together with the ``m.read``/``m.read.private`` receipts.

Like Synapse, the marker only moves forward: a marker for an event older (by stream
ordering) than the current one is ignored, so a client catching up on an old device does
not rewind it.
"""

from __future__ import annotations

from hs.handlers.receipts import FULLY_READ, ReceiptsHandler
from hs.notifier import Notifier
from hs.storage.account_data import AccountDataStore
from hs.storage.receipts import PRIVATE_READ

READ = "m.read"


class ReadMarkersHandler:
    def __init__(self, account_data: AccountDataStore, receipts: ReceiptsHandler,
                 notifier: Notifier) -> None:
        self.account_data = account_data
        self.receipts = receipts
        self.notifier = notifier

    async def set_read_markers(self, user_id: str, room_id: str, *,
                               fully_read: str | None = None, read: str | None = None,
                               read_private: str | None = None) -> None:
        await self.receipts.directory.require_joined(room_id, user_id)
        # Validate every event before changing anything, so a bad one changes nothing.
        for event_id in (fully_read, read, read_private):
            if event_id is not None:
                await self.receipts.require_room_event(room_id, event_id, user_id)
        if fully_read is not None:
            await self._set_fully_read(user_id, room_id, fully_read)
        if read is not None:
            await self.receipts.send_receipt(user_id, room_id, READ, read, checked=True)
        if read_private is not None:
            await self.receipts.send_receipt(user_id, room_id, PRIVATE_READ, read_private,
                                             checked=True)

    async def _set_fully_read(self, user_id: str, room_id: str, event_id: str) -> None:
        current = await self.account_data.get_room_account_data(user_id, room_id, FULLY_READ)
        old_id = current.get("event_id") if current else None
        if isinstance(old_id, str):
            if old_id == event_id:
                return
            metas = await self.receipts.events.get_event_meta([old_id, event_id])
            old, new = metas.get(old_id), metas.get(event_id)
            if old is not None and new is not None and old.stream_ordering > new.stream_ordering:
                return
        pos = await self.account_data.set_room_account_data(
            user_id, room_id, FULLY_READ, {"event_id": event_id})
        self.notifier.notify("account_data", pos, users=[user_id])

    async def get_fully_read(self, user_id: str, room_id: str) -> str | None:
        content = await self.account_data.get_room_account_data(user_id, room_id, FULLY_READ)
        event_id = content.get("event_id") if content else None
        return event_id if isinstance(event_id, str) else None


__all__ = ["ReadMarkersHandler"]
