"""Pure-Python twin of ``_power_levels_c``: reading power levels and the power-levels rule.

The auth rules ask "how powerful is this user?" for nearly every event, and rule 10 of
rooms/v12.md (``m.room.power_levels``) validates and compares whole ``users`` tables; this
module holds those loops so the Cython twin can run them at C speed. The readers live in
``hs.core.power_levels`` and the rule in ``hs.core.auth.power_level_event``, which call in
here. Nothing here imports from ``hs.core``: room versions and PDUs are only read through
their attributes (``integer_power_levels``, ``content``, ``sender``, ...).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "NAMED_LEVELS",
    "is_valid_power_level",
    "is_valid_server_name",
    "is_valid_user_id",
    "parse_power_level",
    "power_levels_violation",
    "room_creators",
    "user_level",
]

#: v12 room creators outrank everyone (spec, rooms/v12 "Authorisation rules" note).
INFINITE_POWER: float = math.inf
#: v1-v11, no power levels event: the creator's level (client-server m.room.power_levels).
CREATOR_DEFAULT_LEVEL = 100

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

# rooms/v1 "accept values as strings": optional surrounding whitespace, one optional sign,
# base-10 digits with any leading zeroes. ASCII only: int() alone would also take "1_0"
# and non-ASCII digits.
_STRINGY_INT = re.compile(r"[ \t\n\r\f\v]*[+-]?[0-9]+[ \t\n\r\f\v]*", re.ASCII)

# appendices "Server Name": IPv4 / "[" IPv6 "]" / DNS name, then an optional port.
_SERVER_NAME = re.compile(
    r"(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,255})(?::[0-9]{1,5})?", re.ASCII
)
_MAX_USER_ID_BYTES = 255


# ---- identifiers ------------------------------------------------------------------------


def is_valid_server_name(name: str) -> bool:
    return _SERVER_NAME.fullmatch(name) is not None


def is_valid_user_id(value: object) -> bool:
    """``@localpart:server_name`` under the historical (lenient) localpart grammar."""
    if not isinstance(value, str) or not value.startswith("@"):
        return False
    try:
        if len(value.encode("utf-8")) > _MAX_USER_ID_BYTES:
            return False
    except UnicodeEncodeError:  # lone surrogates are not code points a user ID may hold
        return False
    localpart, sep, server_name = value[1:].partition(":")
    if not sep or "\x00" in localpart:
        return False
    return is_valid_server_name(server_name)


# ---- levels -----------------------------------------------------------------------------


def parse_power_level(value: object) -> int | None:
    """Read a level in any form some room version allows; None if it is not a level.

    Booleans are JSON ``true``/``false``, not numbers, so they are not levels.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value) if _STRINGY_INT.fullmatch(value) else None
    if isinstance(value, float):
        # rooms/v1 "accept values as floats": truncate; non-finite values are invalid.
        return int(value) if math.isfinite(value) else None
    return None


def is_valid_power_level(value: object, room_version: Any) -> bool:
    """Whether ``value`` may appear as a level in a power levels event of this version."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if room_version.integer_power_levels:
        return False
    if isinstance(value, str):
        return _STRINGY_INT.fullmatch(value) is not None
    if isinstance(value, float):
        # Floats only exist before canonical JSON was enforced (v6).
        return not room_version.strict_canonical_json and math.isfinite(value)
    return False


def room_creators(create_event: Any) -> frozenset[str]:
    """The room's creators as the create event's room version defines them.

    v1-v10: ``content.creator``; v11: the ``sender``; v12: the ``sender`` plus any
    ``additional_creators`` (non-strings are ignored here; auth rejects such creates).
    """
    room_version = create_event.room_version
    content = create_event.content
    if not room_version.implicit_room_creator:
        creator = content.get("creator")
        return frozenset((creator,)) if isinstance(creator, str) else frozenset()
    creators = {create_event.sender}
    if room_version.privileged_creators:
        extra = content.get("additional_creators")
        if isinstance(extra, list):
            creators.update(u for u in extra if isinstance(u, str))
    return frozenset(creators)


def _sub_level(pl_content: Mapping[str, Any] | None, mapping: str, key: str) -> int | None:
    if pl_content is None:
        return None
    table = pl_content.get(mapping)
    if not isinstance(table, dict):
        return None
    return parse_power_level(table.get(key))


def user_level(user_id: str, create_event: Any, pl_event: Any) -> int | float:
    """A user's level given the create and power levels events (either may be None)."""
    if create_event is not None:
        if create_event.room_version.privileged_creators:
            if user_id in room_creators(create_event):
                return INFINITE_POWER
        elif pl_event is None and user_id in room_creators(create_event):
            return CREATOR_DEFAULT_LEVEL
    if pl_event is None:
        return 0
    level = _sub_level(pl_event.content, "users", user_id)
    if level is not None:
        return level
    level = parse_power_level(pl_event.content.get("users_default"))
    return 0 if level is None else level


