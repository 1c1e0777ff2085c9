"""Creating accounts: open/token registration, guests, and shared-secret admin registration."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from hs.config import HomeserverConfig
from hs.handlers.auth import AuthHandler
from hs.handlers.devices import DeviceHandler
from hs.handlers.identifiers import (
    random_guest_localpart,
    random_localpart,
    user_id_for,
    validate_localpart,
)
from hs.handlers.passwords import Passwords
from hs.http.errors import MatrixError
from hs.storage.accounts import AccountStore, UserExistsError

logger = logging.getLogger(__name__)

_GENERATE_ATTEMPTS = 10


def user_in_use() -> MatrixError:
    return MatrixError(400, "M_USER_IN_USE", "User ID already taken.")


class RegistrationHandler:
    def __init__(self, config: HomeserverConfig, store: AccountStore, passwords: Passwords,
                 auth: AuthHandler, devices: DeviceHandler, clock: Callable[[], int]) -> None:
        self.config = config
        self.store = store
        self.passwords = passwords
        self.auth = auth
        self.devices = devices
        self.clock = clock

    def canonical_localpart(self, username: str) -> str:
        """Lower-case and validate a requested username (400 M_INVALID_USERNAME)."""
        localpart = username.lower()
        validate_localpart(localpart, self.config.server_name)
        return localpart

    async def check_available(self, localpart: str) -> None:
        if await self.store.find_user(user_id_for(localpart, self.config.server_name)):
            raise user_in_use()

    async def register(self, localpart: str | None, password: str | None, *,
                       is_guest: bool = False, admin: bool = False,
                       user_type: str | None = None, displayname: str | None = None,
                       registration_token: str | None = None) -> str:
        """Create the account; a generated localpart is retried on collision."""
        password_hash = await self.passwords.hash(password) if password is not None else None
        attempts = 1 if localpart is not None else _GENERATE_ATTEMPTS
        for _ in range(attempts):
            local = localpart or (random_guest_localpart() if is_guest else random_localpart())
            user_id = user_id_for(local, self.config.server_name)
            try:
                await self.store.register_user(
                    user_id, password_hash, self.clock(), is_guest=is_guest, admin=admin,
                    user_type=user_type, displayname=displayname if displayname is not None
                    else local, registration_token=registration_token)
            except UserExistsError:
                continue
            except ValueError:
                raise MatrixError(401, "M_FORBIDDEN",
                                  "Registration token is no longer valid") from None
            logger.info("Registered %s%s", user_id, " (guest)" if is_guest else "")
            return user_id
        raise user_in_use()

    async def login_new_user(self, user_id: str, device_id: str | None,
                             initial_display_name: str | None, refreshable: bool
                             ) -> dict[str, Any]:
        """The ``/register`` response body after creating a device and tokens."""
        device_id = await self.devices.create_or_reuse(user_id, device_id, initial_display_name)
        session = await self.auth.issue_session(user_id, device_id, refreshable=refreshable)
        return {"user_id": user_id, "device_id": device_id,
                "home_server": self.config.server_name, **session}
