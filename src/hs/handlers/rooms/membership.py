"""Membership changes: join (incl. restricted joins), invite, leave, kick, ban, unban, knock.

Spec: client-server "Room membership" (modules/... and data/api/client-server/
joining.yaml, inviting.yaml, kicking.yaml, banning.yaml, knocking.yaml, leaving.yaml).
Who may do what is decided by the auth rules when the event is built; this module fills
in the content the way Synapse does so that Element shows the right thing: the member's
profile (displayname/avatar_url) on joins, knocks and invites, ``reason`` and
``is_direct``, and for restricted rooms the local user who authorises the join
(``join_authorised_via_users_server``, rooms/v8 "Restricted rooms").

Rooms this server is not in are joined, knocked on or left (rejecting an invite) over
federation through ``handler.remote`` (``hs.handlers.federation.remote``), and invites of
other servers' users are counter-signed by their server first; without it those get a
clear 404 "No known servers" as Synapse answers when no resident server can be reached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hs.core.auth import identifiers as ids
from hs.core.pdu import PDU
from hs.core.power_levels import get_named_level, get_user_power_level
from hs.handlers.rooms.creation import member_content
from hs.handlers.rooms.pipeline import CREATE, MEMBER, POWER_LEVELS, Draft
from hs.handlers.rooms.validation import check_content
from hs.http.errors import MatrixError, forbidden, invalid_param, not_found
from hs.storage.events.types import TxnKey

if TYPE_CHECKING:
    from hs.handlers.auth import Requester
    from hs.handlers.rooms.service import RoomHandler

JOIN_RULES = ("m.room.join_rules", "")
GUEST_ACCESS = ("m.room.guest_access", "")
MEMBERSHIPS = frozenset({"join", "invite", "leave", "ban", "knock"})


def no_known_servers(room: str) -> MatrixError:
    return MatrixError(404, "M_NOT_FOUND",
                       f"No known servers for {room}: this server is not in the room and "
                       "federation joins are not available")


async def resolve_room(handler: RoomHandler, room_id_or_alias: str) -> str:
    """A room ID from an ID or a local alias; 404 for unknown aliases and remote rooms."""
    if room_id_or_alias.startswith("#"):
        found = await handler.events.rooms.get_alias(room_id_or_alias)
        if found is None:
            if handler.is_local(room_id_or_alias):
                raise not_found(f"Room alias {room_id_or_alias} not found")
            raise no_known_servers(room_id_or_alias)
        return str(found[0])
    if not room_id_or_alias.startswith("!"):
        raise invalid_param(f"{room_id_or_alias!r} is not a room ID or alias")
    if await handler.events.get_room_version(room_id_or_alias) is None:
        raise no_known_servers(room_id_or_alias)
    return room_id_or_alias


async def join_room(handler: RoomHandler, requester: Requester, room_id_or_alias: str,
                    reason: str | None, extra_content: Mapping[str, Any] | None,
                    via: Sequence[str] = ()) -> str:
    if handler.remote is not None and await handler.remote.is_remote(room_id_or_alias):
        # A room this server is not in: join through a resident server (federation).
        return str(await handler.remote.join(requester.user_id, room_id_or_alias, via,
                                             reason, extra_content))
    room_id = await resolve_room(handler, room_id_or_alias)
    await update_membership(handler, requester, room_id, requester.user_id, "join", reason,
                            extra_content=extra_content)
    return room_id


async def knock_room(handler: RoomHandler, requester: Requester, room_id_or_alias: str,
                     reason: str | None, via: Sequence[str] = ()) -> str:
    if handler.remote is not None and await handler.remote.is_remote(room_id_or_alias):
        return str(await handler.remote.knock(requester.user_id, room_id_or_alias, via,
                                              reason))
    room_id = await resolve_room(handler, room_id_or_alias)
    rv = await handler.room_version(room_id)
    if not rv.knock:
        raise forbidden(f"Room version {rv} does not support knocking")
    await update_membership(handler, requester, room_id, requester.user_id, "knock", reason)
    return room_id


async def update_membership(handler: RoomHandler, requester: Requester, room_id: str,
                            target: str, membership: str, reason: str | None = None, *,
                            txn_id: str | None = None,
                            extra_content: Mapping[str, Any] | None = None,
                            ratelimit: bool = True) -> str:
    """Send ``target``'s new membership as ``requester``; returns the event ID.

    A join that changes nothing (same membership, same content) returns the current
    event instead of sending a duplicate, as Synapse does. With ``txn_id`` a retry
    returns the event the first attempt created.
    """
    if membership not in MEMBERSHIPS:
        raise invalid_param(f"Unknown membership {membership!r}")
    if not ids.is_valid_user_id(target):
        raise invalid_param(f"{target!r} is not a valid user ID")
    if reason is not None and not isinstance(reason, str):
        raise invalid_param("'reason' must be a string")
    user_id = requester.user_id
    if membership in ("join", "knock") and target != user_id:
        raise forbidden(f"You cannot {membership} on behalf of another user")
    rv = await handler.room_version(room_id)
    txn = None
    if txn_id is not None:
        existing = await handler.events.event_id_for_txn(
            user_id, requester.device_id, room_id, txn_id)
        if existing is not None:
            return existing
        txn = TxnKey(user_id, requester.device_id, txn_id)
    if ratelimit and membership == "join" and not requester.admin:
        handler.ratelimiters["rc_joins.local"].check(user_id)
    if ratelimit and membership == "invite" and not requester.admin:
        handler.ratelimiters["rc_invites.per_user"].check(target)
    if not handler.is_local(target) and membership == "invite" and handler.remote is None:
        raise MatrixError(502, "M_UNKNOWN",
                          f"Cannot invite {target}: federation is not available")
    if (membership == "leave" and target == user_id and handler.remote is not None
            and await handler.remote.is_remote(room_id)):
        # Rejecting an invite / rescinding a knock in a room we are not in.
        return str(await handler.remote.leave(user_id, room_id, reason))
    keys = [CREATE, POWER_LEVELS, JOIN_RULES, GUEST_ACCESS, (MEMBER, target), (MEMBER, user_id)]
    state = await handler.current_state(room_id, keys)
    current = state.get((MEMBER, target))
    if membership == "join" and requester.is_guest:
        # client-server "Guest Access": guests join only rooms that allow them.
        guest = state.get(GUEST_ACCESS)
        if guest is None or guest.content.get("guest_access") != "can_join":
            raise MatrixError(403, "M_GUEST_ACCESS_FORBIDDEN", "Guests may not join this room")
    if membership == "invite" and handler.is_local(target) and (
            await handler.accounts.get_user(target)) is None:
        raise not_found(f"Unknown user {target}")
    content: dict[str, Any] = dict(extra_content or {})
    content.pop("join_authorised_via_users_server", None)
    if membership in ("join", "knock", "invite") and handler.is_local(target) and not (
            extra_content and ("displayname" in extra_content or "avatar_url" in extra_content)):
        content.update(member_content(membership, await handler.accounts.get_profile(target)))
    content["membership"] = membership
    if reason is not None:
        content["reason"] = reason
    if membership == "join" and rv.restricted_join_rule:
        authoriser = await _restricted_authoriser(handler, room_id, user_id, state, current)
        if authoriser is not None:
            content["join_authorised_via_users_server"] = authoriser
    check_content(content)
    if (membership == "join" and current is not None and current.membership == "join"
            and current.sender == user_id and dict(current.content) == content):
        return current.event_id
    draft = Draft(MEMBER, user_id, content, target, txn=txn)
    if membership == "invite" and not handler.is_local(target):
        # The invitee's server must counter-sign first (server-server "Inviting to a room").
        return str(await handler.remote.invite(room_id, draft))
    sent = await handler.send_draft(room_id, draft)
    return sent.event_id


async def _restricted_authoriser(handler: RoomHandler, room_id: str, user_id: str,
                                 state: Mapping[Any, PDU], current: PDU | None) -> str | None:
    """For a restricted room the joining server names a local member with invite power
    (rooms/v8 auth rule 4.3.3, client-server "Restricted rooms"); None when the join does
    not need one (public room, already invited or joined)."""
    join_rules = state.get(JOIN_RULES)
    rule = join_rules.content.get("join_rule") if join_rules is not None else None
    if rule not in ("restricted", "knock_restricted"):
        return None
    if current is not None and current.membership in ("join", "invite"):
        return None
    allow = join_rules.content.get("allow") if join_rules is not None else None
    allowed = {a.get("room_id") for a in allow if isinstance(a, dict)
               and a.get("type") == "m.room_membership"} if isinstance(allow, list) else set()
    mine = {r.room_id for r in await handler.events.get_rooms_for_user(user_id)}
    if not allowed & mine:
        if rule == "knock_restricted":
            return None  # the auth rules refuse the join; knocking stays possible
        raise forbidden("You do not belong to any of the rooms required to join this room")
    members = await handler.events.get_members(room_id, ["join"])
    pl = state.get(POWER_LEVELS)
    needed = get_named_level("invite", pl.content if pl is not None else None, 0)
    candidates = sorted(
        ((get_user_power_level(u, state), u) for u in members if handler.is_local(u)),
        key=lambda c: (-c[0], c[1]))
    for level, candidate in candidates:
        if level >= needed:
            return str(candidate)
    raise forbidden("No user on this server may authorise your join to this room")


async def unban(handler: RoomHandler, requester: Requester, room_id: str, target: str,
                reason: str | None) -> str:
    """Spec ``/unban``: the target must currently be banned."""
    await handler.room_version(room_id)
    current = await handler.membership_of(room_id, target)
    if current is None or current.membership != "ban":
        raise forbidden(f"{target} is not banned from this room")
    return await update_membership(handler, requester, room_id, target, "leave", reason)


async def kick(handler: RoomHandler, requester: Requester, room_id: str, target: str,
               reason: str | None) -> str:
    """Spec ``/kick``: only a joined, invited or knocking user can be kicked."""
    await handler.room_version(room_id)
    current = await handler.membership_of(room_id, target)
    if current is None or current.membership not in ("join", "invite", "knock"):
        raise forbidden(f"{target} is not in the room")
    return await update_membership(handler, requester, room_id, target, "leave", reason)


async def forget_room(handler: RoomHandler, requester: Requester, room_id: str) -> None:
    """Spec ``/forget``: only once the user has left (or been kicked/banned)."""
    current = await handler.membership_of(room_id, requester.user_id)
    if current is None:
        if await handler.events.get_room_version(room_id) is None:
            raise not_found(f"Unknown room {room_id}")
        return
    if current.membership in ("join", "invite", "knock"):
        raise MatrixError(400, "M_UNKNOWN",
                          f"User {requester.user_id} is in room {room_id}: leave it first")
    await handler.events.rooms.forget_room(requester.user_id, room_id, current.event_id)
