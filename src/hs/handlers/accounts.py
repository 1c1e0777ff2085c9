"""Account changes shared by the client API and the admin API (password, deactivation)."""

from __future__ import annotations

from hs.handlers.devices import DeviceHandler
from hs.handlers.passwords import Passwords
from hs.storage.accounts import AccountStore


class AccountHandler:
    def __init__(self, store: AccountStore, passwords: Passwords, devices: DeviceHandler) -> None:
        self.store = store
        self.passwords = passwords
        self.devices = devices

    async def set_password(self, user_id: str, new_password: str, *, logout_devices: bool,
                           keep_device_id: str | None = None) -> None:
        """Replace the password; optionally sign out every device but ``keep_device_id``."""
        self.passwords.check_policy(new_password)
        await self.store.set_password_hash(user_id, await self.passwords.hash(new_password))
        if logout_devices:
            await self.devices.delete_all_except(user_id, keep_device_id)

    async def deactivate(self, user_id: str) -> None:
        """Sign out everywhere (notifying device hooks), then lock the account for good."""
        await self.devices.delete_all_except(user_id, None)
        await self.store.deactivate_user(user_id)
