"""Membership over federation, our side: a local user joins, knocks on or leaves a room
this server is not in, or invites a user of another server.

Server-server API "Joining Rooms": ``make_join`` on a resident server (the first that
answers among the ``via`` servers, the alias's servers, the room ID's domain and the
inviter's server), sign the template, ``send_join``, then check EVERY event of the answer
(state and auth chain, one ``check_events`` batch through the keyring), auth-check them in
auth order, store them as outliers and persist the join as the room's first DAG event with
that state. The remote server's transactions then keep the room live. Leaving (rejecting an
invite) and knocking use ``make_leave``/``send_leave`` and ``make_knock``/``send_knock``;
the result is kept as an outlier membership, like a received invite.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hs.core.events import add_hashes_and_sign, make_event_id_v1, redact
from hs.core.pdu import PDU, StateKey
from hs.core.room_versions import (
    KNOWN_ROOM_VERSIONS,
    EventFormat,
    RoomVersion,
    UnsupportedRoomVersionError,
    get_room_version,
)
from hs.core.signing import SignatureVerifyError, verify_signed_json
from hs.federation.client import (
    FederationClient,
    FederationRequestError,
    HttpResponseError,
    encode_path,
)
from hs.federation.keyring import KeyLookupError, Keyring
from hs.handlers.federation.common import (
    CREATE,
    MEMBER,
    check_against_auth_events,
    check_against_state,
    create_id_for,
    persist_outliers,
    server_in_room,
)
from hs.handlers.federation.inbound import FederationEventHandler, PDUError
from hs.handlers.federation.joins import stripped_state
from hs.handlers.federation.queries import domain
from hs.handlers.federation.verify import verify_pdus
from hs.handlers.rooms.creation import member_content
from hs.handlers.rooms.pipeline import Draft
from hs.http.errors import MatrixError, forbidden
from hs.storage.events.types import EventToPersist

if TYPE_CHECKING:
    from hs.handlers.directory import DirectoryHandler
    from hs.handlers.rooms.service import RoomHandler

logger = logging.getLogger(__name__)

FED = "/_matrix/federation"
#: History fetched after a join: rounds of /backfill and events per round.
BACKFILL_ROUNDS = 5
BACKFILL_LIMIT = 100


def no_servers(room: str) -> MatrixError:
    return MatrixError(404, "M_NOT_FOUND", f"No known servers for {room}")


class RemoteMembership:
    """See the module docstring."""

    def __init__(self, server_name: str, rooms: RoomHandler, directory: DirectoryHandler,
                 client: FederationClient, keyring: Keyring, clock: Callable[[], int],
                 inbound: FederationEventHandler) -> None:
        self.server_name = server_name
        self.rooms = rooms
        self.events = rooms.events
        self.directory = directory
        self.client = client
        self.keyring = keyring
        self.clock = clock
        self.inbound = inbound
        self._backfills: set[asyncio.Task[None]] = set()

    async def is_remote(self, room_id_or_alias: str) -> bool:
        """Whether a join/knock must go over federation: a remote alias we do not hold, or
        a room we are not resident in."""
        if not room_id_or_alias.startswith(("#", "!")):
            return False  # the local path answers 400 for malformed targets
        if room_id_or_alias.startswith("#"):
            if domain(room_id_or_alias) == self.server_name:
                return False
            return await self.events.rooms.get_alias(room_id_or_alias) is None
        return not await server_in_room(self.events, room_id_or_alias, self.server_name)

    async def _target(self, room_id_or_alias: str, via: Sequence[str]
                      ) -> tuple[str, list[str]]:
        servers = list(via)
        room_id = room_id_or_alias
        if room_id_or_alias.startswith("#"):
            try:
                resolved = await self.directory.resolve_alias(room_id_or_alias)
            except MatrixError as exc:
                if exc.status >= 500:  # the alias's server is unreachable
                    raise no_servers(room_id_or_alias) from None
                raise
            room_id = resolved["room_id"]
            servers += resolved["servers"]
        elif ":" in room_id:
            servers.append(domain(room_id))  # v1-v11 room IDs name their creator's server
        members = await self.events.rooms.get_members(room_id, ["invite", "knock"])
        servers += [domain(m.sender) for m in members.values()]
        ordered = [s for s in dict.fromkeys(servers) if s and s != self.server_name]
        if not ordered:
            raise no_servers(room_id_or_alias)
        return room_id, ordered

    async def _make(self, servers: Sequence[str], room_id: str, user_id: str,
                    membership: str) -> tuple[str, dict[str, Any], RoomVersion]:
        """The first resident server's template (and its room version)."""
        query = {"ver": list(KNOWN_ROOM_VERSIONS)} if membership != "leave" else None
        last: Exception | None = None
        for server in servers:
            try:
                resp = await self.client.get_json(
                    server, f"{FED}/v1/make_{membership}" + encode_path(room_id, user_id), query)
            except HttpResponseError as exc:
                if exc.status in (400, 403) and exc.errcode in (
                        "M_FORBIDDEN", "M_INCOMPATIBLE_ROOM_VERSION"):
                    raise MatrixError(exc.status if exc.status == 403 else 400,
                                      exc.errcode or "M_FORBIDDEN",
                                      exc.error or "Refused by the resident server") from None
                last = exc
                continue
            except FederationRequestError as exc:
                last = exc
                continue
            event = resp.get("event") if isinstance(resp, dict) else None
            try:
                rv = get_room_version(resp.get("room_version", "1"))
            except UnsupportedRoomVersionError:
                last = ValueError("unsupported room version")
                continue
            if isinstance(event, dict) and event.get("room_id") == room_id:
                return server, event, rv
            last = ValueError("invalid template")
        logger.info("make_%s for %s failed on %s: %s", membership, room_id, servers, last)
        raise no_servers(room_id)

    def _sign(self, template: dict[str, Any], rv: RoomVersion, user_id: str,
              content: Mapping[str, Any]) -> PDU:
        event = {k: v for k, v in template.items()
                 if k not in ("hashes", "signatures", "unsigned", "event_id")}
        if event.get("sender") != user_id or event.get("state_key") != user_id:
            raise MatrixError(502, "M_UNKNOWN", "The resident server sent a bad template")
        tpl_content = event.get("content")
        membership = tpl_content.get("membership") if isinstance(tpl_content, dict) else None
        if not isinstance(tpl_content, dict) or membership not in ("join", "leave", "knock"):
            raise MatrixError(502, "M_UNKNOWN", "The resident server sent a bad template")
        event["content"] = {**tpl_content, **content, "membership": membership}
        event["origin_server_ts"] = self.clock()
        if not rv.implicit_room_creator:
            event["origin"] = self.server_name
        if rv.event_format is EventFormat.V1:
            event["event_id"] = make_event_id_v1(self.server_name)
        add_hashes_and_sign(event, rv, self.server_name, self.rooms.pipeline.signing_key)
        return PDU(event, rv, event["event_id"] if rv.event_format is EventFormat.V1
                        else PDU(event, rv).event_id)

    async def _content(self, user_id: str, membership: str, reason: str | None,
                       extra: Mapping[str, Any] | None) -> dict[str, Any]:
        content = dict(extra or {})
        if "displayname" not in content and "avatar_url" not in content:
            content.update(member_content(membership,
                                          await self.rooms.accounts.get_profile(user_id)))
        if reason is not None:
            content["reason"] = reason
        return content

    # -- join ---------------------------------------------------------------------------

    async def join(self, user_id: str, room_id_or_alias: str, via: Sequence[str],
                   reason: str | None, extra: Mapping[str, Any] | None) -> str:
        room_id, servers = await self._target(room_id_or_alias, via)
        server, template, rv = await self._make(servers, room_id, user_id, "join")
        join = self._sign(template, rv, user_id,
                          await self._content(user_id, "join", reason, extra))
        try:
            resp = await self.client.put_json(
                server, f"{FED}/v2/send_join" + encode_path(room_id, join.event_id), join.data)
        except HttpResponseError as exc:
            raise MatrixError(403 if exc.status == 403 else 502,
                              exc.errcode or "M_UNKNOWN",
                              f"send_join refused: {exc.error or exc.status}") from None
        except FederationRequestError as exc:
            raise MatrixError(502, "M_UNKNOWN", f"send_join failed: {exc}") from None
        if not isinstance(resp, dict):
            raise MatrixError(502, "M_UNKNOWN", "Bad send_join response")
        signed = resp.get("event")
        if isinstance(signed, dict) and join.data.get("content", {}).get(
                "join_authorised_via_users_server"):
            join = PDU({k: v for k, v in signed.items() if k != "unsigned"}, rv)
        await self._persist_join(room_id, rv, join, resp)
        task = asyncio.get_running_loop().create_task(self.backfill(server, room_id, rv, join))
        self._backfills.add(task)
        task.add_done_callback(self._backfills.discard)
        return room_id

    async def backfill(self, server: str, room_id: str, rv: RoomVersion, join: PDU) -> None:
        """The room's history before our join (``GET /backfill`` from the server we joined
        through, ``BACKFILL_ROUNDS`` rounds at most), checked like any received event and
        stored as backfilled (below every sync position)."""
        frontier = list(join.prev_event_ids())
        for _ in range(BACKFILL_ROUNDS):
            try:
                resp = await self.client.get_json(
                    server, f"{FED}/v1/backfill" + encode_path(room_id),
                    {"v": frontier, "limit": BACKFILL_LIMIT})
            except FederationRequestError as exc:
                logger.info("backfill of %s from %s failed: %s", room_id, server, exc)
                return
            raw = resp.get("pdus") if isinstance(resp, dict) else None
            if not isinstance(raw, list):
                return
            pdus = [v.pdu for v in await verify_pdus(self.keyring, raw, rv)
                    if v.pdu is not None and v.pdu.data.get("room_id") == room_id]
            metas = await self.events.get_event_meta([p.event_id for p in pdus])
            new = sorted((p for p in pdus if p.event_id not in metas
                          or metas[p.event_id].outlier), key=lambda p: (p.depth, p.event_id))
            if not new:
                return

            async def run(batch: list[PDU] = new) -> None:
                for pdu in batch:
                    try:
                        await self.inbound.process(server, pdu, rv, fill_gaps=False,
                                                   backfilled=True)
                    except PDUError as exc:
                        logger.info("backfilled %s not accepted: %s", pdu.event_id, exc)

            await self.rooms.pipeline.run_exclusive(room_id, run)
            got = {p.event_id for p in new}
            have = await self.events.get_event_meta(
                {prev for p in new for prev in p.prev_event_ids()})
            frontier = sorted({prev for p in new for prev in p.prev_event_ids()
                               if prev not in got and (prev not in have or have[prev].outlier)})
            if not frontier:
                return

    async def _persist_join(self, room_id: str, rv: RoomVersion, join: PDU,
                            resp: dict[str, Any]) -> None:
        state_raw: list[Any] = resp["state"] if isinstance(resp.get("state"), list) else []
        chain_raw: list[Any] = (resp["auth_chain"] if isinstance(resp.get("auth_chain"), list)
                                else [])
        checked = await verify_pdus(self.keyring, [*state_raw, *chain_raw, join.data], rv)
        *fetched, mine = checked
        if mine.pdu is None or mine.pdu.event_id != join.event_id:
            raise MatrixError(502, "M_UNKNOWN", f"The join event did not verify: {mine.error}")
        good = {v.pdu.event_id: v.pdu for v in fetched if v.pdu is not None}
        state_ids = {v.pdu.event_id for v in checked[:len(state_raw)] if v.pdu is not None}
        create_id = create_id_for(room_id, rv)
        create = next((p for p in good.values() if p.type == "m.room.create"
                       and p.state_key == ""), None)
        if create is None or (create_id is not None and create.event_id != create_id):
            raise MatrixError(502, "M_UNKNOWN", "send_join response lacks the create event")
        if create.content.get("room_version", "1") != rv.identifier:
            raise MatrixError(502, "M_UNKNOWN", "The room version does not match the room")
        join_pdu = mine.pdu

        async def run() -> None:
            stored = await persist_outliers(self.events, room_id, rv, good.values())
            state: dict[StateKey, str] = {}
            for eid in state_ids:
                p = stored.get(eid)
                if p is not None and p.is_state() and p.rejected_reason is None:
                    state[p.state_tuple] = eid
            if CREATE not in state:
                raise MatrixError(502, "M_UNKNOWN", "The room state has no create event")
            auth = [stored[a] for a in join_pdu.auth_event_ids() if a in stored]
            if len(auth) < len(join_pdu.auth_event_ids()):
                raise MatrixError(502, "M_UNKNOWN", "The join's auth events are missing")
            reason = check_against_auth_events(join_pdu, auth, stored.get(create.event_id))
            if reason is None:
                wanted = {k: stored[e] for k, e in state.items() if e in stored}
                reason = check_against_state(join_pdu, wanted)
            if reason is not None:
                raise forbidden(f"The join is not allowed by the room's state: {reason}")
            current = await self.events.get_current_state_ids(room_id)
            target = {**state, (MEMBER, join_pdu.sender): join_pdu.event_id}
            delta: dict[StateKey, str | None] = {
                k: v for k, v in target.items() if current.get(k) != v}
            delta.update({k: None for k in current if k not in target})
            await self.rooms.pipeline.persist(
                [EventToPersist(join_pdu, state_before=state)], room_id, delta)

        await self.rooms.pipeline.run_exclusive(room_id, run)

    # -- leave and knock over federation ------------------------------------------------

    async def leave(self, user_id: str, room_id: str, reason: str | None) -> str:
        """Reject an invite (or rescind a knock) in a room we are not in."""
        return await self._out_of_band(user_id, room_id, "leave", [], reason)

    async def knock(self, user_id: str, room_id_or_alias: str, via: Sequence[str],
                    reason: str | None) -> str:
        room_id, servers = await self._target(room_id_or_alias, via)
        await self._out_of_band(user_id, room_id, "knock", servers, reason)
        return room_id

    async def _out_of_band(self, user_id: str, room_id: str, membership: str,
                           servers: list[str], reason: str | None) -> str:
        if not servers:
            _, servers = await self._target(room_id, [])
        server, template, rv = await self._make(servers, room_id, user_id, membership)
        content = await self._content(user_id, membership, reason, None) if (
            membership == "knock") else ({"reason": reason} if reason else {})
        pdu = self._sign(template, rv, user_id, content)
        try:
            resp = await self.client.put_json(
                # send_knock only exists as v1; send_leave's v2 is the current one.
                server, f"{FED}/{'v1' if membership == 'knock' else 'v2'}/send_{membership}"
                + encode_path(room_id, pdu.event_id),
                pdu.data)
        except FederationRequestError as exc:
            raise MatrixError(502, "M_UNKNOWN", f"send_{membership} failed: {exc}") from None
        data = dict(pdu.data)
        room_state = resp.get("knock_room_state") if isinstance(resp, dict) else None
        if membership == "knock" and isinstance(room_state, list):
            data["unsigned"] = {"knock_room_state": room_state}
        stored = PDU(data, rv, pdu.event_id)

        async def run() -> None:
            await self.rooms.pipeline.persist(
                [EventToPersist(stored, outlier=True)], room_id,
                {(MEMBER, user_id): stored.event_id})

        await self.rooms.pipeline.run_exclusive(room_id, run)
        return pdu.event_id

    # -- inviting a user of another server ----------------------------------------------

    async def invite(self, room_id: str, draft: Draft) -> str:
        """Build our invite on the room's writer, have the invitee's server counter-sign
        it (v2 /invite), then persist the counter-signed event."""
        target = draft.state_key
        assert target is not None
        invitee_server = domain(target)

        async def run() -> str:
            builder, delta = await self.rooms.pipeline._tip(room_id, [draft])
            pdu = builder.build(draft)
            builder.authorize(pdu)
            rv = builder.room_version
            body = {"event": pdu.data, "room_version": rv.identifier,
                    "invite_room_state": await stripped_state(
                        self.rooms, room_id, [(MEMBER, draft.sender)])}
            try:
                resp = await self.client.put_json(
                    invitee_server, f"{FED}/v2/invite" + encode_path(room_id, pdu.event_id), body)
            except HttpResponseError as exc:
                raise MatrixError(403 if exc.status == 403 else 502,
                                  exc.errcode or "M_UNKNOWN",
                                  f"Invite refused: {exc.error or exc.status}") from None
            except FederationRequestError as exc:
                raise MatrixError(502, "M_UNKNOWN", f"Invite failed: {exc}") from None
            signed = resp.get("event") if isinstance(resp, dict) else None
            if not isinstance(signed, dict):
                raise MatrixError(502, "M_UNKNOWN", "Bad invite response")
            signed = {k: v for k, v in signed.items() if k != "unsigned"}
            invite = PDU(signed, rv)
            if invite.event_id != pdu.event_id:
                raise MatrixError(502, "M_UNKNOWN", "The invitee's server altered the invite")
            await self._check_signed_by(signed, rv, invitee_server)
            builder.accept(invite)
            if delta is not None:
                delta = {**delta, invite.state_tuple: invite.event_id}
            await self.rooms.pipeline.persist(builder.accepted, room_id, delta)
            return invite.event_id

        result: str = await self.rooms.pipeline.run_exclusive(room_id, run)
        return result

    async def _check_signed_by(self, event: dict[str, Any], rv: RoomVersion, server: str
                               ) -> None:
        sigs = event.get("signatures", {}).get(server)
        if not isinstance(sigs, dict) or not sigs:
            raise MatrixError(502, "M_UNKNOWN", f"The invite is not signed by {server}")
        redacted = redact(event, rv)
        for kid in sigs:
            try:
                key, _ = await self.keyring.get_verify_key(server, kid)
                verify_signed_json(redacted, server, key)
                return
            except (KeyLookupError, SignatureVerifyError):
                continue
        raise MatrixError(502, "M_UNKNOWN", f"The invite's signature of {server} is invalid")
