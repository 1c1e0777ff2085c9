"""DAG fixtures for the state resolution tests and benchmark.

``DagBuilder`` makes PDUs with explicit event IDs (no hashing), picking each event's
``auth_events`` from the state before it the way a homeserver would. ``run_scenario``
replays a small DAG: every event's state is the resolution of its prev events' states,
which is how the classic v2 scenarios (ban vs PL, topic reset, ...) are defined.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from hs.core.pdu import PDU, StateKey
from hs.core.room_versions import EventFormat, RoomVersion

SERVER = "example.org"
ALICE = f"@alice:{SERVER}"
BOB = f"@bob:{SERVER}"
CHARLIE = f"@charlie:{SERVER}"
ZARA = f"@zara:{SERVER}"

PL = ("m.room.power_levels", "")
JR = ("m.room.join_rules", "")
CREATE = ("m.room.create", "")
TOPIC = ("m.room.topic", "")


def member(user: str) -> StateKey:
    return ("m.room.member", user)


def room_id_for(room_version: RoomVersion, create_id: str = "$CREATE") -> str:
    """v12 room IDs are the create event's ID with a ``!`` sigil (no server name)."""
    if room_version.room_id_from_create_event:
        return "!" + create_id[1:]
    return f"!room:{SERVER}"


class DagBuilder:
    """Builds events of one room with explicit IDs and increasing timestamps."""

    def __init__(self, room_version: RoomVersion, create_id: str = "$CREATE") -> None:
        self.room_version = room_version
        self.room_id = room_id_for(room_version, create_id)
        self.create_id = create_id
        self.events: dict[str, PDU] = {}
        self._ts = itertools.count(1_000)

    def _ref(self, event_id: str) -> Any:
        if self.room_version.event_format is EventFormat.V1:
            return [event_id, {"sha256": "AAAA"}]
        return event_id

    def event(
        self,
        event_id: str,
        etype: str,
        sender: str,
        content: Mapping[str, Any],
        state_key: str | None = None,
        *,
        state_before: Mapping[StateKey, str] | None = None,
        auth: Sequence[str] | None = None,
        prev: Sequence[str] = (),
        ts: int | None = None,
        depth: int | None = None,
        rejected: str | None = None,
    ) -> PDU:
        """Make (and remember) an event. ``auth`` defaults to the auth selection applied
        to ``state_before``."""
        from hs.core.auth import auth_types_for_event

        rv = self.room_version
        if auth is None:
            state = state_before or {}
            if etype == "m.room.create":
                auth = []
            else:
                keys = auth_types_for_event(etype, sender, state_key, content, rv)
                auth = [state[k] for k in keys if k in state]
        data: dict[str, Any] = {
            "type": etype,
            "sender": sender,
            "content": dict(content),
            "origin_server_ts": next(self._ts) if ts is None else ts,
            "depth": depth if depth is not None else 1 + len(self.events),
            "prev_events": [self._ref(p) for p in prev],
            "auth_events": [self._ref(a) for a in auth],
            "hashes": {"sha256": "AAAA"},
            "signatures": {},
        }
        if not (rv.room_id_from_create_event and etype == "m.room.create"):
            data["room_id"] = self.room_id
        if state_key is not None:
            data["state_key"] = state_key
        if rv.event_format is EventFormat.V1:
            data["event_id"] = event_id
        pdu = PDU(data, rv, event_id=event_id, rejected_reason=rejected)
        self.events[event_id] = pdu
        return pdu

    def create_content(self, creator: str = ALICE, **extra: Any) -> dict[str, Any]:
        content: dict[str, Any] = {"room_version": self.room_version.identifier, **extra}
        if not self.room_version.implicit_room_creator:
            content["creator"] = creator
        return content


@dataclass
class Spec:
    """An event of a scenario, before its auth and prev events are known."""

    event_id: str
    etype: str
    sender: str
    content: dict[str, Any]
    state_key: str | None = None


