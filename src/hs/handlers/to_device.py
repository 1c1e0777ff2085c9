"""Send-to-device messaging (spec modules/send_to_device.md, to_device.yaml).

A send is stored once per recipient device at one "to_device" stream position and stays in
that device's inbox until its sync token moves past it (``ack_to_device``), which is how
the spec's "delivered at least once, removed once acknowledged" is met. Messages for remote
users are queued per destination in ``device_federation_outbox`` as m.direct_to_device EDU
contents; sending them is the federation sender's job (not built yet).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

import orjson

from hs.handlers.e2e_keys import server_of
from hs.http.errors import bad_json, invalid_param
from hs.notifier import Notifier
from hs.storage.streams import StreamIdGenerator
from hs.storage.to_device import ToDeviceStore

logger = logging.getLogger(__name__)

STREAM = "to_device"
#: Remembered transaction IDs are forgotten after this long (clients retry within minutes).
TXN_LIFETIME_MS = 24 * 3600 * 1000
#: Messages handed to one sync response at most (as Synapse).
DEFAULT_LIMIT = 100


class ToDeviceHandler:
    def __init__(self, server_name: str, store: ToDeviceStore, stream: StreamIdGenerator,
                 notifier: Notifier, clock: Callable[[], int]) -> None:
        self.server_name = server_name
        self.store = store
        self.stream = stream
        self.notifier = notifier
        self.clock = clock

    async def send(self, sender: str, sender_device: str, event_type: str, txn_id: str,
                   messages: Any) -> None:
        """Deliver ``messages`` (user -> device ID or ``*`` -> content) once per txn ID."""
        if not isinstance(messages, dict):
            raise bad_json("'messages' must be an object")
        local: dict[str, dict[str, dict[str, Any]]] = {}
        remote: dict[str, dict[str, dict[str, Any]]] = {}
        for user_id, devices in messages.items():
            server = server_of(user_id)
            if not isinstance(devices, dict) or not all(
                    isinstance(c, dict) for c in devices.values()):
                raise bad_json("'messages' must map user IDs to {device ID: content object}")
            if any(not d for d in devices):
                raise invalid_param("Empty device ID in 'messages'")
            (local if server == self.server_name else remote)[user_id] = devices

        existing = await self.store.existing_devices(sorted(local)) if local else {}
        rows: list[tuple[str, str, bytes]] = []
        recipients: set[str] = set()
        for user_id, devices in local.items():
            known = existing.get(user_id, set())
            targets: dict[str, dict[str, Any]] = {}
            if "*" in devices:
                targets = dict.fromkeys(known, devices["*"])
            # An explicit entry for a device wins over the wildcard.
            targets.update({d: c for d, c in devices.items() if d != "*" and d in known})
            for device_id, content in targets.items():
                rows.append((user_id, device_id, orjson.dumps(
                    {"sender": sender, "type": event_type, "content": content})))
                recipients.add(user_id)
        by_server: dict[str, dict[str, dict[str, Any]]] = {}
        for user_id, devices in remote.items():
            by_server.setdefault(server_of(user_id), {})[user_id] = devices
        edus = [(server, orjson.dumps({"sender": sender, "type": event_type,
                                       "message_id": secrets.token_urlsafe(16),
                                       "messages": msgs}))
                for server, msgs in by_server.items()]

        now = self.clock()
        async with self.stream.next() as position:
            stored = await self.store.add_messages(sender, sender_device, txn_id, position,
                                                   rows, edus, now)
        if stored and recipients:
            self.notifier.notify(STREAM, position, users=recipients)
        if secrets.randbelow(1000) == 0:
            await self.store.prune_txns(now - TXN_LIFETIME_MS)

    def current(self) -> int:
        return self.stream.current()

    async def get_to_device(self, user_id: str, device_id: str, since_pos: int,
                            limit: int = DEFAULT_LIMIT) -> tuple[list[dict[str, Any]], int]:
        """Messages after ``since_pos`` for ``/sync``, oldest first, and the position to
        put in the next token: the last message's when ``limit`` cut the list short (the
        rest follow next time), else the stream's current position."""
        top = self.stream.current()
        if since_pos >= top:
            return [], since_pos
        found = await self.store.get_messages(user_id, device_id, since_pos, top, limit)
        if len(found) >= limit:
            return [m for _, m in found], found[-1][0]
        return [m for _, m in found], top

    async def ack_to_device(self, user_id: str, device_id: str, up_to_pos: int) -> int:
        """Delete what the device has received: ``/sync`` calls this with the to_device
        position of the token a request *presents* (the client got everything up to it)."""
        return await self.store.delete_messages(user_id, device_id, up_to_pos)

    async def on_devices_deleted(self, user_id: str, device_ids: list[str]) -> None:
        await self.store.delete_devices(user_id, device_ids)


__all__ = ["ToDeviceHandler"]