# ---- rule 10: m.room.power_levels ---------------------------------------------------------


def power_levels_violation(
    content: Mapping[str, Any],
    old: Mapping[str, Any] | None,
    sender: str,
    sender_level: int | float,
    room_version: Any,
    creators: frozenset[str],
) -> str | None:
    """Rule 10 (rooms/v12.md numbering) for new levels ``content``: the reason for the
    first violation found, or None if the event is allowed.

    ``old`` is the current power levels content (None: no power levels event yet, 10.5);
    ``creators`` is only consulted when the room version has privileged creators (10.4).
    Tables are compared in a fixed order: the old table's keys, then the added ones.
    """
    reason = _shape_violation(content, room_version)
    if reason is not None:
        return reason
    # 10.4 (v12): creators have infinite power and cannot be listed.
    if room_version.privileged_creators:
        users = content.get("users", {})
        listed = creators.intersection(users)
        if listed:
            return f"power levels may not list room creators: {sorted(listed)}"
    # 10.5
    if old is None:
        return None

    # 10.6: added, changed or removed top-level levels.
    for name in NAMED_LEVELS:
        before, after = parse_power_level(old.get(name)), parse_power_level(content.get(name))
        if before == after:
            continue
        if before is not None and before > sender_level:
            return f"cannot change {name}: its current level is above yours"
        if after is not None and after > sender_level:
            return f"cannot set {name} above your own level"

    # 10.7 / 10.8: events (and notifications from v6).
    tables = (
        ("events", "notifications")
        if room_version.limit_notifications_power_levels
        else ("events",)
    )
    for table in tables:
        for key, before, after in _changes(old, content, table):
            if before is not None and before > sender_level:
                return f"cannot change {table}[{key!r}]: current level above yours"
            if after is not None and after > sender_level:
                return f"cannot set {table}[{key!r}] above your own level"

    # 10.9 / 10.10: users.
    for user_id, before, after in _changes(old, content, "users"):
        if user_id != sender and before is not None and before >= sender_level:
            return f"cannot change the level of {user_id}, who is not below you"
        if after is not None and after > sender_level:
            return f"cannot raise {user_id} above your own level"
    # 10.11: allow.
    return None


def _shape_violation(content: Mapping[str, Any], room_version: Any) -> str | None:
    if room_version.integer_power_levels:
        # 10.1 (v10+)
        for name in NAMED_LEVELS:
            if name in content and not is_valid_power_level(content[name], room_version):
                return f"power level {name!r} is not an integer"
        # 10.2 (v10+)
        for table in ("events", "notifications"):
            if table in content and not _is_level_table(content[table], room_version):
                return f"power levels {table!r} is not an object of integers"
    elif not room_version.strict_canonical_json and not all(map(_finite, _all_values(content))):
        # v1-v5 "accept values as floats": a non-finite value rejects the event.
        return "power levels hold a non-finite number"
    # 10.3: users maps valid user IDs to levels (stringy levels allowed before v10).
    users = content.get("users", {})
    if not isinstance(users, dict) or not _is_level_table(users, room_version):
        return "power levels 'users' is not an object of user IDs to levels"
    if not all(is_valid_user_id(user_id) for user_id in users):
        return "power levels 'users' has a key that is not a user ID"
    return None


def _is_level_table(value: object, room_version: Any) -> bool:
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


def _table(content: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    table = content.get(name)
    return table if isinstance(table, dict) else {}


def _changes(
    old: Mapping[str, Any], new: Mapping[str, Any], name: str
) -> Iterator[tuple[str, int | None, int | None]]:
    """(key, old level, new level) for every entry added, changed or removed: the old
    table's keys in order, then the keys only the new one has."""
    before, after = _table(old, name), _table(new, name)
    for key in before:
        old_level, new_level = parse_power_level(before[key]), parse_power_level(after.get(key))
        if old_level != new_level:
            yield key, old_level, new_level
    for key in after:
        if key not in before:
            new_level = parse_power_level(after[key])
            if new_level is not None:
                yield key, None, new_level
