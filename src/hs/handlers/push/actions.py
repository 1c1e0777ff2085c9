"""Bulk push-action evaluation: after a batch of events is persisted, which local users
does each event notify or highlight (client-server "Push Rules", "Server behaviour":
"homeservers process push rules for each of the local users in the room (excluding the
sender)").

Per batch: the room's joined members (with their display names) and its create and power
levels events, cached per room until the room pipeline reports a possible current-state
change (``forget_room``), and the recipients' compiled rules (cached by (user, rules
version)). Per event: one
``flatten_event``; per (event, recipient): one native ``evaluate_result`` with a
``PushContext`` shared by recipients of the same display name.

What is written is O(1) per typical event, whatever the room size: the event's most
common outcome as one default row, rows only for the recipients whose outcome differs
(``outcomes``), and the batch's local member set, which the default rows of the batch's
events cover (stored as spans, rewritten only when it changed). The senders' own read
positions go in the same batched write (sending an event marks what precedes it as read).
It runs right after the pipeline wakes /sync, whose unread counts wait for it
(``EventPipeline.hooks_settled``), so the new counts appear in the same response as the
event (spec: "MUST appear in the same /sync response as the event itself"). On PostgreSQL
a batch of messages is evaluated before it is persisted instead (``plan``) and its rows
ride on the persister's statement (``precommit``): they commit with the events, and the
woken /sync has no write to wait for. Whatever that path could not write (a member set
changed, the combined statement failed) the post-persist hook still writes.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hs.core.pdu import PDU
from hs.core.power_levels import user_power_level
from hs.core.push_rules import PushContext, evaluate_result, flatten_event
from hs.handlers.push.outcomes import NOTHING, Outcome, OutcomeCodec, split
from hs.handlers.push.rules import PushRulesHandler
from hs.storage.events import EventsStore
from hs.storage.events.cache import LruCache
from hs.storage.events.persist import Precommit
from hs.storage.events.types import EventToPersist, PersistedEvent
from hs.storage.push import MAIN_THREAD, ActionRow, DefaultRow, PushActionsStore
from hs.storage.push.member_spans import MemberSet, member_set

logger = logging.getLogger(__name__)

CREATE = ("m.room.create", "")
POWER_LEVELS = ("m.room.power_levels", "")
#: Spec "Threading"/push: follow relations at most this many hops to find a thread root.
MAX_THREAD_HOPS = 3
#: The event fields rules may look at (hashes, signatures and DAG fields are skipped).
_EVENT_KEYS = ("type", "sender", "room_id", "state_key", "content", "redacts")
#: PushContext takes an int; v12 room creators have infinite power.
_MAX_LEVEL = 2**53 - 1
#: One evaluated event: (pdu, stream ordering, (user, outcome) of the joined members but
#: the sender, (user, outcome) of recipients that are not joined: a local invitee).
Evaluated = tuple[PDU, int, list[tuple[str, Outcome]], list[tuple[str, Outcome]]]
#: Rooms whose members and power levels are kept.
ROOM_FACTS_CACHE = 512
#: Planned batches kept until their post-persist hook (older ones are dropped).
MAX_PLANS = 1024
#: Sender levels whose recipient lists a room's facts keep.
MAX_KEPT_LEVELS = 4


@dataclass(slots=True)
class _Plan:
    """A batch evaluated before it was persisted (``PushActionsHandler.plan``): rows with
    1-based batch indexes where the positions go."""

    event_ids: list[str]
    defaults: list[DefaultRow]
    rows: list[ActionRow]
    reads: list[tuple[str, str, str, int]]
    members: MemberSet
    #: Set by the persister: whether the rows committed with the events.
    written: bool = False


@dataclass(frozen=True, slots=True)
class _RoomFacts:
    """What evaluating a room's events needs of its current state (read-only)."""

    members: Mapping[str, Any]  # joined: user -> Member
    create: PDU | None
    power: PDU | None
    #: sender level -> (user, compiled rules, context) of every local joined member: a
    #: room's next batch reuses them while each member's compiled rules are the same
    #: objects (contexts depend only on these facts and the sender level).
    recipients: dict[int, list[tuple[str, Any, PushContext]]] = field(
        default_factory=dict, compare=False)


