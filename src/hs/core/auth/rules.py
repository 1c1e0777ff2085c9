"""``check_auth_rules``: the authorisation rules of room versions 1 to 12, in spec order.

Rule numbers in comments are those of rooms/v12.md, which has every rule but two:

====================  =======  =======  ========
rule                  v1-v5    v6-v11   v12
====================  =======  =======  ========
create                1        1        1
room ID is create's   -        -        2
auth_events list      2        2        3
m.federate            3        3        4
m.room.aliases        4        -        -
m.room.member         5        4        5
sender joined         6        5        6
third-party invite    7        6        7
required level        8        7        8
@-state_key           9        8        9
power levels          10       9        10
redaction (v1-v2)     11       -        -
====================  =======  =======  ========
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType

from hs.core.auth.errors import AuthError
from hs.core.auth.identifiers import domain_of, is_valid_user_id
from hs.core.auth.membership import check_membership_event
from hs.core.auth.power_level_event import check_power_levels_event
from hs.core.auth.selection import CREATE, auth_types_for_event, select_cited_auth_events
from hs.core.auth.state import AuthState
from hs.core.pdu import PDU, StateKey
from hs.core.room_versions import KNOWN_ROOM_VERSIONS, EventFormat

__all__ = ["check_auth_rules"]


def check_auth_rules(
    event: PDU,
    auth_events: Mapping[StateKey, PDU],
    *,
    check_auth_event_selection: bool = True,
    levels: ModuleType | None = None,
) -> None:
    """Raise ``AuthError`` unless ``event`` is allowed against ``auth_events``.

    ``auth_events`` is the state to authorize against, keyed by (type, state_key); for
    v12 it must include the create event, which v12 events do not cite. With
    ``check_auth_event_selection`` (checking an event against its own auth events) it
    must hold exactly the cited events, and the "auth_events list" rules are applied:
    no duplicates, nothing the selection algorithm would not pick, nothing rejected.
    Pass False when checking against other state (the state before the event, the
    current state, or state resolution's partial state); then only the entries the
    selection algorithm names for this event are consulted.

    ``levels`` names the ``hs._native.power_levels`` twin to read levels with (default:
    the selector's choice); state resolution passes the one paired with its sorts.
    """
    room_version = event.room_version

    # 1: the create event stands alone.
    if event.type == "m.room.create":
        _check_create(event)
        return

    room_id = event.data.get("room_id")
    if room_version.room_id_from_create_event:
        # 2 (v12): the room ID is the ID of an accepted create event, with sigil "!".
        v12_create = auth_events.get(CREATE)
        if v12_create is None or v12_create.rejected_reason is not None:
            raise AuthError("no accepted m.room.create event for this room")
        if room_id != "!" + v12_create.event_id[1:]:
            raise AuthError("room ID does not match the create event's ID")

    if check_auth_event_selection:
        # 3.1-3.3 (2.1-2.3 before v12)
        auth_events = select_cited_auth_events(event, auth_events)
    else:
        # Only the selected keys matter to the rules; narrowing a full state map keeps
        # the room ID check below from walking every member of a large room.
        auth_events = _relevant_state(event, auth_events)

    # 2.4 (v1-v11; v12 checked it as rule 2)
    create = auth_events.get(CREATE)
    if create is None:
        raise AuthError("no m.room.create event in auth events")

    # 3.5 (2.5 before v12): every auth event is from this room. The v12 create event has
    # no room_id; rule 2 above tied it to the room.
    for key, pdu in auth_events.items():
        if key == CREATE and room_version.room_id_from_create_event:
            continue
        if pdu.data.get("room_id") != room_id:
            raise AuthError(f"auth event {pdu.event_id} is from another room")

    # 4 (3 before v12): a non-federating room only takes events from its creator's server.
    if create.content.get("m.federate") is False and (
        domain_of(event.sender) != domain_of(create.sender)
    ):
        raise AuthError("this room does not federate")

    # 4 in v1-v5: m.room.aliases is authorized by its state_key (a server name) alone.
    if event.type == "m.room.aliases" and room_version.special_case_aliases_auth:
        if event.state_key is None:
            raise AuthError("m.room.aliases without a state_key")
        if event.state_key != domain_of(event.sender):
            raise AuthError("m.room.aliases state_key is not the sender's server")
        return

    state = AuthState(auth_events, levels)

    # 5: membership changes have their own rules and end there.
    if event.type == "m.room.member":
        check_membership_event(event, state)
        return

    # 6
    if state.membership(event.sender) != "join":
        raise AuthError("sender is not in the room")

    # 7
    if event.type == "m.room.third_party_invite":
        if state.user_level(event.sender) < state.named_level("invite"):
            raise AuthError("sender's power level is below the invite level")
        return

    # 8
    if state.required_level(event) > state.user_level(event.sender):
        raise AuthError(f"sender's power level is too low to send {event.type}")

    # 9: only the user themself may set state keyed by their user ID.
    state_key = event.state_key
    if isinstance(state_key, str) and state_key.startswith("@") and state_key != event.sender:
        raise AuthError("state_key is another user's ID")

    # 10
    if event.type == "m.room.power_levels":
        check_power_levels_event(event, state)
        return

    # 11 in v1-v2 only: from v3 the redact level is for the redaction *algorithm*, not
    # for auth (rooms/v3 "Authorisation rules" note).
    if event.type == "m.room.redaction" and room_version.event_format is EventFormat.V1:
        _check_v1_redaction(event, state)

    # 11: otherwise, allow.


def _relevant_state(event: PDU, state: Mapping[StateKey, PDU]) -> dict[StateKey, PDU]:
    keys = auth_types_for_event(
        event.type, event.sender, event.state_key, event.content, event.room_version
    )
    keys.append(CREATE)
    return {key: state[key] for key in keys if key in state}


def _check_create(event: PDU) -> None:
    room_version = event.room_version
    content = event.content
    # 1.1
    if event.prev_event_ids():
        raise AuthError("m.room.create has prev_events")
    # 1.2
    if room_version.room_id_from_create_event:
        if "room_id" in event.data:
            raise AuthError("m.room.create has a room_id (v12 derives it from the event ID)")
    else:
        room_id = event.data.get("room_id")
        room_domain = domain_of(room_id) if isinstance(room_id, str) else None
        if room_domain is None or room_domain != domain_of(event.sender):
            raise AuthError("room ID's server is not the creator's server")
    # 1.3
    declared = content.get("room_version", room_version.identifier)
    if not isinstance(declared, str) or declared not in KNOWN_ROOM_VERSIONS:
        raise AuthError(f"unknown room version {declared!r}")
    # 1.4 (v1-v10): content.creator is required.
    if not room_version.implicit_room_creator and "creator" not in content:
        raise AuthError("m.room.create has no creator")
    # 1.4 (v12): additional_creators must be user IDs.
    if room_version.privileged_creators and "additional_creators" in content:
        extra = content["additional_creators"]
        if not isinstance(extra, list) or not all(is_valid_user_id(u) for u in extra):
            raise AuthError("additional_creators is not a list of user IDs")


def _check_v1_redaction(event: PDU, state: AuthState) -> None:
    # 11.1
    if state.user_level(event.sender) >= state.named_level("redact"):
        return
    # 11.2: v1-v2 event IDs carry the originating server's name.
    redacts = event.redacts
    if redacts is not None and domain_of(redacts) == domain_of(event.event_id):
        return
    # 11.3
    raise AuthError("sender may only redact events from their own server")
