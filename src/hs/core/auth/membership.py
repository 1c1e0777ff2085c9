"""Auth rule for ``m.room.member`` events (rule 5 of rooms/v12.md; rule 4 in v6-v11).

Comments cite the sub-rule numbers of rooms/v12.md (5.x.y). Versions before v8 lack
rule 5.2, so their join/invite/... rules are numbered one lower; the text is the same
apart from what the room version flags switch on (knock v7, restricted v8,
knock_restricted v10, implicit creator v11).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hs.core.auth.errors import AuthError
from hs.core.auth.identifiers import domain_of, is_valid_user_id
from hs.core.auth.state import AuthState
from hs.core.auth.third_party_invite import public_keys_of, signed_by_any
from hs.core.pdu import PDU
from hs.core.power_levels import get_room_creators

__all__ = ["check_membership_event"]


def check_membership_event(event: PDU, state: AuthState) -> None:
    """Return if the membership change is allowed, raise ``AuthError`` if not.

    Unlike the other rules, every path through here ends in allow or reject: member
    events never reach the later generic rules.
    """
    room_version = event.room_version
    target = event.state_key
    membership = event.content.get("membership")
    # 5.1: a member event needs a state_key and a membership.
    if target is None or "membership" not in event.content:
        raise AuthError("member event without state_key or membership")

    # 5.2 (v8+): the authorising server must have signed a join_authorised_via_users_server.
    if room_version.restricted_join_rule and "join_authorised_via_users_server" in event.content:
        _check_authoriser_signed(event)

    if membership == "join":
        _check_join(event, target, state)
    elif membership == "invite":
        _check_invite(event, target, state)
    elif membership == "leave":
        _check_leave(event, target, state)
    elif membership == "ban":
        _check_ban(event, target, state)
    elif membership == "knock" and room_version.knock:
        _check_knock(event, target, state)
    else:
        # 5.8: unknown membership (knock counts as unknown before v7).
        raise AuthError(f"unknown membership {membership!r}")


def _check_authoriser_signed(event: PDU) -> None:
    """5.2.1. Signatures are *verified* on receipt (server-server "Checks performed on
    receipt of a PDU", step 2), where the keys are; that step must also require the
    authorising server's signature. Here we check the signature is there at all.
    """
    authoriser = event.content.get("join_authorised_via_users_server")
    server = None
    if isinstance(authoriser, str) and is_valid_user_id(authoriser):
        server = domain_of(authoriser)
    signatures = event.data.get("signatures")
    if server is None or not isinstance(signatures, dict) or not signatures.get(server):
        raise AuthError("join_authorised_via_users_server's server has not signed the event")


def _is_first_creator_join(event: PDU, target: str, state: AuthState) -> bool:
    """5.3.1: the only prev event is the create and the target is the creator (v11+: the
    create event's sender; additional v12 creators do not count)."""
    create = state.create
    if create is None or event.prev_event_ids() != (create.event_id,):
        return False
    if create.room_version.implicit_room_creator:
        return target == create.sender
    return target in get_room_creators(create)


def _check_join(event: PDU, target: str, state: AuthState) -> None:
    room_version = event.room_version
    # 5.3.1
    if _is_first_creator_join(event, target, state):
        return
    # 5.3.2
    if event.sender != target:
        raise AuthError("cannot make another user join")
    current = state.membership(target)
    # 5.3.3
    if current == "ban":
        raise AuthError("banned users cannot join")
    join_rule = state.join_rule
    # 5.3.4 (knock from v7)
    if join_rule == "invite" or (join_rule == "knock" and room_version.knock):
        if current in ("invite", "join"):
            return
        raise AuthError("the room is invite-only and the user is not invited")
    # 5.3.5 (restricted from v8, knock_restricted from v10)
    if (join_rule == "restricted" and room_version.restricted_join_rule) or (
        join_rule == "knock_restricted" and room_version.knock_restricted_join_rule
    ):
        # 5.3.5.1
        if current in ("invite", "join"):
            return
        # 5.3.5.2
        authoriser = event.content.get("join_authorised_via_users_server")
        if not isinstance(authoriser, str) or state.membership(authoriser) != "join":
            raise AuthError("restricted join not authorised by a joined member")
        if state.user_level(authoriser) < state.named_level("invite"):
            raise AuthError("restricted join authorised by a user who cannot invite")
        # 5.3.5.3
        return
    # 5.3.6
    if join_rule == "public":
        return
    # 5.3.7
    raise AuthError(f"join rule {join_rule!r} does not allow joining")


def _check_invite(event: PDU, target: str, state: AuthState) -> None:
    # 5.4.1
    third_party = event.content.get("third_party_invite")
    if third_party is not None:
        _check_third_party_invite(event, target, third_party, state)
        return
    # 5.4.2
    if state.membership(event.sender) != "join":
        raise AuthError("inviter is not in the room")
    # 5.4.3
    if state.membership(target) in ("join", "ban"):
        raise AuthError("invitee is already joined or is banned")
    # 5.4.4 / 5.4.5
    if state.user_level(event.sender) < state.named_level("invite"):
        raise AuthError("inviter's power level is below the invite level")


def _check_third_party_invite(
    event: PDU, target: str, third_party: object, state: AuthState
) -> None:
    # 5.4.1.1
    if state.membership(target) == "ban":
        raise AuthError("invitee is banned")
    # 5.4.1.2
    signed = third_party.get("signed") if isinstance(third_party, dict) else None
    if not isinstance(signed, dict):
        raise AuthError("third_party_invite has no signed object")
    # 5.4.1.3
    mxid, token = signed.get("mxid"), signed.get("token")
    if not isinstance(mxid, str) or not isinstance(token, str):
        raise AuthError("third_party_invite.signed lacks mxid or token")
    # 5.4.1.4
    if mxid != target:
        raise AuthError("third_party_invite.signed.mxid is not the invitee")
    # 5.4.1.5
    invite_event = state.events.get(("m.room.third_party_invite", token))
    if invite_event is None:
        raise AuthError("no m.room.third_party_invite for this token")
    # 5.4.1.6
    if invite_event.sender != event.sender:
        raise AuthError("third-party invite completed by someone other than its sender")
    # 5.4.1.7 / 5.4.1.8
    content: Mapping[str, Any] = invite_event.content
    if not signed_by_any(signed, public_keys_of(content)):
        raise AuthError("third_party_invite.signed is not signed by the invite's keys")


def _check_leave(event: PDU, target: str, state: AuthState) -> None:
    sender = event.sender
    # 5.5.1 (knock from v7)
    if sender == target:
        allowed = ("invite", "join", "knock") if event.room_version.knock else ("invite", "join")
        if state.membership(target) in allowed:
            return
        raise AuthError("cannot leave a room one is not in, invited to or knocking on")
    # 5.5.2
    if state.membership(sender) != "join":
        raise AuthError("kicker is not in the room")
    sender_level = state.user_level(sender)
    # 5.5.3
    if state.membership(target) == "ban" and sender_level < state.named_level("ban"):
        raise AuthError("unbanning needs the ban level")
    # 5.5.4 / 5.5.5
    if sender_level < state.named_level("kick"):
        raise AuthError("sender's power level is below the kick level")
    if state.user_level(target) >= sender_level:
        raise AuthError("cannot kick a user with equal or higher power")


def _check_ban(event: PDU, target: str, state: AuthState) -> None:
    sender = event.sender
    # 5.6.1
    if state.membership(sender) != "join":
        raise AuthError("banner is not in the room")
    sender_level = state.user_level(sender)
    # 5.6.2 / 5.6.3
    if sender_level < state.named_level("ban"):
        raise AuthError("sender's power level is below the ban level")
    if state.user_level(target) >= sender_level:
        raise AuthError("cannot ban a user with equal or higher power")


def _check_knock(event: PDU, target: str, state: AuthState) -> None:
    room_version = event.room_version
    join_rule = state.join_rule
    # 5.7.1 (knock_restricted from v10)
    if not (
        join_rule == "knock"
        or (join_rule == "knock_restricted" and room_version.knock_restricted_join_rule)
    ):
        raise AuthError(f"join rule {join_rule!r} does not allow knocking")
    # 5.7.2
    if event.sender != target:
        raise AuthError("cannot knock on behalf of another user")
    # 5.7.3 / 5.7.4
    if state.membership(event.sender) in ("ban", "invite", "join"):
        raise AuthError("banned, invited or joined users cannot knock")
