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
event (spec: "MUST appear in the same /sync response as the event itself").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hs.core.pdu import PDU
from hs.core.power_levels import user_power_level
from hs.core.push_rules import PushContext, evaluate_result, flatten_event
from hs.handlers.push.outcomes import NOTHING, Outcome, OutcomeCodec, split
from hs.handlers.push.rules import PushRulesHandler
from hs.storage.events import EventsStore
from hs.storage.events.cache import LruCache
from hs.storage.events.types import EventToPersist, PersistedEvent
from hs.storage.push import MAIN_THREAD, ActionRow, DefaultRow, PushActionsStore
from hs.storage.push.member_spans import member_set

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


@dataclass(frozen=True, slots=True)
class _RoomFacts:
    """What evaluating a room's events needs of its current state (read-only)."""

    members: Mapping[str, Any]  # joined: user -> Member
    create: PDU | None
    power: PDU | None


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
        await self.store.add(rows, [(*k, v) for k, v in sender_reads.items()],
                             defaults=defaults, members=[covered])

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
                recipients = targets[sender_level] = [
                    (u, compiled[u], context(sender_level, members[u].displayname))
                    for u in joined]
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
