"""Profiles: ``displayname``, ``avatar_url`` and the v1.16 custom profile fields."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from hs.http.errors import MatrixError, forbidden, not_found
from hs.storage.accounts import AccountStore

MAX_KEY_BYTES = 255
MAX_PROFILE_BYTES = 64 * 1024
MAX_DISPLAYNAME_LENGTH = 256
MAX_AVATAR_URL_LENGTH = 1000
_STRING_FIELDS = {"displayname": MAX_DISPLAYNAME_LENGTH, "avatar_url": MAX_AVATAR_URL_LENGTH}


class ProfileHandler:
    def __init__(self, store: AccountStore, server_name: str) -> None:
        self.store = store
        self.server_name = server_name
        #: ``remote(user_id, field)``: another server's profile (set by the F2 wiring).
        self.remote: Callable[[str, str | None], Awaitable[dict[str, Any]]] | None = None

    async def _existing_local_user(self, user_id: str) -> None:
        user = await self.store.get_user(user_id) if self.is_local(user_id) else None
        if user is None or user.deactivated:
            raise not_found("Profile not found")

    def is_local(self, user_id: str) -> bool:
        return user_id.startswith("@") and user_id.endswith(":" + self.server_name)

    async def get_profile(self, user_id: str) -> dict[str, Any]:
        if not self.is_local(user_id) and self.remote is not None:
            return await self.remote(user_id, None)
        await self._existing_local_user(user_id)
        return await self.store.get_profile(user_id)

    async def get_field(self, user_id: str, field: str) -> dict[str, Any]:
        if not self.is_local(user_id) and self.remote is not None:
            profile = await self.remote(user_id, field)
        else:
            profile = await self.get_profile(user_id)
        if field not in profile:
            raise not_found(f"Profile field {field} not set")
        return {field: profile[field]}

    async def set_field(self, requester_id: str, user_id: str, field: str, value: Any) -> None:
        """Validate and store one field; an empty displayname/avatar_url clears it."""
        if requester_id != user_id:
            raise forbidden("You may only change your own profile")
        await self._existing_local_user(user_id)
        if len(field.encode()) > MAX_KEY_BYTES:
            raise MatrixError(400, "M_KEY_TOO_LARGE",
                              f"Profile key may not exceed {MAX_KEY_BYTES} bytes")
        if field in _STRING_FIELDS:
            if not isinstance(value, str):
                raise MatrixError(400, "M_BAD_JSON", f"'{field}' must be a string")
            if len(value) > _STRING_FIELDS[field]:
                raise MatrixError(400, "M_INVALID_PARAM",
                                  f"'{field}' is too long (max {_STRING_FIELDS[field]})")
            if value == "":
                await self.store.delete_profile_field(user_id, field)
                return
        profile = await self.store.get_profile(user_id)
        profile[field] = value
        if len(orjson.dumps(profile)) > MAX_PROFILE_BYTES:
            raise MatrixError(400, "M_PROFILE_TOO_LARGE",
                              f"Profile may not exceed {MAX_PROFILE_BYTES} bytes")
        await self.store.set_profile_field(user_id, field, value)

    async def delete_field(self, requester_id: str, user_id: str, field: str) -> None:
        if requester_id != user_id:
            raise forbidden("You may only change your own profile")
        await self._existing_local_user(user_id)
        await self.store.delete_profile_field(user_id, field)
