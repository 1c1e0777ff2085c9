"""``GET /sync``: initial and incremental sync, long-polling (spec client-server "Syncing").

Exactly once: every stream's ``current()`` is read *first* into ``upto``; every read is
bounded by it and ``upto`` becomes ``next_batch``. An event committed while a sync is being
computed has a position above ``upto`` and so belongs to the next range, never to two.

Incremental cost does not grow with the user's room count: one query finds the rooms with
new events on the whole events range, one reads the user's membership changes (which also
revalidates the cached room list), and receipts, typing and account data each give their
changed rooms; only those rooms are built. Streams that did not move since the token are
not queried at all.

Long-polling: the waiter is registered on the notifier (keyed by the user's rooms and the
user) *before* the bounds are read, so a write that lands after that wakes it; a token
that already covers every stream waits without computing, an empty result waits and
recomputes until the timeout, then answers the ``since`` token unchanged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hs.handlers.auth import Requester
from hs.handlers.filters import Filter
from hs.handlers.presence import STATES
from hs.handlers.sync import extensions
from hs.handlers.sync.caches import RangeReads, RecentTimelines, UserRoomsCache
from hs.handlers.sync.queries import (
    MembershipChange,
    all_membership_changes,
    changed_rooms,
    membership_at,
    membership_changes,
    no_member_deltas,
    recent_changed_rooms,
    recent_membership_changes,
)
from hs.handlers.sync.rooms import RoomBuilder, SyncRequest, apply_unread
from hs.handlers.sync.tokens import SyncToken
from hs.http.errors import invalid_param
from hs.storage.account_data import AccountDataChanges
from hs.storage.events.recent import RecentWrites

if TYPE_CHECKING:
    from hs.app import Services

logger = logging.getLogger(__name__)
#: Longest long-poll honoured (ms); clients ask for 30 s.
MAX_TIMEOUT_MS = 5 * 60_000
#: How often a long-poll with nothing to wake it checks that its client is still there.
GONE_CHECK_INTERVAL_S = 5.0
#: Events ranges up to this long read every user's membership changes at once (shared by
#: the requests of one wake-up); longer ones ask for the one user's.
SHARED_RANGE = 1000
#: Rooms built at once (bounds concurrent database work of one initial sync).
_PARALLEL_ROOMS = 8
ROOM_MEMBERSHIPS = ("join", "invite", "knock", "leave", "ban")


@dataclass(frozen=True, slots=True)
class SyncParams:
    since: str | None = None
    timeout_ms: int = 0
    full_state: bool = False
    set_presence: str = "online"
    filter_param: str | None = None
    #: True once the client has hung up: a long-poll then stops without computing a
    #: response nobody will read (clients abandon long-polls all the time).
    client_gone: Callable[[], bool] | None = None


class SyncHandler:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.timelines = RecentTimelines(services.events)
        self.user_rooms = UserRoomsCache()
        self.rooms = RoomBuilder(services, self.timelines)
        #: This process's recent event writes: short ranges are read from memory.
        self.recent: RecentWrites | None = services.events.recent
        #: Rooms with events in an events range (room -> newest position).
        self._changed: RangeReads[dict[str, int]] = RangeReads(self._read_changed, 1024)
        #: Every user's membership changes in a short events range.
        self._members: RangeReads[dict[str, list[MembershipChange]]] = RangeReads(
            self._read_members, 64)
        #: (user, device) -> to-device position already acknowledged (deleted up to).
        self._acked: dict[tuple[str, str], int] = {}

    # -- positions --------------------------------------------------------------------------

    def upper_bounds(self) -> SyncToken:
        """Every stream's readable position, read before anything else."""
        streams = self.services.streams
        return SyncToken(
            events=self.services.events.max_stream_ordering(),
            presence=streams["presence"].current(),
            typing=streams["typing"].current(),
            receipts=streams["receipts"].current(),
            account_data=streams["account_data"].current(),
            to_device=streams["to_device"].current(),
            device_lists=streams["device_lists"].current(),
            push_rules=streams["push_rules"].current(),
        )

    async def _memberships(self, user_id: str, since: int, upto: int
                           ) -> tuple[dict[str, tuple[str, str, int]], list[MembershipChange]]:
        """The user's rooms as of ``upto`` (room -> membership, event, position) and its
        membership changes in ``(since, upto]``; the room list comes from the cache when no
        membership change happened after the cached position."""
        cached = self.user_rooms.get(user_id)
        low = since if cached is None else min(since, cached[0])
        changes = await self._membership_changes(user_id, low, upto)
        if cached is not None and cached[0] <= upto and not any(
                c.stream_ordering > cached[0] for c in changes):
            rooms = cached[1]
        else:
            found = await self.services.events.get_rooms_for_user(user_id, ROOM_MEMBERSHIPS)
            rooms = {r.room_id: (r.membership, r.event_id, r.stream_ordering) for r in found
                     if r.stream_ordering <= upto}
            newer = [r.room_id for r in found if r.stream_ordering > upto]
            # Memberships that changed after the bounds were read: use the one in force
            # at ``upto`` (the change itself belongs to the next sync).
            for room_id in newer:
                before = await membership_at(self.services.db, user_id, room_id, upto)
                if before is not None:
                    rooms[room_id] = (before.membership, before.event_id,
                                      before.stream_ordering)
            if not newer:
                self.user_rooms.set(user_id, upto, rooms)
        return rooms, [c for c in changes if c.stream_ordering > since]

    async def watched_rooms(self, user_id: str) -> list[str]:
        """Rooms whose events wake the user's long-poll. A cached list may be a little
        old, which is harmless: a membership change notifies the user key itself (and a
        room left since only causes a spare wake-up)."""
        cached = self.user_rooms.get(user_id)
        if cached is None:
            top = self.services.events.max_stream_ordering()
            rooms, _ = await self._memberships(user_id, top, top)
        else:
            rooms = cached[1]
        return [r for r, (m, _, _) in rooms.items() if m == "join"]

    # -- entry point ------------------------------------------------------------------------

    async def sync(self, requester: Requester, params: SyncParams) -> dict[str, Any]:
        user_id, device_id = requester.user_id, requester.device_id
        if params.set_presence not in STATES:
            raise invalid_param(f"set_presence must be one of {', '.join(STATES)}")
        flt = await self.services.filters.resolve(user_id, params.filter_param)
        since = SyncToken.parse(params.since) if params.since else None
        await self.services.presence.on_sync(user_id, params.set_presence)
        if since is not None and since.to_device > self._acked.get((user_id, device_id), 0):
            # The client got everything up to the token it presents (spec: to-device
            # messages are deleted once the next sync is requested with that token).
            # Remembered per device so a long-polling loop does not delete (write) on
            # every request when nothing new was delivered.
            await self.services.to_device.ack_to_device(user_id, device_id, since.to_device)
            if len(self._acked) >= 100_000:
                self._acked.clear()
            self._acked[(user_id, device_id)] = since.to_device
        timeout_s = min(max(params.timeout_ms, 0), MAX_TIMEOUT_MS) / 1000
        if since is None or params.full_state or timeout_s <= 0:
            body, _ = await self._compute(user_id, device_id, flt, since, params.full_state)
            return body
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        gone = params.client_gone
        while True:
            rooms = await self.watched_rooms(user_id)
            with self.services.notifier.watch(rooms=rooms, users=[user_id]) as waiter:
                # A client that got everything comes straight back with its token: when
                # no stream moved past it the answer is empty by construction, so wait
                # without computing it (half the work of a busy long-polling population).
                if not since.covers(self.upper_bounds()):
                    body, empty = await self._compute(user_id, device_id, flt, since, False)
                    if not empty:
                        return body
                while True:
                    remaining = deadline - loop.time()
                    woken = remaining > 0 and await waiter.wait(
                        min(remaining, GONE_CHECK_INTERVAL_S))
                    if gone is not None and gone():
                        return {"next_batch": str(since)}  # never sent: the client left
                    if woken or loop.time() >= deadline:
                        break
                if not woken:
                    # Timed out: the unchanged token, with the key counts of now.
                    body, _ = await self._compute(user_id, device_id, flt, since, False)
                    return body

    # -- computing --------------------------------------------------------------------------

    async def _compute(self, user_id: str, device_id: str, flt: Filter,
                       since_token: SyncToken | None, full_state: bool
                       ) -> tuple[dict[str, Any], bool]:
        """The response for the range ``(since, upto]`` and whether it carries nothing."""
        upto = self.upper_bounds()
        since = since_token.capped(upto) if since_token is not None else None
        # ``full_state`` lists every room with its whole state, as an initial sync does,
        # but timelines and the other sections still cover only ``(since, upto]``.
        initial = since is None or full_state
        base = since if since is not None else SyncToken()
        ev_since = None if since is None else base.events

        # Independent reads run concurrently (the pool / SQLite readers serve them in
        # parallel); each is bounded by ``upto`` so their order does not matter.
        extras = asyncio.ensure_future(self._extras(user_id, device_id, flt, base, upto,
                                                    since is not None))
        ad_task = asyncio.ensure_future(self._account_data(user_id, base, upto))
        changed_task: asyncio.Future[set[str]] | None = None
        if not initial and base.events < upto.events:
            changed_task = asyncio.ensure_future(self._changed_rooms(base.events, upto.events))
        pending: list[asyncio.Future[Any]] = [extras, ad_task]
        if changed_task is not None:
            pending.append(changed_task)
        try:
            return await self._compute_rooms(
                user_id, device_id, flt, since, base, upto, full_state, initial, ev_since,
                extras, ad_task, changed_task)
        finally:
            for task in pending:
                if not task.done():
                    task.cancel()

    async def _account_data(self, user_id: str, base: SyncToken, upto: SyncToken
                            ) -> AccountDataChanges | None:
        if base.account_data >= upto.account_data:
            return None
        return await self.services.account_data.account_data_since(
            base.account_data, user_id, upto.account_data)

    async def _receipts(self, user_id: str, joined: list[str], base: SyncToken,
                        upto: SyncToken) -> dict[str, dict[str, Any]]:
        if base.receipts >= upto.receipts:
            return {}
        return await self.services.receipts.store.receipts_since(
            base.receipts, joined, user_id, upto.receipts)

    async def _extras(self, user_id: str, device_id: str, flt: Filter, base: SyncToken,
                      upto: SyncToken, incremental: bool) -> tuple[dict[str, Any], int]:
        """Presence, to-device, device lists and key counts, and the to-device position
        for the next token."""
        s = self.services
        presence: list[dict[str, Any]] = []
        if base.presence < upto.presence:
            presence = [e for e in await s.presence.for_sync(user_id, base.presence,
                                                             upto.presence)
                        if flt.presence.matches(e)]
        messages, to_device_pos = await extensions.to_device(
            s, user_id, device_id, base.to_device, upto.to_device)
        lists: dict[str, list[str]] = {"changed": [], "left": []}
        if incremental:
            # Who newly shares a room (or no longer does) only moves with membership
            # state; when the recent writes show none, skip that part of the check.
            events_from = base.events
            if no_member_deltas(self.recent, base.events, upto.events):
                events_from = upto.events
            lists = await extensions.device_lists(s, user_id, base.device_lists,
                                                  upto.device_lists, events_from, upto.events)
        out: dict[str, Any] = {"presence": {"events": presence},
                               "to_device": {"events": messages}, "device_lists": lists}
        out.update(await extensions.key_counts(s, user_id, device_id))
        return out, to_device_pos

    async def _compute_rooms(
        self, user_id: str, device_id: str, flt: Filter, since: SyncToken | None,
        base: SyncToken, upto: SyncToken, full_state: bool, initial: bool,
        ev_since: int | None, extras_task: asyncio.Future[tuple[dict[str, Any], int]],
        ad_task: asyncio.Future[AccountDataChanges | None],
        changed_task: asyncio.Future[set[str]] | None,
    ) -> tuple[dict[str, Any], bool]:
        s = self.services
        rooms, changes = await self._memberships(user_id, base.events, upto.events)
        joined = [r for r, (m, _, _) in rooms.items() if m == "join"]
        req = SyncRequest(user_id, device_id, flt, ev_since, upto.events, full_state)
        if initial:
            req.typing = {r: u for r in joined if (u := s.typing.get_typing(r))}
        elif base.typing < upto.typing:
            req.typing = s.typing.typing_changes_since(base.typing, joined)

        # Invites from ignored users are hidden and forgotten rooms never come back in
        # "leave" (both as Synapse does); each set is only read when it can matter.
        ignored: set[str] = set()
        if any(m == "invite" for m, _, _ in rooms.values()):
            ignored = await s.timeline.ignored_users(user_id)
        forgotten: set[str] = set()
        reader = getattr(s.events.rooms, "get_forgotten_rooms", None)
        if reader is not None and any(m in ("leave", "ban") for m, _, _ in rooms.values()):
            forgotten = set(await reader(user_id))
        ad, req.receipts = await asyncio.gather(ad_task, self._receipts(user_id, joined, base,
                                                                      upto))
        req.account_data = ad.rooms if ad is not None else {}

        room_flt = flt.room
        join: dict[str, Any] = {}
        invite: dict[str, Any] = {}
        knock: dict[str, Any] = {}
        leave: dict[str, Any] = {}
        jobs: list[tuple[dict[str, Any], str, Awaitable[dict[str, Any] | None]]] = []
        #: Joined rooms to build and their ``since`` (None: the whole room).
        joins: list[tuple[str, int | None]] = []

        if initial:
            newly = {c.room_id for c in changes if c.membership == "join"}
            for room_id, (membership, event_id, pos) in rooms.items():
                if not room_flt.allows_room(room_id):
                    continue
                if membership == "join":
                    joins.append((room_id, None if room_id in newly else ev_since))
                elif membership == "invite":
                    jobs.append((invite, room_id, self.rooms.invited(room_id, event_id,
                                                                     ignored)))
                elif membership == "knock":
                    jobs.append((knock, room_id, self.rooms.knocked(room_id, event_id)))
                elif room_flt.include_leave and room_id not in forgotten:
                    jobs.append((leave, room_id, self.rooms.left(req, room_id, ev_since, pos)))
        else:
            latest: dict[str, MembershipChange] = {c.room_id: c for c in changes}
            newly_joined = {r for r, c in latest.items() if c.membership == "join"
                            and rooms.get(r, ("",))[0] == "join"}
            candidates: set[str] = set()
            if changed_task is not None:
                candidates |= await changed_task
            candidates |= req.account_data.keys() | req.receipts.keys() | req.typing.keys()
            for room_id in sorted(candidates | newly_joined):
                if not room_flt.allows_room(room_id):
                    continue
                if rooms.get(room_id, ("",))[0] != "join":
                    continue
                joins.append((room_id, None if room_id in newly_joined else base.events))
            for room_id, change in latest.items():
                if not room_flt.allows_room(room_id) or room_id in newly_joined:
                    continue
                current = rooms.get(room_id, ("",))[0]
                if change.membership == "invite" and current == "invite":
                    jobs.append((invite, room_id, self.rooms.invited(room_id, change.event_id,
                                                                     ignored)))
                elif change.membership == "knock" and current == "knock":
                    jobs.append((knock, room_id, self.rooms.knocked(room_id, change.event_id)))
                elif change.membership in ("leave", "ban") and current in ("leave", "ban") \
                        and room_id not in forgotten:
                    jobs.append((leave, room_id, self.rooms.left(
                        req, room_id, base.events, change.stream_ordering)))

        _, built, unread = await asyncio.gather(
            self._run(jobs), self.rooms.joined_many(req, joins),
            self._unread_counts(user_id, [r for r, _ in joins], upto.events))
        join.update(built)
        split = flt.room.timeline.unread_thread_notifications
        for room_id, entry in join.items():
            apply_unread(entry, unread.get(room_id) or {}, split)

        body: dict[str, Any] = {"next_batch": "", "rooms": {}}
        for name, section in (("join", join), ("invite", invite), ("knock", knock),
                              ("leave", leave)):
            if section:
                body["rooms"][name] = section
        global_data = dict(ad.global_data) if ad else {}
        if initial or base.push_rules < upto.push_rules:
            rules = await self._push_rules(user_id, None if initial else base.push_rules)
            if rules is not None:
                global_data["m.push_rules"] = rules
        global_ad = [{"type": t, "content": c} for t, c in global_data.items()
                     if flt.account_data.matches({"type": t})]
        body["account_data"] = {"events": global_ad}
        extras, to_device_pos = await extras_task
        body.update(extras)

        lists = extras["device_lists"]
        empty = not (body["rooms"] or global_ad or extras["presence"]["events"]
                     or extras["to_device"]["events"] or lists["changed"] or lists["left"])
        next_token = upto.with_to_device(to_device_pos)
        if empty and since is not None and not initial:
            # Nothing for this user: hand back the token it sent (as a timed-out long-poll
            # does), so an idle client's token does not churn.
            next_token = since
        body["next_batch"] = str(next_token)
        return body, empty

    async def _membership_changes(self, user_id: str, since: int, upto: int
                                  ) -> list[MembershipChange]:
        """The user's membership events in ``(since, upto]``: from one read shared by
        every request for the same short range (as ``_changed_rooms``)."""
        if since >= upto:
            return []
        if upto - since > SHARED_RANGE:
            return await membership_changes(self.services.db, user_id, since, upto)
        return list((await self._members.get(since, upto)).get(user_id, ()))

    async def _read_changed(self, since: int, upto: int) -> dict[str, int]:
        found = recent_changed_rooms(self.recent, since, upto)
        return found if found is not None else await changed_rooms(
            self.services.db, since, upto)

    async def _read_members(self, since: int, upto: int
                            ) -> dict[str, list[MembershipChange]]:
        found = recent_membership_changes(self.recent, since, upto)
        return found if found is not None else await all_membership_changes(
            self.services.db, since, upto)

    async def _changed_rooms(self, since: int, upto: int) -> set[str]:
        """Rooms with events in ``(since, upto]`` (one read per range: ``RangeReads``)."""
        return set(await self._changed.get(since, upto))

    async def _push_rules(self, user_id: str, since: int | None) -> dict[str, Any] | None:
        """``m.push_rules`` content from the push service (helper S2) when it changed."""
        reader = getattr(getattr(self.services, "push", None), "rules_for_sync", None)
        if reader is None:
            return None
        rules: dict[str, Any] | None = await reader(user_id, since)
        return rules

    async def _unread_counts(self, user_id: str, room_ids: list[str], upto: int
                             ) -> dict[str, dict[str, Any]]:
        """Per-room unread counts from the push service's actions (none without one)."""
        push = getattr(self.services, "push", None)
        reader = getattr(push, "unread_counts", None)
        if reader is None or not room_ids:
            return {}
        # Push actions are written after the wake-up: wait for those of the events up to
        # ``upto`` (the other reads of this sync went on meanwhile).
        pipeline = getattr(getattr(self.services, "rooms", None), "pipeline", None)
        if pipeline is not None:
            await pipeline.hooks_settled(upto)
        try:
            counts: dict[str, dict[str, Any]] = await reader(user_id, room_ids)
        except Exception:
            logger.exception("sync: unread counts failed; serving zeros")
            return {}
        return counts

    async def _run(self, jobs: list[tuple[dict[str, Any], str,
                                          Awaitable[dict[str, Any] | None]]]) -> None:
        """Build rooms a few at a time; entries that turn out empty are left out."""
        sem = asyncio.Semaphore(_PARALLEL_ROOMS)

        async def one(target: dict[str, Any], room_id: str,
                      job: Awaitable[dict[str, Any] | None]) -> None:
            async with sem:
                entry = await job
            if entry is not None:
                target[room_id] = entry

        await asyncio.gather(*(one(t, r, j) for t, r, j in jobs))


__all__ = ["MAX_TIMEOUT_MS", "SyncHandler", "SyncParams"]