@dataclass
class Room:
    """A linear chain of events with the state after its last one."""

    builder: DagBuilder
    state: dict[StateKey, str] = field(default_factory=dict)
    head: str | None = None

    def send(
        self,
        event_id: str,
        etype: str,
        sender: str,
        content: Mapping[str, Any],
        state_key: str | None = None,
        **kw: Any,
    ) -> PDU:
        prev = [self.head] if self.head is not None else []
        pdu = self.builder.event(
            event_id, etype, sender, content, state_key, state_before=self.state, prev=prev, **kw
        )
        self.head = event_id
        if state_key is not None:
            self.state[(etype, state_key)] = event_id
        return pdu

    def fork(self) -> Room:
        return Room(self.builder, dict(self.state), self.head)


def initial_specs(
    room_version: RoomVersion, pl_users: Mapping[str, int] | None = None
) -> list[Spec]:
    """CREATE, alice joins, power levels, public join rules, bob/charlie/zara join, and
    START/END placeholders: the classic scenarios' shared beginning."""
    create: dict[str, Any] = {"room_version": room_version.identifier}
    if not room_version.implicit_room_creator:
        create["creator"] = ALICE
    users = dict(pl_users) if pl_users is not None else {ALICE: 100}
    return [
        Spec("$CREATE", "m.room.create", ALICE, create, ""),
        Spec("$IMA", "m.room.member", ALICE, {"membership": "join"}, ALICE),
        Spec("$IPOWER", "m.room.power_levels", ALICE, {"users": users}, ""),
        Spec("$IJR", "m.room.join_rules", ALICE, {"join_rule": "public"}, ""),
        Spec("$IMB", "m.room.member", BOB, {"membership": "join"}, BOB),
        Spec("$IMC", "m.room.member", CHARLIE, {"membership": "join"}, CHARLIE),
        Spec("$IMZ", "m.room.member", ZARA, {"membership": "join"}, ZARA),
        Spec("$START", "m.room.message", ZARA, {"body": "start"}),
        Spec("$END", "m.room.message", ZARA, {"body": "end"}),
    ]


@dataclass
class ScenarioResult:
    state_at_end: dict[StateKey, str]
    events: dict[str, PDU]
    store: Any


def run_scenario(
    room_version: RoomVersion,
    specs: Sequence[Spec],
    edges: Sequence[Sequence[str]],
    sorts: ModuleType,
    pl_users: Mapping[str, int] | None = None,
) -> ScenarioResult:
    """Replay a DAG and return the resolved state before ``$END``.

    ``edges`` lists chains from later to earlier (``["$END", "$X", "$START"]`` means END's
    prev is X, whose prev is START), as in the published scenario descriptions. The
    initial events form a chain ending at ``$START``; events are created (and timestamped)
    in ``specs`` order.
    """
    from hs.core.state_res import InMemoryStateResolutionStore, resolve_state

    all_specs = initial_specs(room_version, pl_users)
    all_specs[-1:-1] = list(specs)  # $END stays last
    if room_version.privileged_creators:
        # v12 forbids listing a creator in ``users`` (they have infinite power anyway), so
        # the published scenarios, written with alice at 100, drop her entry.
        for spec in all_specs:
            if spec.etype == "m.room.power_levels":
                users = {u: v for u, v in spec.content.get("users", {}).items() if u != ALICE}
                spec.content = {**spec.content, "users": users}
    by_id = {s.event_id: s for s in all_specs}
    prev_of: dict[str, list[str]] = {s.event_id: [] for s in all_specs}
    chain = [s.event_id for s in all_specs[:8]]
    for earlier, later in itertools.pairwise(chain):
        prev_of[later].append(earlier)
    for path in edges:
        for later, earlier in itertools.pairwise(path):
            if earlier not in prev_of[later]:
                prev_of[later].append(earlier)

    ts_of = {s.event_id: 1_000 + i for i, s in enumerate(all_specs)}
    builder = DagBuilder(room_version)
    store = InMemoryStateResolutionStore(sorts=sorts)
    state_after: dict[str, dict[StateKey, str]] = {}
    done: set[str] = set()

    async def state_before(event_id: str) -> dict[StateKey, str]:
        sets = [state_after[p] for p in prev_of[event_id]]
        if not sets:
            return {}
        if len(sets) == 1:
            return dict(sets[0])
        return await resolve_state(builder.room_id, room_version, sets, store, sorts=sorts)

    async def replay() -> dict[StateKey, str]:
        pending = [s.event_id for s in all_specs]
        while pending:
            ready = [e for e in pending if all(p in done for p in prev_of[e])]
            assert ready, "scenario DAG has a cycle"
            for e in ready:
                spec = by_id[e]
                before = await state_before(e)
                if e == "$END":
                    return before
                pdu = builder.event(
                    e,
                    spec.etype,
                    spec.sender,
                    spec.content,
                    spec.state_key,
                    state_before=before,
                    prev=prev_of[e],
                    ts=ts_of[e],
                )
                store.add(pdu)
                after = dict(before)
                if spec.state_key is not None:
                    after[(spec.etype, spec.state_key)] = e
                state_after[e] = after
                done.add(e)
                pending.remove(e)
        raise AssertionError("no $END in the scenario")

    end_state = asyncio.run(replay())
    return ScenarioResult(end_state, builder.events, store)


