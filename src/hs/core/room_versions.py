"""Room versions 1 to 12 as data.

Each room version is a bundle of algorithm choices (spec, "Room Versions"). Code asks a
``RoomVersion`` for a feature flag instead of comparing version strings, so that adding a
version is adding a row here. The flags are named after the behaviour they switch on; the
comment on each says in which version it first appears.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "DEFAULT_ROOM_VERSION",
    "KNOWN_ROOM_VERSIONS",
    "EventFormat",
    "RedactionRules",
    "RoomVersion",
    "StateResAlgorithm",
    "UnsupportedRoomVersionError",
    "get_room_version",
]


class EventFormat(enum.Enum):
    #: v1, v2: ``event_id`` is ``$opaque:origin`` and part of the event; prev/auth events are
    #: ``[event_id, {hashes}]`` pairs.
    V1 = 1
    #: v3: event IDs are ``$`` + standard unpadded base64 of the reference hash; plain ID lists.
    V2 = 2
    #: v4+: as V2 but with the URL-safe base64 alphabet.
    V3 = 3


class StateResAlgorithm(enum.Enum):
    V1 = "v1"
    V2 = "v2"
    #: v12: state resolution v2.1 (start from an empty set, creators' power, MSC4297).
    V2_1 = "v2.1"


class RedactionRules(enum.IntEnum):
    """Which redaction algorithm applies; each later rule set builds on the previous."""

    V1 = 1  # m.room.aliases keeps ``aliases``
    V6 = 6  # m.room.aliases loses its special case
    V8 = 8  # m.room.join_rules keeps ``allow``
    V9 = 9  # m.room.member keeps ``join_authorised_via_users_server``
    V11 = 11  # origin/membership/prev_state unprotected; create keeps all content; ...


@dataclass(frozen=True, slots=True)
class RoomVersion:
    identifier: str
    event_format: EventFormat
    state_res: StateResAlgorithm
    redaction_rules: RedactionRules
    #: v5: a signature only counts if the key was valid at the event's origin_server_ts.
    enforce_key_validity: bool
    #: v1-v5: m.room.aliases has its own auth rule (sender's domain must match state_key).
    special_case_aliases_auth: bool
    #: v6: integers outside the canonical range and non-canonical JSON are rejected.
    strict_canonical_json: bool
    #: v6: changes to ``notifications`` in power levels are checked like other keys.
    limit_notifications_power_levels: bool
    #: v7: the ``knock`` membership and join rule.
    knock: bool
    #: v8: the ``restricted`` join rule (joins authorised via another room's membership).
    restricted_join_rule: bool
    #: v10: the ``knock_restricted`` join rule.
    knock_restricted_join_rule: bool
    #: v10: power level values must be integers, not strings holding integers.
    integer_power_levels: bool
    #: v11: the room creator is the create event's ``sender``; ``content.creator`` is gone.
    implicit_room_creator: bool
    #: v11: ``m.room.redaction`` carries ``redacts`` under ``content``.
    redacts_in_content: bool
    #: v12: the room ID is ``!`` + URL-safe hash of the create event (no domain), and the
    #: create event is not listed in ``auth_events``.
    room_id_from_create_event: bool
    #: v12: creators (sender + ``additional_creators``) have infinite power.
    privileged_creators: bool
    stable: bool = True

    def __str__(self) -> str:
        return self.identifier

    @property
    def event_id_has_domain(self) -> bool:
        return self.event_format is EventFormat.V1


def _v(identifier: str, base: RoomVersion | None = None, **changes: object) -> RoomVersion:
    if base is None:
        return RoomVersion(identifier=identifier, **changes)  # type: ignore[arg-type]
    fields = {f: getattr(base, f) for f in RoomVersion.__dataclass_fields__}
    fields.update(changes, identifier=identifier)
    return RoomVersion(**fields)  # type: ignore[arg-type]


V1 = _v(
    "1",
    event_format=EventFormat.V1,
    state_res=StateResAlgorithm.V1,
    redaction_rules=RedactionRules.V1,
    enforce_key_validity=False,
    special_case_aliases_auth=True,
    strict_canonical_json=False,
    limit_notifications_power_levels=False,
    knock=False,
    restricted_join_rule=False,
    knock_restricted_join_rule=False,
    integer_power_levels=False,
    implicit_room_creator=False,
    redacts_in_content=False,
    room_id_from_create_event=False,
    privileged_creators=False,
)
V2 = _v("2", V1, state_res=StateResAlgorithm.V2)
V3 = _v("3", V2, event_format=EventFormat.V2)
V4 = _v("4", V3, event_format=EventFormat.V3)
V5 = _v("5", V4, enforce_key_validity=True)
V6 = _v(
    "6",
    V5,
    redaction_rules=RedactionRules.V6,
    special_case_aliases_auth=False,
    strict_canonical_json=True,
    limit_notifications_power_levels=True,
)
V7 = _v("7", V6, knock=True)
V8 = _v("8", V7, restricted_join_rule=True, redaction_rules=RedactionRules.V8)
V9 = _v("9", V8, redaction_rules=RedactionRules.V9)
V10 = _v("10", V9, knock_restricted_join_rule=True, integer_power_levels=True)
V11 = _v(
    "11",
    V10,
    redaction_rules=RedactionRules.V11,
    implicit_room_creator=True,
    redacts_in_content=True,
)
V12 = _v(
    "12",
    V11,
    state_res=StateResAlgorithm.V2_1,
    room_id_from_create_event=True,
    privileged_creators=True,
)

KNOWN_ROOM_VERSIONS: dict[str, RoomVersion] = {
    v.identifier: v for v in (V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12)
}

#: The spec recommends v12 for new rooms; the server's config may choose another.
DEFAULT_ROOM_VERSION = V12


class UnsupportedRoomVersionError(ValueError):
    """Carries the spec's ``M_UNSUPPORTED_ROOM_VERSION`` meaning."""


def get_room_version(identifier: str | RoomVersion) -> RoomVersion:
    """Look up a room version by identifier; raises ``UnsupportedRoomVersionError``."""
    if isinstance(identifier, RoomVersion):
        return identifier
    try:
        return KNOWN_ROOM_VERSIONS[identifier]
    except (KeyError, TypeError):
        raise UnsupportedRoomVersionError(f"unsupported room version {identifier!r}") from None