def _relation(content: Any) -> tuple[str | None, str | None]:
    """(rel_type, event_id) of ``content["m.relates_to"]``."""
    if not isinstance(content, Mapping):
        return None, None
    rel = content.get("m.relates_to")
    if not isinstance(rel, Mapping):
        return None, None
    rel_type, target = rel.get("rel_type"), rel.get("event_id")
    return (rel_type if isinstance(rel_type, str) else None,
            target if isinstance(target, str) else None)


class PushActionsHandler:
    def __init__(self, server_name: str, events: EventsStore, rules: PushRulesHandler,
                 store: PushActionsStore, clock: Callable[[], int]) -> None:
        self.suffix = ":" + server_name
        self.events = events
        self.rules = rules
        self.store = store
        self.clock = clock
        #: Totals for the cost measurement: evaluations done and seconds spent in them.
        self.evaluations = 0
        self.eval_seconds = 0.0
        self._facts: LruCache[str, _RoomFacts] = LruCache(ROOM_FACTS_CACHE)
        #: Bumped by every ``forget_room``: a read that raced one is not kept.
        self._epoch = 0
        #: First event ID of a planned batch -> its plan (``plan``).
        self._plans: OrderedDict[str, _Plan] = OrderedDict()

    def forget_room(self, room_id: str) -> None:
        """``EventPipeline.on_state_changed``: the room's current state may have moved."""
        self._epoch += 1
        self._facts.invalidate([room_id])

    async def _room_facts(self, room_id: str) -> _RoomFacts:
        facts = self._facts.get(room_id)
        if facts is not None:
            return facts
        epoch = self._epoch
        members = await self.events.get_members(room_id, ["join"])
        state_ids = await self.events.get_current_state_ids(room_id, [CREATE, POWER_LEVELS])
        state = await self.events.get_events(list(state_ids.values()))
        facts = _RoomFacts(members, state.get(state_ids.get(CREATE, "")),
                           state.get(state_ids.get(POWER_LEVELS, "")))
        if epoch == self._epoch:
            self._facts.set(room_id, facts)
        return facts

    async def thread_of(self, pdu: PDU) -> str:
        """The thread root's event ID, or ``main``: the event's own ``m.thread`` relation,
        else (reactions, edits, ...) the related events' thread, up to 3 hops."""
        content: Any = pdu.content
        for _ in range(MAX_THREAD_HOPS):
            rel_type, target = _relation(content)
            if target is None:
                return MAIN_THREAD
            if rel_type == "m.thread":
                return target
            parent = await self.events.get_event(target)
            if parent is None:
                return MAIN_THREAD
            content = parent.content
        return MAIN_THREAD

    async def on_persisted(self, room_id: str, batch: Sequence[EventToPersist],
                           results: Sequence[PersistedEvent]) -> None:
        """The room pipeline's post-persist hook (see the module docstring)."""
        todo = [(e.pdu, r.stream_ordering) for e, r in zip(batch, results, strict=True)
                if not r.deduplicated and not e.excluded and not e.backfilled]
        if not todo:
            return
        plan = self._plans.pop(todo[0][0].event_id, None)
        if plan is not None and plan.written:
            return  # committed with the events (``precommit``)
        defaults, rows, reads, covered = await self._batch_rows(room_id, todo)
        await self.store.add(rows, reads, defaults=defaults, members=[covered])

    async def _batch_rows(self, room_id: str, todo: list[tuple[PDU, int]]
                          ) -> tuple[list[DefaultRow], list[ActionRow],
                                     list[tuple[str, str, str, int]], MemberSet]:
        """Default rows, exception rows, sender read positions and the member set of the
        events ``todo`` (with their positions) of one room's batch."""
        sender_reads: dict[tuple[str, str, str], int] = {}
        facts = await self._room_facts(room_id)
        members = facts.members
        joined = [u for u in members if u.endswith(self.suffix)]
        invited = {p.state_key for p, _ in todo
                   if p.type == "m.room.member" and p.membership == "invite"
                   and isinstance(p.state_key, str) and p.state_key.endswith(self.suffix)
                   and p.state_key not in members}
        rows: list[ActionRow] = []
        defaults: list[DefaultRow] = []
        senders = {p.sender for p, _ in todo}
        if invited or any(u not in senders for u in joined) or len(senders) > 1:
            defaults, rows = await self._evaluate(room_id, todo, facts, joined, invited)
        for pdu, pos in todo:
            if pdu.sender.endswith(self.suffix):
                key = (pdu.sender, room_id, await self.thread_of(pdu))
                sender_reads[key] = max(sender_reads.get(key, 0), pos)
        # The default rows of this batch cover exactly ``joined`` (the set every event of
        # the batch was evaluated for), from the batch's first position on.
        covered = member_set(room_id, min(pos for _, pos in todo), joined)
        return defaults, rows, [(*k, v) for k, v in sender_reads.items()], covered

    # -- committed with the events (PostgreSQL) ---------------------------------------------

    async def plan(self, room_id: str, batch: Sequence[EventToPersist]) -> None:
        """The room pipeline's before-persist hook: evaluate a batch of messages now, so
        that its rows commit in the persister's own statement (``precommit``) and a woken
        /sync reads the new unread counts without waiting for a write of their own.
        Positions are not known yet: the batch's 1, 2, ... stand in for them (the
        positions of one batch increase in batch order, so maxima and minima carry
        over). Batches with state events (their facts change with them) or relations
        within the batch (a thread is found through stored events) are left to
        ``on_persisted``."""
        todo = [(e.pdu, i + 1) for i, e in enumerate(
            e for e in batch if not e.excluded and not e.backfilled)]
        if not todo or any(p.is_state() for p, _ in todo):
            return
        ids = {p.event_id for p, _ in todo}
        if any(_relation(p.content)[1] in ids for p, _ in todo):
            return
        defaults, rows, reads, covered = await self._batch_rows(room_id, todo)
        self._plans[todo[0][0].event_id] = _Plan(
            [p.event_id for p, _ in todo], defaults, rows, reads, covered)
        while len(self._plans) > MAX_PLANS:  # batches that failed never come back
            self._plans.popitem(last=False)

    def precommit(self, batch: Sequence[EventToPersist], positions: Sequence[int]
                  ) -> Precommit | None:
        """``EventPersister.precommit``: the planned rows of the batches in ``batch`` (a
        group commit may hold several rooms'), with their real positions."""
        pos_of = {e.pdu.event_id: p for e, p in zip(batch, positions, strict=True)}
        plans = [plan for e in batch if (plan := self._plans.get(e.pdu.event_id)) is not None
                 and all(eid in pos_of for eid in plan.event_ids)]
        if not plans:
            return None
        defaults: list[DefaultRow] = []
        rows: list[ActionRow] = []
        reads: list[tuple[str, str, str, int]] = []
        sets: list[MemberSet] = []
        for plan in plans:
            real = [pos_of[eid] for eid in plan.event_ids]
            defaults += [d._replace(stream_ordering=real[d.stream_ordering - 1])
                         for d in plan.defaults]
            rows += [(*r[:2], real[r[2] - 1], *r[3:])  # type: ignore[misc]
                     for r in plan.rows]
            reads += [(u, room, thread, real[pos - 1]) for u, room, thread, pos in plan.reads]
            sets.append(plan.members)

        # Unread counts cached for these rooms move only once the rows are known to be in.
        change = self.store.unread.begin({m.room_id for m in sets})

        def done(written: bool) -> None:
            for plan in plans:
                plan.written = written
            if written:
                change.applied(defaults, rows, reads, sets)  # type: ignore[arg-type]
            else:
                # Not written (a member set changed: the hook writes them) or failed.
                change.unsure()

        ctes, args = PushActionsStore.unchanged_sets_ctes_pg(
            defaults, rows, reads, sets, gate="(SELECT ok FROM f)")
        return Precommit(ctes, args, "chk", done)

    async def _evaluate(self, room_id: str, todo: list[tuple[PDU, int]],
                        facts: _RoomFacts, joined: list[str], invited: set[str]
                        ) -> tuple[list[DefaultRow], list[ActionRow]]:
        compiled = await self.rules.compiled_for([*joined, *invited])
        members, create, power = facts.members, facts.create, facts.power
        levels = power.content.get("notifications") if power is not None else None
        notification_levels = levels if isinstance(levels, Mapping) else None
        count = len(members)
        started = time.perf_counter()
        evaluations = 0
        codec = OutcomeCodec()
        pending: list[Evaluated] = []
        #: Per sender level: (user, compiled rules, context) of every joined recipient.
        #: Contexts differ only by display name and sender level: shared across the batch.
        contexts: dict[tuple[int, str | None], PushContext] = {}
        targets: dict[int, list[tuple[str, Any, PushContext]]] = {}

        def context(sender_level: int, name: str | None) -> PushContext:
            ctx = contexts.get((sender_level, name))
            if ctx is None:
                ctx = PushContext(count, sender_level, notification_levels, name)
                contexts[(sender_level, name)] = ctx
            return ctx

        for pdu, pos in todo:
            data = pdu.data
            flat = flatten_event({k: data[k] for k in _EVENT_KEYS if k in data})
            level = user_power_level(pdu.sender, create, power)
            sender_level = int(min(level, _MAX_LEVEL))
            recipients = targets.get(sender_level)
            if recipients is None:
                kept = facts.recipients.get(sender_level)
                if (kept is not None and len(kept) == len(joined)
                        and all(rules is compiled[u] for u, rules, _ in kept)):
                    recipients = kept
                else:
                    recipients = [
                        (u, compiled[u], context(sender_level, members[u].displayname))
                        for u in joined]
                    if len(facts.recipients) < MAX_KEPT_LEVELS:
                        facts.recipients[sender_level] = recipients
                targets[sender_level] = recipients
            extra: list[tuple[str, Outcome]] = []
            if pdu.type == "m.room.member" and pdu.state_key in invited:
                invitee = pdu.state_key
                result = evaluate_result(compiled[invitee], flat, context(sender_level, None))
                evaluations += 1
                extra.append((invitee, codec.outcome(result)))
            outs: list[tuple[str, Outcome]] = []
            sender = pdu.sender
            for user_id, rules, ctx in recipients:
                if user_id == sender:
                    continue
                outs.append((user_id, codec.outcome(evaluate_result(rules, flat, ctx))))
            evaluations += len(outs)
            pending.append((pdu, pos, outs, extra))
        self.evaluations += evaluations
        self.eval_seconds += time.perf_counter() - started
        return await self._rows(room_id, pending)

    async def _rows(self, room_id: str, pending: Sequence[Evaluated]
                    ) -> tuple[list[DefaultRow], list[ActionRow]]:
        """Default and exception rows of evaluated events (``outcomes.split``)."""
        now = self.clock()
        defaults: list[DefaultRow] = []
        rows: list[ActionRow] = []
        for pdu, pos, outs, extra in pending:
            default, exceptions = split(outs, extra)
            if default == NOTHING and not exceptions:
                continue
            thread_id = await self.thread_of(pdu)
            event_id = pdu.event_id
            if default != NOTHING:
                defaults.append(DefaultRow(pos, room_id, event_id, thread_id, pdu.sender,
                                           *default, now))
            # Plain tuples in ActionRow's column order (no NamedTuple constructor per row).
            rows += [(user_id, room_id, pos, event_id, thread_id,  # type: ignore[misc]
                      *out, now) for user_id, out in exceptions]
        return defaults, rows


__all__ = ["PushActionsHandler"]
