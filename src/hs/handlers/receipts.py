"""Read receipts (client-server "Receipts"): ``m.read`` and ``m.read.private``, threaded or
not. ``m.fully_read`` sent to the receipt endpoint is a read marker
(``hs.handlers.read_markers``), not a receipt.

A receipt may only point at an event of the room that is part of its timeline (not an
outlier or rejected event) and that the sender may see (history visibility: a receipt must
not reveal whether hidden history exists); only members joined to the room may send one.
Public
receipts wake the room's long-pollers; private ones only the sender's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from hs.core.pdu import PDU
from hs.handlers.directory import DirectoryHandler
from hs.http.errors import invalid_param, not_found
from hs.notifier import Notifier
from hs.storage.events import EventsStore
from hs.storage.events.types import EventMeta
from hs.storage.receipts import PRIVATE_READ, ReceiptsStore

READ = "m.read"
FULLY_READ = "m.fully_read"
RECEIPT_TYPES = (READ, PRIVATE_READ)
MAIN_THREAD = "main"
VisibilityFilter = Callable[[Sequence[PDU], str], Awaitable[Sequence[PDU]]]


class ReceiptsHandler:
    def __init__(self, events: EventsStore, store: ReceiptsStore, directory: DirectoryHandler,
                 notifier: Notifier, clock: Callable[[], int], visible: VisibilityFilter
                 ) -> None:
        """``visible(events, user_id)``: the events the user may see (history visibility;
        the timeline handler's filter)."""
        self.events = events
        self.visible = visible
        self.store = store
        self.directory = directory
        self.notifier = notifier
        self.clock = clock

    async def require_room_event(self, room_id: str, event_id: str, user_id: str
                                 ) -> EventMeta:
        """The event's metadata; 404 unless it is a timeline event of this room that the
        user may see (history visibility), so receipts cannot probe hidden history."""
        found: tuple[PDU, EventMeta] | None = (
            await self.events.get_events_with_meta([event_id])).get(event_id)
        if found is None:
            raise not_found(f"Unknown event {event_id} in room {room_id}")
        pdu, meta = found
        if (meta.room_id != room_id or meta.outlier or meta.rejected_reason is not None
                or not await self.visible([pdu], user_id)):
            raise not_found(f"Unknown event {event_id} in room {room_id}")
        return meta

    @staticmethod
    def check_thread_id(thread_id: object) -> str | None:
        """``thread_id`` from a request body: absent (unthreaded), ``main`` or an event ID."""
        if thread_id is None:
            return None
        if not isinstance(thread_id, str) or not thread_id:
            raise invalid_param("thread_id field must be a non-empty string")
        if thread_id != MAIN_THREAD and not thread_id.startswith("$"):
            raise invalid_param("thread_id must be 'main' or an event ID")
        return thread_id

    async def send_receipt(self, user_id: str, room_id: str, receipt_type: str,
                           event_id: str, thread_id: str | None = None,
                           *, checked: bool = False) -> None:
        """Store and announce a receipt (``checked``: membership already verified)."""
        if receipt_type not in RECEIPT_TYPES:
            raise invalid_param(f"Receipt type must be one of {', '.join(RECEIPT_TYPES)}")
        if not checked:
            await self.directory.require_joined(room_id, user_id)
        meta = await self.require_room_event(room_id, event_id, user_id)
        pos = await self.store.insert_receipt(room_id, receipt_type, user_id, thread_id,
                                              event_id, meta.stream_ordering, self.clock())
        if pos is None:
            return  # older than the stored receipt: nothing changed
        if receipt_type == PRIVATE_READ:
            self.notifier.notify("receipts", pos, users=[user_id])
        else:
            self.notifier.notify("receipts", pos, rooms=[room_id])


__all__ = ["FULLY_READ", "MAIN_THREAD", "READ", "RECEIPT_TYPES", "ReceiptsHandler"]