def big_room_forks(
    room_version: RoomVersion, members: int = 1000, conflicts: int = 10
) -> tuple[DagBuilder, dict[StateKey, str], dict[StateKey, str]]:
    """A room of ``members`` joined users, forked into two branches that each change power
    levels and join rules ``conflicts // 2`` times (alice on one, bob on the other).

    Returns the builder (all events) and the two state maps to resolve.
    """
    creators_infinite = room_version.privileged_creators
    users = {BOB: 100} if creators_infinite else {ALICE: 100, BOB: 100}
    for i in range(0, members, 50):
        users[f"@mod{i:05d}:{SERVER}"] = 50
    room = _big_room(room_version, members, users)
    forks = (room.fork(), room.fork())
    for n in range(conflicts):
        fork = forks[n % 2]
        sender = ALICE if n % 2 == 0 else BOB
        step = n // 2
        if step % 2 == 0:
            levels = {**users, f"@user{n:04d}:{SERVER}": 10 + n}
            fork.send(f"$F{n:02d}", "m.room.power_levels", sender, {"users": levels}, "")
        else:
            rule = "invite" if (step // 2) % 2 == 0 else "public"
            fork.send(f"$F{n:02d}", "m.room.join_rules", sender, {"join_rule": rule}, "")
    return room.builder, forks[0].state, forks[1].state


def _big_room(room_version: RoomVersion, members: int, users: dict[str, int]) -> Room:
    room = Room(DagBuilder(room_version))
    room.send("$CREATE", "m.room.create", ALICE, room.builder.create_content(), "")
    room.send("$JA", "m.room.member", ALICE, {"membership": "join"}, ALICE)
    room.send("$P0", "m.room.power_levels", ALICE, {"users": users}, "")
    room.send("$J0", "m.room.join_rules", ALICE, {"join_rule": "public"}, "")
    room.send("$JB", "m.room.member", BOB, {"membership": "join"}, BOB)
    for i in range(members - 2):
        uid = f"@mod{i:05d}:{SERVER}" if i % 50 == 0 else f"@user{i:05d}:{SERVER}"
        room.send(f"$M{i:05d}", "m.room.member", uid, {"membership": "join"}, uid)
    return room


def big_room_topic_forks(
    room_version: RoomVersion, members: int = 10_000
) -> tuple[DagBuilder, dict[StateKey, str], dict[StateKey, str]]:
    """The common federation case: a large room whose two forks differ by one topic each
    (the graph work grows with the room, the auth checks do not)."""
    users = {BOB: 100} if room_version.privileged_creators else {ALICE: 100, BOB: 100}
    room = _big_room(room_version, members, users)
    a, b = room.fork(), room.fork()
    a.send("$TA", "m.room.topic", ALICE, {"topic": "a"}, "")
    b.send("$TB", "m.room.topic", BOB, {"topic": "b"}, "")
    return room.builder, a.state, b.state
