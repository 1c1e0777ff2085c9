"""Which state an event must cite as ``auth_events``, and checking that it did.

Spec: server-server-api "Auth events selection", and rule 2 of the auth rules (rule 3
in v12) "Considering the event's auth_events".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hs.core.auth.errors import AuthError
from hs.core.pdu import PDU, StateKey
from hs.core.room_versions import RoomVersion

__all__ = ["auth_types_for_event", "select_cited_auth_events"]

CREATE: StateKey = ("m.room.create", "")
POWER_LEVELS: StateKey = ("m.room.power_levels", "")
JOIN_RULES: StateKey = ("m.room.join_rules", "")


def auth_types_for_event(
    event_type: str,
    sender: str,
    state_key: str | None,
    content: Mapping[str, Any],
    room_version: RoomVersion,
) -> list[tuple[str, str]]:
    """The (type, state_key) pairs of current state to cite when building an event.

    The create event cites nothing; from v12 no event cites the create event (the room
    ID stands for it). Order is fixed (create, power levels, sender, then member
    extras) so that built events are deterministic; duplicates are removed.
    """
    if event_type == "m.room.create":
        return []
    wanted: list[StateKey] = []
    if not room_version.room_id_from_create_event:
        wanted.append(CREATE)
    wanted.append(POWER_LEVELS)
    wanted.append(("m.room.member", sender))
    if event_type == "m.room.member" and state_key is not None:
        wanted.append(("m.room.member", state_key))
        membership = content.get("membership")
        if membership in ("join", "invite", "knock"):
            wanted.append(JOIN_RULES)
        if membership == "invite":
            token = _third_party_invite_token(content)
            if token is not None:
                wanted.append(("m.room.third_party_invite", token))
        if membership == "join" and room_version.restricted_join_rule:
            authoriser = content.get("join_authorised_via_users_server")
            if isinstance(authoriser, str):
                wanted.append(("m.room.member", authoriser))
    return list(dict.fromkeys(wanted))


def _third_party_invite_token(content: Mapping[str, Any]) -> str | None:
    invite = content.get("third_party_invite")
    if not isinstance(invite, dict):
        return None
    signed = invite.get("signed")
    if not isinstance(signed, dict):
        return None
    token = signed.get("token")
    return token if isinstance(token, str) else None


def select_cited_auth_events(
    event: PDU, auth_events: Mapping[StateKey, PDU]
) -> dict[StateKey, PDU]:
    """Apply the "auth_events list" rules; return the cited events keyed by state key.

    ``auth_events`` must hold the events ``event`` cites (and, for v12, the create
    event). A cited ID that is not among them is rejected: either the caller could not
    supply it, or it shares its (type, state_key) with another cited event and was lost
    when the map was built - a duplicate either way.
    """
    room_version = event.room_version
    by_id = {pdu.event_id: pdu for pdu in auth_events.values()}
    allowed = set(
        auth_types_for_event(event.type, event.sender, event.state_key, event.content, room_version)
    )
    cited: dict[StateKey, PDU] = {}
    for event_id in event.auth_event_ids():
        pdu = by_id.get(event_id)
        if pdu is None:
            raise AuthError(f"auth event {event_id} is missing or duplicates another's key")
        if not pdu.is_state():
            raise AuthError(f"auth event {event_id} is not a state event")
        key = pdu.state_tuple
        # 1. Duplicate entries for a (type, state_key) pair.
        if key in cited:
            raise AuthError(f"auth_events cites two events for {key}")
        # 2. Entries the auth events selection does not ask for (v12: not the create).
        if key not in allowed:
            raise AuthError(f"auth_events cites {key}, which this event does not need")
        # 3. Entries that were themselves rejected.
        if pdu.rejected_reason is not None:
            raise AuthError(f"auth event {event_id} was rejected")
        cited[key] = pdu
    if room_version.room_id_from_create_event and CREATE in auth_events:
        # v12 events do not cite the create event; the caller supplies it.
        cited[CREATE] = auth_events[CREATE]
    return cited
