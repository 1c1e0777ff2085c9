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
from collections.abc import Mapping
from typing import Any

from hs._native import power_levels as _levels

# Moved to the pure twin of hs._native.power_levels (which the auth rules call in hot
# paths); these module-level readers keep using it, whichever twin is selected.
from hs._native._power_levels_py import (
    is_valid_power_level,
    parse_power_level,
)
from hs._native._power_levels_py import (
    room_creators as get_room_creators,
)
from hs.core.pdu import PDU, StateKey

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


def get_power_levels_content(auth_events: AuthEvents) -> Mapping[str, Any] | None:
    """The current power levels content, or None if the room has no such event."""
    pl_event = auth_events.get(("m.room.power_levels", ""))
    return None if pl_event is None else pl_event.content


def user_power_level(user_id: str, create_event: PDU | None, pl_event: PDU | None) -> int | float:
    """A user's level given the create and power levels events (either may be missing).

    State resolution uses this when it has the two events at hand rather than a map.
    (The selected ``hs._native.power_levels`` twin does the work.)
    """
    return _levels.user_level(user_id, create_event, pl_event)


def get_user_power_level(user_id: str, auth_events: AuthEvents) -> int | float:
    """A user's level in the given state; ``float('inf')`` for v12 creators.

    For v12 the map must hold the create event even though v12 events do not cite it.
    """
    return user_power_level(
        user_id,
        auth_events.get(("m.room.create", "")),
        auth_events.get(("m.room.power_levels", "")),
    )
