"""``RoomHandler`` (``services.rooms``): what the client API and other handlers call to
create rooms, change memberships and send events.

Sends are idempotent per (user, device, room, txn ID): a retry that arrives while the
first attempt is still queued waits for the same result, and a retry after it committed
gets the stored event ID (``event_txn_ids``, written in the same transaction).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nacl.signing import SigningKey

from hs.core.pdu import PDU, StateKey
from hs.core.power_levels import get_named_level, get_room_creators, get_user_power_level
from hs.core.room_versions import RoomVersion, get_room_version
from hs.handlers.rooms import creation, upgrade
from hs.handlers.rooms import membership as members
from hs.handlers.rooms.pipeline import (
    CREATE,
    MEMBER,
    POWER_LEVELS,
    Draft,
    EventPipeline,
    SentEvent,
)
from hs.handlers.rooms.validation import (
    check_canonical_alias_content,
    check_content,
    check_field_sizes,
    check_power_levels_content,
)
from hs.http.errors import MatrixError, forbidden, not_found
from hs.storage.events.types import TxnKey

if TYPE_CHECKING:
    from hs.config import HomeserverConfig
    from hs.handlers.auth import Requester
    from hs.http.ratelimit import Ratelimiters
    from hs.notifier import Notifier
    from hs.storage.accounts import AccountStore
    from hs.storage.events import EventsStore

logger = logging.getLogger(__name__)


VERSION_CACHE_SIZE = 10_000


class RoomHandler:
    """Facade over the event pipeline, room creation, membership and upgrades."""

    def __init__(self, config: HomeserverConfig, events: EventsStore, notifier: Notifier,
                 accounts: AccountStore, ratelimiters: Ratelimiters,
                 signing_keys: Callable[[], list[SigningKey]], clock: Callable[[], int]
                 ) -> None:
        self.config = config
        self.server_name = config.server_name
        self.events = events
        self.accounts = accounts
        self.ratelimiters = ratelimiters
        self.clock = clock
        self.pipeline = EventPipeline(events, notifier, config.server_name, signing_keys, clock)
        self._inflight: dict[tuple[str, str, str, str], asyncio.Task[SentEvent]] = {}
        #: Room versions never change: a bounded cache saves a query per send.
        self._versions: OrderedDict[str, RoomVersion] = OrderedDict()
        #: Membership over federation (``hs.handlers.federation.remote.RemoteMembership``),
        #: set by ``Services``; None: rooms this server is not in cannot be joined.
        self.remote: Any = None

    # -- small shared helpers -----------------------------------------------------------

    def is_local(self, user_id: str) -> bool:
        return user_id.endswith(":" + self.server_name)

    async def room_version(self, room_id: str) -> RoomVersion:
        """The room's version; 404 M_NOT_FOUND for a room this server does not know."""
        rv = self._versions.get(room_id)
        if rv is not None:
            self._versions.move_to_end(room_id)
            return rv
        version = await self.events.get_room_version(room_id)
        if version is None:
            raise not_found(f"Unknown room {room_id}")
        rv = self._versions[room_id] = get_room_version(version)
        if len(self._versions) > VERSION_CACHE_SIZE:
            self._versions.popitem(last=False)
        return rv

    async def current_state(self, room_id: str, keys: list[StateKey]) -> dict[StateKey, PDU]:
        """The current state events at ``keys`` (missing keys left out)."""
        ids = await self.events.get_current_state_ids(room_id, keys)
        pdus = await self.events.get_events(list(ids.values()))
        return {k: pdus[e] for k, e in ids.items() if e in pdus}

    async def membership_of(self, room_id: str, user_id: str) -> PDU | None:
        state = await self.current_state(room_id, [(MEMBER, user_id)])
        return state.get((MEMBER, user_id))

    async def require_joined(self, room_id: str, user_id: str) -> dict[StateKey, PDU]:
        """403 unless ``user_id`` is joined; returns create/power levels/member state."""
        await self.room_version(room_id)
        state = await self.current_state(room_id, [CREATE, POWER_LEVELS, (MEMBER, user_id)])
        member = state.get((MEMBER, user_id))
        if member is None or member.membership != "join":
            raise forbidden(f"User {user_id} not in room {room_id}")
        return state

    # -- sending ------------------------------------------------------------------------

    async def send_event(self, requester: Requester, room_id: str, event_type: str,
                         content: dict[str, Any], *, state_key: str | None = None,
                         txn_id: str | None = None, redacts: str | None = None,
                         ratelimit: bool = True) -> str:
        """Send one event as ``requester``; returns its event ID.

        With ``txn_id`` the send is idempotent per (user, device, room, txn_id).
        Membership changes must go through ``update_membership``.
        """
        check_field_sizes(room_id=room_id, sender=requester.user_id, type=event_type,
                          state_key=state_key)
        check_content(content)
        if event_type == MEMBER and state_key is not None:
            raise MatrixError(400, "M_BAD_JSON",
                              "Use the membership endpoints to change m.room.member")
        if txn_id is None:
            return (await self._send_checked(requester, room_id, event_type, content,
                                             state_key, None, redacts, ratelimit)).event_id
        key = (requester.user_id, requester.device_id, room_id, txn_id)
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._send_txn(
                requester, room_id, event_type, content, state_key, txn_id, redacts, ratelimit))
            self._inflight[key] = task
            task.add_done_callback(lambda t: self._finished(key, t))
        return (await asyncio.shield(task)).event_id

    def _finished(self, key: tuple[str, str, str, str], task: asyncio.Task[SentEvent]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled():
            task.exception()  # seen, even if every waiter disconnected

    async def _send_txn(self, requester: Requester, room_id: str, event_type: str,
                        content: dict[str, Any], state_key: str | None, txn_id: str,
                        redacts: str | None, ratelimit: bool) -> SentEvent:
        # A retried transaction ID needs no read up front: its new event is deduplicated
        # by the persister (same transaction ID), which answers with the original. Only a
        # retry this attempt refuses (rate limit, membership or power changed since) reads
        # the earlier use, so that it still gets the original answer.
        txn = TxnKey(requester.user_id, requester.device_id, txn_id)
        try:
            return await self._send_checked(requester, room_id, event_type, content,
                                            state_key, txn, redacts, ratelimit)
        except MatrixError:
            try:
                existing = await self.events.event_id_for_txn(
                    requester.user_id, requester.device_id, room_id, txn_id)
            except Exception:
                logger.exception("reading transaction %s of %s failed", txn_id,
                                 requester.user_id)
                existing = None  # the refusal stands
            if existing is not None:
                return SentEvent(existing, 0, True)
            raise

    async def _send_checked(self, requester: Requester, room_id: str, event_type: str,
                            content: dict[str, Any], state_key: str | None,
                            txn: TxnKey | None, redacts: str | None, ratelimit: bool
                            ) -> SentEvent:
        if ratelimit and not requester.admin:
            self.ratelimiters["rc_message"].check(requester.user_id)
        rv = await self.room_version(room_id)
        if event_type == "m.room.redaction" and state_key is None:
            # /redact, or a redaction through /send (v11 puts ``redacts`` in content).
            # Checked after the txn lookup so that a retry gets the original answer.
            target = redacts if redacts is not None else content.get("redacts")
            if isinstance(target, str):
                await self.check_redaction_allowed(requester, room_id, target)
        if state_key is not None:
            await self._validate_state(room_id, rv, event_type, state_key, content)
        draft = Draft(event_type, requester.user_id, content, state_key, redacts, txn)
        return await self.pipeline.send(room_id, draft)

    async def _validate_state(self, room_id: str, rv: RoomVersion, event_type: str,
                              state_key: str, content: Mapping[str, Any]) -> None:
        if event_type == "m.room.power_levels" and state_key == "":
            state = await self.current_state(room_id, [CREATE])
            create = state.get(CREATE)
            creators = (get_room_creators(create) if create is not None
                        and rv.privileged_creators else frozenset())
            check_power_levels_content(content, rv, creators)
        elif event_type == "m.room.canonical_alias" and state_key == "":
            key = ("m.room.canonical_alias", "")
            previous = (await self.current_state(room_id, [key])).get(key)
            await check_canonical_alias_content(
                content, room_id, previous.content if previous is not None else {},
                self.events.rooms.get_alias)

    async def send_draft(self, room_id: str, draft: Draft) -> SentEvent:
        """Queue an already-validated draft (membership and upgrade use this)."""
        return await self.pipeline.send(room_id, draft)

    async def redact(self, requester: Requester, room_id: str, target_id: str,
                     reason: str | None, txn_id: str | None,
                     extra: Mapping[str, Any] | None = None) -> str:
        """``m.room.redaction`` of ``target_id``. Beyond the auth rules (which from v3 do
        not look at ``redacts``), the client-server rule applies: a user may redact their
        own events, others' only with the ``redact`` level (server-server "Redactions")."""
        content: dict[str, Any] = dict(extra or {})
        if reason is not None:
            content["reason"] = reason
        return await self.send_event(requester, room_id, "m.room.redaction", content,
                                     txn_id=txn_id, redacts=target_id)

    async def check_redaction_allowed(self, requester: Requester, room_id: str,
                                      target_id: str) -> None:
        """403 unless the requester is joined and may redact ``target_id``: their own
        events always, others' with the ``redact`` level. Unknown targets pass (the spec
        lets a redaction arrive before its target)."""
        state = await self.require_joined(room_id, requester.user_id)
        target = await self.events.get_event(target_id)
        if target is None or target.room_id != room_id or (
                target.sender == requester.user_id):
            return
        level = get_user_power_level(requester.user_id, state)
        pl = state.get(POWER_LEVELS)
        if level < get_named_level("redact", pl.content if pl is not None else None, 50):
            raise forbidden("You don't have permission to redact events sent by others")

    async def get_state_event(self, requester: Requester, room_id: str, event_type: str,
                              state_key: str) -> PDU:
        """The state event a member may read: the current one while joined, the one at
        their leave/ban after leaving (as Synapse does), current state of
        world-readable rooms; 403 otherwise, 404 when there is no such event."""
        await self.room_version(room_id)
        key = (event_type, state_key)
        hv_key = ("m.room.history_visibility", "")
        member_key = (MEMBER, requester.user_id)
        state = await self.current_state(room_id, [member_key, hv_key, key])
        member = state.get(member_key)
        membership = member.membership if member is not None else None
        if membership != "join":
            hv = state.get(hv_key)
            if membership in ("leave", "ban") and member is not None:
                ids = await self.events.get_state_ids_at(member.event_id, [key])
                eid = (ids or {}).get(key)
                event = await self.events.get_event(eid) if eid is not None else None
                if event is None:
                    raise not_found("Event not found")
                return event
            if hv is None or hv.content.get("history_visibility") != "world_readable":
                raise forbidden(f"User {requester.user_id} not in room {room_id}")
        event = state.get(key)
        if event is None:
            raise not_found("Event not found")
        return event

    async def close(self) -> None:
        await self.pipeline.close()

    # -- creation, membership, upgrade (in their own modules) ---------------------------

    async def create_room(self, requester: Requester, body: dict[str, Any]
                          ) -> tuple[str, str | None]:
        return await creation.create_room(self, requester, body)

    async def update_membership(self, requester: Requester, room_id: str, target: str,
                                membership: str, reason: str | None = None, *,
                                txn_id: str | None = None,
                                extra_content: Mapping[str, Any] | None = None,
                                ratelimit: bool = True) -> str:
        return await members.update_membership(
            self, requester, room_id, target, membership, reason, txn_id=txn_id,
            extra_content=extra_content, ratelimit=ratelimit)

    async def join(self, requester: Requester, room_id_or_alias: str,
                   reason: str | None = None, extra_content: Mapping[str, Any] | None = None,
                   via: Sequence[str] = ()) -> str:
        """Join by room ID or alias (``via``: servers to join through); returns the room ID."""
        return await members.join_room(self, requester, room_id_or_alias, reason, extra_content,
                                       via)

    async def propagate_profile(self, requester: Requester) -> list[str]:
        """After a displayname/avatar change, a fresh join event in every joined room
        (what Synapse does, so member lists show the new name). Rooms are done one after
        another: each needs its own event, and a user in many rooms must not flood the
        writers. Failures in one room (e.g. no longer allowed) do not stop the others.
        Returns the rooms updated."""
        updated = []
        for room in await self.events.get_rooms_for_user(requester.user_id):
            try:
                await self.update_membership(requester, room.room_id, requester.user_id,
                                             "join", ratelimit=False)
            except MatrixError:
                continue
            updated.append(room.room_id)
        return updated

    async def knock(self, requester: Requester, room_id_or_alias: str,
                    reason: str | None = None, via: Sequence[str] = ()) -> str:
        return await members.knock_room(self, requester, room_id_or_alias, reason, via)

    async def kick(self, requester: Requester, room_id: str, target: str,
                   reason: str | None = None) -> str:
        return await members.kick(self, requester, room_id, target, reason)

    async def unban(self, requester: Requester, room_id: str, target: str,
                    reason: str | None = None) -> str:
        return await members.unban(self, requester, room_id, target, reason)

    async def forget(self, requester: Requester, room_id: str) -> None:
        await members.forget_room(self, requester, room_id)

    async def upgrade(self, requester: Requester, room_id: str, new_version: str,
                      additional_creators: list[str] | None = None) -> str:
        return await upgrade.upgrade_room(self, requester, room_id, new_version,
                                          additional_creators)
