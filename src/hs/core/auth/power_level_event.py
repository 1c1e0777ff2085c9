"""Auth rule for ``m.room.power_levels`` events (rule 10 of rooms/v12.md).

Comments cite rooms/v12.md's sub-rule numbers (10.x). v1-v9 lack 10.1, 10.2 and 10.4,
so their 10.3 is numbered 10.1 there and so on; v1-v5 also do not check
``notifications`` (10.7/10.8 only look at ``events``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from hs.core.auth.errors import AuthError
from hs.core.auth.identifiers import is_valid_user_id
from hs.core.auth.state import AuthState
from hs.core.pdu import PDU
from hs.core.power_levels import is_valid_power_level, parse_power_level
from hs.core.room_versions import RoomVersion

__all__ = ["check_power_levels_event"]

#: Top-level levels (rule 10.6 "For the properties users_default, ... invite").
NAMED_LEVELS = (
    "users_default",
    "events_default",
    "state_default",
    "ban",
    "redact",
    "kick",
    "invite",
)


def check_power_levels_event(event: PDU, state: AuthState) -> None:
    """Return if the new power levels are allowed, raise ``AuthError`` if not."""
    room_version = event.room_version
    content = event.content
    _check_shape(content, room_version)
    # 10.4 (v12): creators have infinite power and cannot be listed.
    if room_version.privileged_creators:
        users = content.get("users", {})
        listed = state.creators().intersection(users)
        if listed:
            raise AuthError(f"power levels may not list room creators: {sorted(listed)}")
    # 10.5
    if state.power_levels is None:
        return
    old = state.power_levels.content
    sender = event.sender
    sender_level = state.user_level(sender)

    # 10.6: added, changed or removed top-level levels.
    for name in NAMED_LEVELS:
        before, after = _level(old, name), _level(content, name)
        if before == after:
            continue
        if before is not None and before > sender_level:
            raise AuthError(f"cannot change {name}: its current level is above yours")
        if after is not None and after > sender_level:
            raise AuthError(f"cannot set {name} above your own level")

    # 10.7 / 10.8: events (and notifications from v6).
    tables = (
        ("events", "notifications")
        if room_version.limit_notifications_power_levels
        else ("events",)
    )
    for table in tables:
        for key, before, after in _changes(old, content, table):
            if before is not None and before > sender_level:
                raise AuthError(f"cannot change {table}[{key!r}]: current level above yours")
            if after is not None and after > sender_level:
                raise AuthError(f"cannot set {table}[{key!r}] above your own level")

    # 10.9 / 10.10: users.
    for user_id, before, after in _changes(old, content, "users"):
        if user_id != sender and before is not None and before >= sender_level:
            raise AuthError(f"cannot change the level of {user_id}, who is not below you")
        if after is not None and after > sender_level:
            raise AuthError(f"cannot raise {user_id} above your own level")
    # 10.11: allow.


def _check_shape(content: Mapping[str, Any], room_version: RoomVersion) -> None:
    if room_version.integer_power_levels:
        # 10.1 (v10+)
        for name in NAMED_LEVELS:
            if name in content and not is_valid_power_level(content[name], room_version):
                raise AuthError(f"power level {name!r} is not an integer")
        # 10.2 (v10+)
        for table in ("events", "notifications"):
            if table in content and not _is_level_table(content[table], room_version):
                raise AuthError(f"power levels {table!r} is not an object of integers")
    elif not room_version.strict_canonical_json and not all(map(_finite, _all_values(content))):
        # v1-v5 "accept values as floats": a non-finite value rejects the event.
        raise AuthError("power levels hold a non-finite number")
    # 10.3: users maps valid user IDs to levels (stringy levels allowed before v10).
    users = content.get("users", {})
    if not isinstance(users, dict) or not _is_level_table(users, room_version):
        raise AuthError("power levels 'users' is not an object of user IDs to levels")
    if not all(is_valid_user_id(user_id) for user_id in users):
        raise AuthError("power levels 'users' has a key that is not a user ID")


def _is_level_table(value: object, room_version: RoomVersion) -> bool:
    return isinstance(value, dict) and all(
        is_valid_power_level(v, room_version) for v in value.values()
    )


def _finite(value: object) -> bool:
    return not isinstance(value, float) or math.isfinite(value)


def _all_values(content: Mapping[str, Any]) -> Iterator[object]:
    for value in content.values():
        if isinstance(value, dict):
            yield from value.values()
        else:
            yield value


def _level(content: Mapping[str, Any], name: str) -> int | None:
    return parse_power_level(content.get(name))


def _table(content: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    table = content.get(name)
    return table if isinstance(table, dict) else {}


def _changes(
    old: Mapping[str, Any], new: Mapping[str, Any], name: str
) -> Iterator[tuple[str, int | None, int | None]]:
    """(key, old level, new level) for every entry added, changed or removed."""
    before, after = _table(old, name), _table(new, name)
    for key in before.keys() | after.keys():
        old_level, new_level = parse_power_level(before.get(key)), parse_power_level(after.get(key))
        if old_level != new_level:
            yield key, old_level, new_level
