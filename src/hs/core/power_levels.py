"""Reading power levels out of room state, per room version.

Auth rules, state resolution (ordering events by their sender's power) and the client
API all ask "how powerful is this user?" and "what level does this action need?"; this
module is the one place that answers, so the room-version quirks live here:

* v1-v5 accept power level values as floats (truncated) and as strings holding
  integers; v6-v9 accept strings; v10+ accept only integers (spec, rooms/v1
  "m.room.power_levels events accept values as strings/floats", rooms/v10).
* Without an ``m.room.power_levels`` event the creator has 100 and everyone else 0
  (v1-v11); in v12 the creators (create ``sender`` + ``additional_creators``) have
  infinite power whether or not there is a power levels event.

Readers here are deliberately lenient: a value that is not a valid level reads as the
default. Whether an event carrying such a value may enter the room at all is the auth
rules' decision (``is_valid_power_level``), made once when the event is authorized.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from hs.core.pdu import PDU, StateKey
from hs.core.room_versions import RoomVersion

__all__ = [
    "CREATOR_DEFAULT_LEVEL",
    "DEFAULT_LEVELS",
    "INFINITE_POWER",
    "AuthEvents",
    "get_event_power_level",
    "get_named_level",
    "get_notification_level",
    "get_power_levels_content",
    "get_room_creators",
    "get_user_power_level",
    "is_valid_power_level",
    "parse_power_level",
    "user_power_level",
]

#: State the auth rules look at, keyed by (type, state_key).
AuthEvents = Mapping[StateKey, PDU]

#: v12 room creators outrank everyone (spec, rooms/v12 "Authorisation rules" note).
INFINITE_POWER: float = math.inf

#: v1-v11, no power levels event: the creator's level (client-server m.room.power_levels).
CREATOR_DEFAULT_LEVEL = 100

#: Defaults of the named levels when the key (or the whole event) is absent.
DEFAULT_LEVELS: Mapping[str, int] = {
    "ban": 50,
    "kick": 50,
    "redact": 50,
    "invite": 0,
    "events_default": 0,
    "state_default": 50,
    "users_default": 0,
}

# rooms/v1 "accept values as strings": optional surrounding whitespace, one optional sign,
# base-10 digits with any leading zeroes. ASCII only: int() alone would also take "1_0"
# and non-ASCII digits.
_STRINGY_INT = re.compile(r"[ \t\n\r\f\v]*[+-]?[0-9]+[ \t\n\r\f\v]*", re.ASCII)


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


def is_valid_power_level(value: object, room_version: RoomVersion) -> bool:
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


def get_named_level(name: str, pl_content: Mapping[str, Any] | None, default: int) -> int:
    """A top-level level (``ban``, ``kick``, ``invite``...) or ``default``."""
    if pl_content is None:
        return default
    level = parse_power_level(pl_content.get(name))
    return default if level is None else level


def _sub_level(pl_content: Mapping[str, Any] | None, mapping: str, key: str) -> int | None:
    if pl_content is None:
        return None
    table = pl_content.get(mapping)
    if not isinstance(table, dict):
        return None
    return parse_power_level(table.get(key))


def get_event_power_level(
    event_type: str, state_key: str | None, pl_content: Mapping[str, Any] | None
) -> int:
    """The *required power level* for sending an event (server-server "Definitions").

    ``events[event_type]`` if listed, else ``state_default`` for state events (any
    ``state_key``, even empty) or ``events_default`` for the rest.
    """
    level = _sub_level(pl_content, "events", event_type)
    if level is not None:
        return level
    if state_key is not None:
        return get_named_level("state_default", pl_content, DEFAULT_LEVELS["state_default"])
    return get_named_level("events_default", pl_content, DEFAULT_LEVELS["events_default"])


def get_notification_level(key: str, pl_content: Mapping[str, Any] | None) -> int:
    """The level needed to trigger notification ``key`` (``room`` defaults to 50)."""
    level = _sub_level(pl_content, "notifications", key)
    return 50 if level is None else level


def get_room_creators(create_event: PDU) -> frozenset[str]:
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


def get_power_levels_content(auth_events: AuthEvents) -> Mapping[str, Any] | None:
    """The current power levels content, or None if the room has no such event."""
    pl_event = auth_events.get(("m.room.power_levels", ""))
    return None if pl_event is None else pl_event.content


def user_power_level(user_id: str, create_event: PDU | None, pl_event: PDU | None) -> int | float:
    """A user's level given the create and power levels events (either may be missing).

    State resolution uses this when it has the two events at hand rather than a map.
    """
    if create_event is not None:
        if create_event.room_version.privileged_creators:
            if user_id in get_room_creators(create_event):
                return INFINITE_POWER
        elif pl_event is None and user_id in get_room_creators(create_event):
            return CREATOR_DEFAULT_LEVEL
    if pl_event is None:
        return DEFAULT_LEVELS["users_default"]
    level = _sub_level(pl_event.content, "users", user_id)
    if level is not None:
        return level
    return get_named_level("users_default", pl_event.content, DEFAULT_LEVELS["users_default"])


def get_user_power_level(user_id: str, auth_events: AuthEvents) -> int | float:
    """A user's level in the given state; ``float('inf')`` for v12 creators.

    For v12 the map must hold the create event even though v12 events do not cite it.
    """
    return user_power_level(
        user_id,
        auth_events.get(("m.room.create", "")),
        auth_events.get(("m.room.power_levels", "")),
    )
