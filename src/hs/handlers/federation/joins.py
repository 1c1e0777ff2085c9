"""Membership over federation, resident side: another server's user joins, leaves or
knocks on a room we are in, or invites one of our users.

Server-server API "Joining Rooms", "Knocking upon a room", "Leaving Rooms (Rejecting
Invites)", "Inviting to a room". ``make_*`` returns an unsigned template built on the
room's current forward extremities (checked against the auth rules first, so a user who
may not join gets 403 at once); ``send_*`` checks the signed event like any received PDU
(``FederationEventHandler.process``, on the room's writer) and answers with the state the
joining server needs. Invites are counter-signed and kept as outliers carrying the stripped
room state, so /sync can show them while we are not in the room.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from hs.core.events import redact
from hs.core.pdu import PDU, StateKey
from hs.core.room_versions import RoomVersion, UnsupportedRoomVersionError, get_room_version
from hs.core.signing import sign_json
from hs.handlers.federation.acl import require_server_allowed
from hs.handlers.federation.common import (
    MEMBER,
    check_against_state,
    pdu_json,
    server_in_room,
)
from hs.handlers.federation.inbound import FederationEventHandler, PDUError
from hs.handlers.federation.queries import domain
from hs.handlers.federation.verify import BadPDU, check_format, verify_pdus
from hs.handlers.rooms.pipeline import Draft
from hs.http.errors import MatrixError, bad_json, forbidden, not_found
from hs.storage.events.types import EventToPersist

if TYPE_CHECKING:
    from hs.handlers.rooms.service import RoomHandler
    from hs.storage.accounts import AccountStore

#: Client-server "Stripped state": what invitees and knockers get to see of the room.
STRIPPED_TYPES = ("m.room.create", "m.room.name", "m.room.avatar", "m.room.topic",
                  "m.room.join_rules", "m.room.canonical_alias", "m.room.encryption")


def incompatible(rv: str) -> MatrixError:
    return MatrixError(400, "M_INCOMPATIBLE_ROOM_VERSION",
                       f"Your homeserver does not support room version {rv}", room_version=rv)


def stripped(pdu: PDU) -> dict[str, Any]:
    return {"type": pdu.type, "state_key": pdu.state_key, "content": dict(pdu.content),
            "sender": pdu.sender}


async def stripped_state(rooms: RoomHandler, room_id: str, extra: Sequence[StateKey] = ()
                         ) -> list[dict[str, Any]]:
    state = await rooms.current_state(room_id, [*((t, "") for t in STRIPPED_TYPES), *extra])
    return [stripped(p) for p in state.values()]


def countersign(event: dict[str, Any], rv: RoomVersion, server_name: str, key: Any
                ) -> dict[str, Any]:
    """``event`` with our signature added over its redacted form (its hashes untouched)."""
    ours = sign_json(redact(event, rv), server_name, key)["signatures"][server_name]
    sigs = dict(event.get("signatures") or {})
    sigs[server_name] = {**sigs.get(server_name, {}), **ours}
    return {**event, "signatures": sigs}


class ResidentMembership:
    """See the module docstring."""

    def __init__(self, server_name: str, rooms: RoomHandler, accounts: AccountStore,
                 inbound: FederationEventHandler, clock: Callable[[], int]) -> None:
        self.server_name = server_name
        self.rooms = rooms
        self.events = rooms.events
        self.accounts = accounts
        self.inbound = inbound
        self.clock = clock
        #: ``relay(room_id, pdu, stream_ordering, exclude)``: announce a membership event a
        #: remote server sent through send_join/leave/knock to the room's other servers
        #: (the federation sender's ``relay_pdu``, wired in app.py).
        self.relay: Callable[[str, PDU, int, set[str]], Awaitable[None]] | None = None

    async def _room(self, origin: str, room_id: str) -> RoomVersion:
        version = await self.events.get_room_version(room_id)
        if version is None or not await server_in_room(self.events, room_id, self.server_name):
            raise not_found(f"This server is not in room {room_id}")
        await require_server_allowed(self.events, room_id, origin)
        return get_room_version(version)

    # -- make_* -------------------------------------------------------------------------

    async def make_membership(self, origin: str, room_id: str, user_id: str,
                              membership: str, versions: list[str] | None) -> dict[str, Any]:
        """The template for ``user_id``'s ``membership`` event (make_join/leave/knock)."""
        if domain(user_id) != origin:
            raise forbidden("The user does not belong to the requesting server")
        rv = await self._room(origin, room_id)
        if versions is not None and rv.identifier not in versions:
            raise incompatible(rv.identifier)
        if membership == "knock" and not rv.knock:
            raise incompatible(rv.identifier)
        content: dict[str, Any] = {"membership": membership}
        if membership == "join" and rv.restricted_join_rule:
            authoriser = await self._authoriser(room_id, user_id)
            if authoriser is not None:
                content["join_authorised_via_users_server"] = authoriser
        draft = Draft(MEMBER, user_id, content, user_id)
        builder, _ = await self.rooms.pipeline._tip(room_id, [draft])
        pdu = builder.build(draft)
        reason = check_against_state(pdu, builder.auth_state())
        if reason is not None:
            raise forbidden(f"You are not allowed to {membership} this room: {reason}")
        template = {k: v for k, v in pdu.data.items()
                    if k not in ("hashes", "signatures", "event_id", "unsigned")}
        return {"event": template, "room_version": rv.identifier}

    async def _authoriser(self, room_id: str, user_id: str) -> str | None:
        """For restricted rooms: one of our joined users who may invite (rooms/v8)."""
        from hs.handlers.rooms.membership import JOIN_RULES, _restricted_authoriser

        keys = [("m.room.create", ""), ("m.room.power_levels", ""), JOIN_RULES,
                (MEMBER, user_id)]
        state = await self.rooms.current_state(room_id, keys)
        rule = state.get(JOIN_RULES)
        if rule is None or rule.content.get("join_rule") not in ("restricted",
                                                                  "knock_restricted"):
            return None
        return await _restricted_authoriser(self.rooms, room_id, user_id, state,
                                            state.get((MEMBER, user_id)))

    # -- send_* -------------------------------------------------------------------------

    async def send_membership(self, origin: str, room_id: str, event_id: str, body: Any,
                              membership: str) -> PDU:
        """Check and persist a signed membership event from ``origin``; returns it."""
        rv = await self._room(origin, room_id)
        if not isinstance(body, dict):
            raise bad_json("The body must be the signed event")
        body = {k: v for k, v in body.items() if k != "unsigned"}
        content = body.get("content")
        authoriser = content.get("join_authorised_via_users_server") if isinstance(
            content, dict) else None
        if membership == "join" and isinstance(authoriser, str):
            if domain(authoriser) != self.server_name:
                raise forbidden("join_authorised_via_users_server is not on this server")
            # rooms/v8: the resident server signs a restricted join before it is checked.
            body = countersign(body, rv, self.server_name, self.rooms.pipeline.signing_key)
        _check_shape(body, rv)
        [checked] = await verify_pdus(self.inbound.keyring, [body], rv)
        pdu = checked.pdu
        if pdu is None:
            raise forbidden(f"Invalid event: {checked.error}")
        if pdu.event_id != event_id:
            raise bad_json("The event ID does not match the event")
        if (pdu.type != MEMBER or pdu.membership != membership or pdu.state_key != pdu.sender
                or pdu.room_id != room_id or domain(pdu.sender) != origin):
            raise bad_json(f"Not a {membership} event of a user of {origin} in this room")

        async def run() -> None:
            await self.inbound.process(origin, pdu, rv, fill_gaps=False)

        try:
            await self.rooms.pipeline.run_exclusive(room_id, run)
        except PDUError as exc:
            raise forbidden(str(exc)) from None
        meta = (await self.events.get_event_meta([pdu.event_id])).get(pdu.event_id)
        if meta is None or meta.soft_failed or meta.rejected_reason is not None:
            raise forbidden("The event is not allowed by the current state of the room")
        if self.relay is not None:
            # Joining Rooms: the resident server sends the accepted event to the other
            # servers in the room; the joining server gets it in the send_join answer.
            await self.relay(room_id, pdu, meta.stream_ordering, {origin})
        return pdu

    async def join_response(self, pdu: PDU, omit_members: bool) -> dict[str, Any]:
        """send_join v2: the state before the join and its auth chain (all members)."""
        state = await self.events.get_state_ids_at(pdu.event_id, before=True) or {}
        ids = list(state.values())
        chain = await self.events.auth_chain_ids([*ids, *pdu.auth_event_ids()],
                                                 allow_missing=True)
        found = await self.events.get_events([*ids, *chain])
        servers = sorted({domain(k) for (t, k) in state if t == MEMBER})
        return {
            "origin": self.server_name,
            "state": [pdu_json(found[e]) for e in ids if e in found],
            "auth_chain": [pdu_json(found[e]) for e in sorted(chain) if e in found],
            "event": pdu_json(pdu),
            "members_omitted": False,
            "servers_in_room": servers,
        }

    async def knock_response(self, pdu: PDU) -> dict[str, Any]:
        return {"knock_room_state": await stripped_state(self.rooms, pdu.room_id)}

    # -- invites ------------------------------------------------------------------------

    async def on_invite(self, origin: str, room_id: str, event_id: str, body: Any
                        ) -> dict[str, Any]:
        """v2 /invite: counter-sign an invite of one of our users and remember it."""
        if not isinstance(body, dict) or not isinstance(body.get("event"), dict):
            raise bad_json("Missing 'event'")
        try:
            rv = get_room_version(body.get("room_version", "1"))
        except UnsupportedRoomVersionError:
            raise incompatible(str(body.get("room_version"))) from None
        if await self.events.get_room_version(room_id) is not None:
            await require_server_allowed(self.events, room_id, origin)
        event = {k: v for k, v in body["event"].items() if k != "unsigned"}
        _check_shape(event, rv)
        [checked] = await verify_pdus(self.inbound.keyring, [event], rv)
        pdu = checked.pdu
        if pdu is None:
            raise forbidden(f"Invalid invite event: {checked.error}")
        target = pdu.state_key
        if (pdu.event_id != event_id or pdu.type != MEMBER or pdu.membership != "invite"
                or pdu.room_id != room_id or domain(pdu.sender) != origin
                or target is None or domain(target) != self.server_name):
            raise bad_json("Not an invite of one of our users into this room")
        user = await self.accounts.get_user(target)
        if user is None or user.deactivated:
            raise not_found(f"Unknown user {target}")
        signed = countersign(event, rv, self.server_name, self.rooms.pipeline.signing_key)
        room_state = body.get("invite_room_state")
        stored = dict(signed)
        if isinstance(room_state, list):
            stored["unsigned"] = {"invite_room_state": [
                e for e in room_state if isinstance(e, dict)]}
        invite = PDU(stored, rv, pdu.event_id)

        async def run() -> None:
            resident = await server_in_room(self.events, room_id, self.server_name)
            # In the room, the invite also arrives over /send; else it is our only copy.
            delta = None if resident else {(MEMBER, target): invite.event_id}
            await self.rooms.pipeline.persist([EventToPersist(invite, outlier=True)],
                                              room_id, delta)

        await self.rooms.pipeline.run_exclusive(room_id, run)
        return {"event": signed}


def _check_shape(event: Any, rv: RoomVersion) -> None:
    """400 M_BAD_JSON for an event malformed for its room version."""
    try:
        check_format(event, rv)
    except BadPDU as exc:
        raise bad_json(f"Malformed event: {exc}") from None
