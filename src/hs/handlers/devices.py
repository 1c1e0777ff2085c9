"""Device lifecycle. Other subsystems subscribe: e2e keys and to-device to deletions, the
device-list stream to creations and renames (the display name is part of /keys/query)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from hs.handlers.identifiers import random_device_id
from hs.http.errors import MatrixError, not_found
from hs.storage.accounts import AccountStore
from hs.storage.accounts.store import DeviceRow

logger = logging.getLogger(__name__)

DeviceDeletedHook = Callable[[str, list[str]], Awaitable[None]]
#: ``hook(user_id, device_ids)``: same shape for every lifecycle hook.
DeviceHook = DeviceDeletedHook
MAX_DEVICE_ID_LENGTH = 255
MAX_DISPLAY_NAME_LENGTH = 100


def device_json(device: DeviceRow) -> dict[str, Any]:
    body: dict[str, Any] = {"device_id": device.device_id}
    if device.display_name is not None:
        body["display_name"] = device.display_name
    if device.last_seen_ts is not None:
        body["last_seen_ts"] = device.last_seen_ts
    if device.last_seen_ip is not None:
        body["last_seen_ip"] = device.last_seen_ip
    return body


class DeviceHandler:
    def __init__(self, store: AccountStore, clock: Callable[[], int]) -> None:
        self.store = store
        self.clock = clock
        #: Called as ``hook(user_id, device_ids)`` after devices are deleted.
        self.on_deleted: list[DeviceHook] = []
        #: Called as ``hook(user_id, [device_id])`` after a device is created or renamed.
        self.on_changed: list[DeviceHook] = []

    async def create_or_reuse(self, user_id: str, device_id: str | None,
                              display_name: str | None) -> str:
        """Reuse a client-chosen device (dropping its old tokens) or create a new one."""
        if device_id is not None:
            if not device_id or len(device_id) > MAX_DEVICE_ID_LENGTH:
                raise MatrixError(400, "M_INVALID_PARAM", "Invalid device_id")
            if await self.store.get_device(user_id, device_id) is not None:
                await self.store.delete_device_tokens(user_id, device_id)
                return device_id
        else:
            device_id = random_device_id()
        await self.store.ensure_device(user_id, device_id, _clip(display_name), self.clock())
        await self._run(self.on_changed, user_id, [device_id])
        return device_id

    async def list_for(self, user_id: str) -> list[dict[str, Any]]:
        return [device_json(d) for d in await self.store.list_devices(user_id)]

    async def get(self, user_id: str, device_id: str) -> dict[str, Any]:
        device = await self.store.get_device(user_id, device_id)
        if device is None:
            raise not_found("Device not found")
        return device_json(device)

    async def rename(self, user_id: str, device_id: str, display_name: str) -> None:
        if not await self.store.set_device_display_name(user_id, device_id,
                                                        _clip(display_name) or ""):
            raise not_found("Device not found")
        await self._run(self.on_changed, user_id, [device_id])

    async def delete(self, user_id: str, device_ids: list[str]) -> None:
        await self.store.delete_devices(user_id, device_ids)
        await self._notify(user_id, device_ids)

    async def delete_all_except(self, user_id: str, keep_device_id: str | None) -> None:
        deleted = await self.store.delete_other_sessions(user_id, keep_device_id)
        await self._notify(user_id, deleted)

    async def _notify(self, user_id: str, device_ids: list[str]) -> None:
        await self._run(self.on_deleted, user_id, device_ids)

    @staticmethod
    async def _run(hooks: list[DeviceHook], user_id: str, device_ids: list[str]) -> None:
        """Run every hook; one failing hook is logged and does not undo the device change."""
        if not device_ids:
            return
        for hook in hooks:
            try:
                await hook(user_id, device_ids)
            except Exception:
                logger.exception("Device hook %r failed for %s %s", hook, user_id, device_ids)


def _clip(name: str | None) -> str | None:
    return None if name is None else name[:MAX_DISPLAY_NAME_LENGTH]
