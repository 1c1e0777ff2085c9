"""Client config (spec "Client Config") and room tags (spec "Room Tagging").

Account data is stored by ``AccountDataStore`` on the ``account_data`` stream; this layer
checks who may write what, wakes the user's long-polling ``/sync`` requests after a write,
and keeps tags as the room account data event ``m.tag`` (``{"tags": {tag: {...}}}``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from hs.http.errors import MatrixError, bad_json, forbidden, invalid_param, not_found
from hs.notifier import Notifier
from hs.storage.account_data import AccountDataStore

JsonDict = dict[str, Any]
TAG = "m.tag"
STREAM = "account_data"
#: Types the server manages: clients get 405 M_BAD_JSON when setting them, globally or per
#: room (spec "Client Config", Server Behaviour; m.push_rules since v1.10).
SERVER_MANAGED = frozenset({"m.fully_read", "m.push_rules"})
#: Longest account data type / tag name accepted (Synapse limits event types to 255).
MAX_NAME = 255


def _check_name(value: str, what: str) -> None:
    if not value or len(value.encode()) > MAX_NAME:
        raise invalid_param(f"{what} must be 1-{MAX_NAME} bytes")


class AccountDataHandler:
    def __init__(self, store: AccountDataStore, notifier: Notifier) -> None:
        self.store = store
        self.notifier = notifier
        #: Tag edits read, change and rewrite ``m.tag``: serialised so two concurrent
        #: edits cannot lose one another (tag writes are rare; one lock is enough).
        self._tag_lock = asyncio.Lock()

    @staticmethod
    def _own(requester: str, user_id: str, action: str) -> None:
        if requester != user_id:
            raise forbidden(f"Cannot {action} account data for other users.")

    @staticmethod
    def _check_writable(data_type: str) -> None:
        _check_name(data_type, "type")
        if data_type in SERVER_MANAGED:
            raise MatrixError(405, "M_BAD_JSON", f"Cannot set {data_type} through this API.")

    @staticmethod
    def _check_room(room_id: str) -> None:
        # v12 room IDs are "!" plus a hash with no server part.
        if not room_id.startswith("!") or len(room_id) < 2 or len(room_id.encode()) > 255:
            raise invalid_param(f"{room_id!r} is not a valid room ID")

    def _written(self, user_id: str, pos: int) -> None:
        self.notifier.notify(STREAM, pos, users=[user_id])

    # -- global -----------------------------------------------------------------------------

    async def set_global(self, requester: str, user_id: str, data_type: str,
                         content: JsonDict) -> None:
        self._own(requester, user_id, "add")
        self._check_writable(data_type)
        self._written(user_id, await self.store.set_global_account_data(
            user_id, data_type, content))

    async def get_global(self, requester: str, user_id: str, data_type: str) -> JsonDict:
        self._own(requester, user_id, "get")
        found = await self.store.get_global_account_data(user_id, data_type)
        if found is None:
            raise not_found("Account data not found")
        return found

    # -- per room ---------------------------------------------------------------------------

    async def set_room(self, requester: str, user_id: str, room_id: str, data_type: str,
                       content: JsonDict) -> None:
        self._own(requester, user_id, "add")
        self._check_room(room_id)
        self._check_writable(data_type)
        self._written(user_id, await self.store.set_room_account_data(
            user_id, room_id, data_type, content))

    async def get_room(self, requester: str, user_id: str, room_id: str,
                       data_type: str) -> JsonDict:
        self._own(requester, user_id, "get")
        self._check_room(room_id)
        found = await self.store.get_room_account_data(user_id, room_id, data_type)
        if found is None:
            raise not_found("Room account data not found")
        return found

    # -- tags -------------------------------------------------------------------------------

    async def get_tags(self, requester: str, user_id: str, room_id: str) -> JsonDict:
        """``{"tags": {...}}``; an untagged room has ``{"tags": {}}`` (not 404)."""
        self._own(requester, user_id, "get")
        self._check_room(room_id)
        return {"tags": await self._tags(user_id, room_id)}

    async def _tags(self, user_id: str, room_id: str) -> dict[str, JsonDict]:
        found = await self.store.get_room_account_data(user_id, room_id, TAG)
        tags = found.get("tags") if isinstance(found, dict) else None
        return dict(tags) if isinstance(tags, dict) else {}

    async def put_tag(self, requester: str, user_id: str, room_id: str, tag: str,
                      body: JsonDict) -> None:
        """Add or replace a tag. ``order``, when given, must be a number in [0, 1]
        (spec "Room Tagging": "a number between 0 and 1 to indicate ordering")."""
        self._own(requester, user_id, "add")
        self._check_room(room_id)
        _check_name(tag, "tag")
        order = body.get("order")
        if order is not None and (isinstance(order, bool) or not isinstance(order, int | float)
                                  or not 0 <= order <= 1):
            raise bad_json("'order' must be a number between 0 and 1")
        async with self._tag_lock:
            tags = await self._tags(user_id, room_id)
            tags[tag] = body
            pos = await self.store.set_room_account_data(user_id, room_id, TAG, {"tags": tags})
        self._written(user_id, pos)

    async def delete_tag(self, requester: str, user_id: str, room_id: str, tag: str) -> None:
        """Remove a tag; removing an absent tag succeeds (idempotent, as Synapse does)."""
        self._own(requester, user_id, "delete")
        self._check_room(room_id)
        async with self._tag_lock:
            tags = await self._tags(user_id, room_id)
            if tags.pop(tag, None) is None:
                return
            pos = await self.store.set_room_account_data(user_id, room_id, TAG, {"tags": tags})
        self._written(user_id, pos)


__all__ = ["SERVER_MANAGED", "TAG", "AccountDataHandler"]
