"""Inbound EDUs of a federation transaction (server-server API "EDUs" and the typing,
receipts, presence, send-to-device and device-management sections).

Every EDU is about users of the sending server: an EDU claiming to speak for another
server's user is ignored (the transaction was authenticated as ``origin`` only). EDUs are
best-effort: a malformed one is logged and skipped, never failing the transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from hs.handlers.device_lists import DeviceListHandler
from hs.handlers.presence import STATES, PresenceHandler
from hs.handlers.typing import TypingHandler
from hs.notifier import Notifier
from hs.storage.events import EventsStore
from hs.storage.federation import FederationSenderStore, RemoteDevicesStore
from hs.storage.receipts import ReceiptsStore
from hs.storage.streams import StreamIdGenerator
from hs.storage.to_device import ToDeviceStore

logger = logging.getLogger(__name__)

#: How long a remote user's typing lasts unless renewed (servers re-send while typing).
FEDERATION_TYPING_TIMEOUT_MS = 60_000
#: ``fetch_devices(user_id)``: the remote's ``GET /user/devices/{userId}`` response.
DeviceFetcher = Callable[[str], Awaitable[dict[str, Any]]]


def _server_of(user_id: Any) -> str | None:
    if not isinstance(user_id, str) or not user_id.startswith("@") or ":" not in user_id:
        return None
    return user_id.split(":", 1)[1]


class EduHandler:
    def __init__(self, server_name: str, store: FederationSenderStore,
                 remote_devices: RemoteDevicesStore, notifier: Notifier,
                 clock: Callable[[], int], *, typing: TypingHandler | None = None,
                 receipts: ReceiptsStore | None = None, events: EventsStore | None = None,
                 presence: PresenceHandler | None = None,
                 to_device: ToDeviceStore | None = None,
                 to_device_stream: StreamIdGenerator | None = None,
                 device_lists: DeviceListHandler | None = None,
                 fetch_devices: DeviceFetcher | None = None) -> None:
        self.server_name = server_name
        self.store = store
        self.remote_devices = remote_devices
        self.notifier = notifier
        self.clock = clock
        self.typing = typing
        self.receipts = receipts
        self.events = events
        self.presence = presence
        self.to_device = to_device
        self.to_device_stream = to_device_stream
        self.device_lists = device_lists
        self.fetch_devices = fetch_devices
        self._handlers: dict[str, Callable[[str, dict[str, Any]], Awaitable[None]]] = {
            "m.typing": self._on_typing,
            "m.receipt": self._on_receipt,
            "m.presence": self._on_presence,
            "m.direct_to_device": self._on_to_device,
            "m.device_list_update": self._on_device_list_update,
            "m.signing_key_update": self._on_signing_key_update,
        }

    async def on_edus(self, origin: str, edus: list[dict[str, Any]]) -> None:
        """Handle a transaction's ``edus`` in order; unknown types are ignored."""
        for edu in edus:
            if not isinstance(edu, dict):
                continue
            handler = self._handlers.get(edu.get("edu_type"))  # type: ignore[arg-type]
            content = edu.get("content")
            if handler is None or not isinstance(content, dict):
                continue
            try:
                await handler(origin, content)
            except Exception:
                logger.exception("EDU %s from %s failed", edu.get("edu_type"), origin)

    # -- typing -------------------------------------------------------------------------------

    async def _on_typing(self, origin: str, content: dict[str, Any]) -> None:
        room_id, user_id, typing = (content.get("room_id"), content.get("user_id"),
                                    content.get("typing"))
        if (self.typing is None or not isinstance(room_id, str)
                or _server_of(user_id) != origin or not isinstance(typing, bool)):
            return
        assert isinstance(user_id, str)
        if not await self.store.is_joined(room_id, user_id):
            return
        await self.typing.set_typing(room_id, user_id, typing, FEDERATION_TYPING_TIMEOUT_MS)

    # -- receipts -----------------------------------------------------------------------------

    async def _on_receipt(self, origin: str, content: dict[str, Any]) -> None:
        if self.receipts is None or self.events is None:
            return
        for room_id, by_type in content.items():
            if not isinstance(by_type, dict):
                continue
            # Only public receipts are federated; private ones never arrive legitimately.
            users = by_type.get("m.read")
            if not isinstance(users, dict):
                continue
            for user_id, receipt in users.items():
                if _server_of(user_id) != origin or not isinstance(receipt, dict):
                    continue
                event_ids = receipt.get("event_ids")
                data = receipt.get("data")
                if not isinstance(event_ids, list) or not event_ids or not isinstance(
                        event_ids[-1], str):
                    continue
                data = data if isinstance(data, dict) else {}
                thread_id = data.get("thread_id")
                if thread_id is not None and not isinstance(thread_id, str):
                    continue
                ts = data.get("ts")
                ts = ts if isinstance(ts, int) and not isinstance(ts, bool) else self.clock()
                await self._store_receipt(room_id, user_id, event_ids[-1], thread_id, ts)

    async def _store_receipt(self, room_id: str, user_id: str, event_id: str,
                             thread_id: str | None, ts: int) -> None:
        assert self.receipts is not None and self.events is not None
        if not await self.store.is_joined(room_id, user_id):
            return
        found = (await self.events.get_events_with_meta([event_id])).get(event_id)
        if found is None or found[1].room_id != room_id:
            return  # an event we do not have cannot be placed in our stream order
        pos = await self.receipts.insert_receipt(room_id, "m.read", user_id, thread_id,
                                                 event_id, found[1].stream_ordering, ts)
        if pos is not None:
            self.notifier.notify("receipts", pos, rooms=[room_id])

    # -- presence -----------------------------------------------------------------------------

    async def _on_presence(self, origin: str, content: dict[str, Any]) -> None:
        pushes = content.get("push")
        if self.presence is None or not self.presence.enabled or not isinstance(pushes, list):
            return
        now = self.clock()
        for update in pushes:
            if not isinstance(update, dict):
                continue
            user_id, state = update.get("user_id"), update.get("presence")
            if _server_of(user_id) != origin or state not in STATES:
                continue
            assert isinstance(user_id, str)
            ago = update.get("last_active_ago")
            ago = ago if isinstance(ago, int) and not isinstance(ago, bool) and ago >= 0 else 0
            msg = update.get("status_msg")
            msg = msg if isinstance(msg, str) else None
            active = update.get("currently_active") is True
            row = await self.presence.store.set(user_id, str(state), msg, now - ago, active)
            # The handler caches rows it has read; keep its view current.
            self.presence._remember(user_id, row)
            watchers = await self.presence.e2e.users_sharing_room(user_id)
            self.notifier.notify("presence", row.stream_id, users=watchers)

    # -- send-to-device -----------------------------------------------------------------------

    async def _on_to_device(self, origin: str, content: dict[str, Any]) -> None:
        sender, event_type = content.get("sender"), content.get("type")
        message_id, messages = content.get("message_id"), content.get("messages")
        if (self.to_device is None or self.to_device_stream is None
                or _server_of(sender) != origin or not isinstance(event_type, str)
                or not isinstance(message_id, str) or not isinstance(messages, dict)):
            return
        assert isinstance(sender, str)
        local = {u: d for u, d in messages.items()
                 if _server_of(u) == self.server_name and isinstance(d, dict)}
        existing = await self.to_device.existing_devices(sorted(local)) if local else {}
        rows: list[tuple[str, str, bytes]] = []
        for user_id, devices in local.items():
            known = existing.get(user_id, set())
            targets = dict.fromkeys(known, devices["*"]) if "*" in devices else {}
            targets.update({d: c for d, c in devices.items() if d != "*" and d in known})
            for device_id, body in targets.items():
                if isinstance(body, dict):
                    rows.append((user_id, device_id, orjson.dumps(
                        {"sender": sender, "type": event_type, "content": body})))
        if not rows:
            return
        async with self.to_device_stream.next() as position:
            # The sender's (user, "", message_id) is the dedupe key: a retried transaction
            # carrying the same message is stored once (spec: message_id "idempotency").
            stored = await self.to_device.add_messages(sender, "", f"fed:{message_id}",
                                                       position, rows, [], self.clock())
        if stored:
            self.notifier.notify("to_device", position, users={u for u, _, _ in rows})

    # -- device lists -------------------------------------------------------------------------

    async def _tracked(self, user_id: str) -> bool:
        """We only keep device lists of users sharing a room with one of ours."""
        servers = await self.store.servers_sharing_rooms_with(user_id)
        return self.server_name in servers

    async def _on_device_list_update(self, origin: str, content: dict[str, Any]) -> None:
        user_id, device_id = content.get("user_id"), content.get("device_id")
        stream_id, prev_ids = content.get("stream_id"), content.get("prev_id", [])
        if (_server_of(user_id) != origin or not isinstance(device_id, str)
                or not isinstance(stream_id, int) or isinstance(stream_id, bool)
                or not isinstance(prev_ids, list)
                or not all(isinstance(p, int) for p in prev_ids)):
            return
        assert isinstance(user_id, str)
        if not await self._tracked(user_id):
            return
        known = await self.remote_devices.get_stream_id(user_id)
        if known is not None and stream_id < known:
            return  # older than what we have
        # Spec "Device Management": an update whose prev_id we have not seen means we
        # missed updates; resync the whole list instead of applying it.
        if (known is None and prev_ids) or (known is not None and any(p > known for p in prev_ids)):
            await self.resync(user_id)
            return
        keys = content.get("keys")
        name = content.get("device_display_name")
        await self.remote_devices.update_device(
            user_id, stream_id, device_id, keys if isinstance(keys, dict) else None,
            name if isinstance(name, str) else None, content.get("deleted") is True)
        await self._changed(user_id, [device_id])

    async def resync(self, user_id: str) -> bool:
        """Replace a remote user's device list with ``GET /user/devices/{userId}``."""
        if self.fetch_devices is None:
            return False
        try:
            body = await self.fetch_devices(user_id)
        except Exception as exc:
            logger.info("device list resync of %s failed: %s", user_id, exc)
            return False
        stream_id, devices = body.get("stream_id"), body.get("devices")
        if (body.get("user_id") != user_id or not isinstance(stream_id, int)
                or not isinstance(devices, list)):
            logger.info("device list resync of %s: malformed response", user_id)
            return False
        parsed: list[tuple[str, dict[str, Any] | None, str | None]] = []
        for dev in devices:
            if isinstance(dev, dict) and isinstance(dev.get("device_id"), str):
                keys, name = dev.get("keys"), dev.get("device_display_name")
                parsed.append((dev["device_id"], keys if isinstance(keys, dict) else None,
                               name if isinstance(name, str) else None))
        cross = {kt: body[f] for kt, f in (("master", "master_key"),
                                           ("self_signing", "self_signing_key"))
                 if isinstance(body.get(f), dict)}
        await self.remote_devices.replace_all(user_id, stream_id, parsed, cross)
        await self._changed(user_id, [d for d, _, _ in parsed])
        return True

    async def _on_signing_key_update(self, origin: str, content: dict[str, Any]) -> None:
        user_id = content.get("user_id")
        if _server_of(user_id) != origin:
            return
        assert isinstance(user_id, str)
        if not await self._tracked(user_id):
            return
        keys = {kt: content[f] for kt, f in (("master", "master_key"),
                                             ("self_signing", "self_signing_key"))
                if isinstance(content.get(f), dict)}
        if keys:
            await self.remote_devices.set_cross_signing(user_id, keys)
            await self._changed(user_id, [])

    async def _changed(self, user_id: str, device_ids: list[str]) -> None:
        """Tell local users sharing a room that ``user_id``'s keys changed (/sync)."""
        if self.device_lists is not None:
            await self.device_lists.record_change(user_id, device_ids)


__all__ = ["FEDERATION_TYPING_TIMEOUT_MS", "EduHandler"]
