"""The load scenarios: plain client-server API traffic, identical for every target.

Setup scenarios (register, create_rooms, join) build the ``World`` once per server and are
measured too; steady scenarios (sends, pagination, syncs) may be repeated in A/B rounds.
Every loop is bounded by a count and every request by a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp

from bench.load.client import Client, MatrixError, Unsupported, User

T = TypeVar("T")
#: Per-request failures that are counted, not fatal.
FAILURES = (MatrixError, TimeoutError, aiohttp.ClientError)
SETUP = ("register", "create_rooms", "join")
STEADY = ("send_one_room", "send_many_rooms", "messages", "initial_sync", "wakeup",
          "wakeup_targeted")
#: Steady scenarios left out unless asked for (they need setup the others do not).
OPTIONAL = ("wakeup_targeted",)
ALL = SETUP + STEADY
#: A scenario gives up when more than this share of its requests failed.
MAX_ERROR_SHARE = 0.05
#: Inline filter for long-pollers: only timelines, one event of history.
POLL_FILTER = json.dumps({"room": {"timeline": {"limit": 1}, "state": {"lazy_load_members": True},
                                   "ephemeral": {"types": []}, "account_data": {"types": []}},
                          "presence": {"types": []}, "account_data": {"types": []}},
                         separators=(",", ":"))


@dataclass(frozen=True)
class Plan:
    """Sizes of one run, all derived from ``--scale`` so runs at the same scale compare."""

    users: int
    rooms: int
    senders: int
    msgs_per_sender: int
    msgs_per_room: int
    syncers: int
    readers: int
    page_limit: int
    pollers: int
    wake_events: int
    concurrency: int
    #: Users with a room of their own with the last user (the targeted wake-up scenario).
    targeted_pollers: int = 0

    @classmethod
    def from_scale(cls, scale: float) -> Plan:
        def n(base: int, floor: int = 1) -> int:
            return max(floor, round(base * scale))

        users = n(50, 4)
        return cls(users=users, rooms=n(20, 2), senders=min(users, n(20, 2)), msgs_per_sender=10,
                   msgs_per_room=10, syncers=min(users, 5), readers=min(users, 5),
                   page_limit=50, pollers=users, wake_events=n(10, 3), concurrency=20)


@dataclass
class World:
    """Users and rooms created by the setup scenarios, reused by the steady ones."""

    users: list[User] = field(default_factory=list)
    busy_room: str = ""
    rooms: list[str] = field(default_factory=list)
    room_owner: dict[str, User] = field(default_factory=dict)
    #: A targeted poller -> the room only they and the last user are in.
    pair_rooms: dict[str, str] = field(default_factory=dict)


class Recorder:
    """What one scenario measured: latencies, units of work, errors, progress."""

    def __init__(self, name: str, unit: str, total: int) -> None:
        self.name, self.unit, self.total = name, unit, total
        self.latencies: list[float] = []
        self.events = 0
        self.done = 0
        self.requests = 0
        self.errors = 0
        self.last_error = ""
        self.extra: dict[str, Any] = {}

    def ok(self, latency: float, events: int = 1) -> None:
        self.latencies.append(latency)
        self.events += events
        self.requests += 1
        self.done += 1

    def failed(self, exc: Exception) -> None:
        self.errors += 1
        self.requests += 1
        self.done += 1
        self.last_error = str(exc)[:300]
        if self.requests >= 20 and self.errors > MAX_ERROR_SHARE * self.requests:
            raise RuntimeError(f"{self.errors}/{self.requests} requests failed; last: "
                               f"{self.last_error}")


async def bounded(items: Iterable[T], fn: Callable[[T], Awaitable[None]], limit: int) -> None:
    """Run ``fn`` over ``items`` with at most ``limit`` in flight; first exception cancels all."""
    queue = list(items)
    index = 0

    async def worker() -> None:
        nonlocal index
        while index < len(queue):
            item = queue[index]
            index += 1
            await fn(item)

    async with asyncio.TaskGroup() as group:
        for _ in range(max(1, min(limit, len(queue)))):
            group.create_task(worker())


async def _call(rec: Recorder, coro: Awaitable[T], events: int = 1) -> T | None:
    """Time one request into ``rec``; MatrixError counts as a failure, Unsupported propagates."""
    start = time.perf_counter()
    try:
        result = await coro
    except FAILURES as exc:
        rec.failed(exc)
        return None
    rec.ok(time.perf_counter() - start, events)
    return result


# -- setup --------------------------------------------------------------------------------

async def register(client: Client, world: World, plan: Plan, rec: Recorder) -> None:
    prefix = f"bench{uuid.uuid4().hex[:6]}"

    async def one(i: int) -> None:
        user = await _call(rec, client.register(f"{prefix}_{i}", f"pw-{prefix}-{i}"))
        if user is not None:
            world.users.append(user)

    await bounded(range(plan.users), one, plan.concurrency)
    if len(world.users) < 2:
        raise RuntimeError("fewer than two users registered")


async def create_rooms(client: Client, world: World, plan: Plan, rec: Recorder) -> None:
    owners = world.users

    async def one(i: int) -> None:
        owner = owners[i % len(owners)]
        room = await _call(rec, client.create_room(owner, f"bench room {i}"))
        if room is None:
            return
        if i == 0:
            world.busy_room = room
        else:
            world.rooms.append(room)
        world.room_owner[room] = owner

    await bounded(range(plan.rooms + 1), one, plan.concurrency)
    if not world.busy_room:
        raise RuntimeError("the busy room could not be created")

    async def pair(user: User) -> None:
        room = await _call(rec, client.create_room(owners[-1], f"pair {user.user_id}"))
        if room is not None:
            world.pair_rooms[user.user_id] = room
            world.room_owner[room] = owners[-1]

    await bounded(_targeted(world, plan), pair, plan.concurrency)


def _targeted(world: World, plan: Plan) -> list[User]:
    """The targeted wake-up's pollers: users that are neither syncers (whose initial sync
    counts rooms) nor the last user, who owns their rooms and sends."""
    return world.users[plan.syncers:-1][:plan.targeted_pollers]


async def join(client: Client, world: World, plan: Plan, rec: Recorder) -> None:
    """Everyone joins the busy room; the syncers also join every other room."""
    pairs = [(u, world.busy_room) for u in world.users
             if world.room_owner[world.busy_room] != u]
    pairs += [(u, r) for u in world.users[:plan.syncers] for r in world.rooms
              if world.room_owner[r] != u]
    pairs += [(u, world.pair_rooms[u.user_id]) for u in _targeted(world, plan)
              if u.user_id in world.pair_rooms]

    async def one(pair: tuple[User, str]) -> None:
        await _call(rec, client.join(*pair))

    await bounded(pairs, one, plan.concurrency)


# -- steady -------------------------------------------------------------------------------

async def send_one_room(client: Client, world: World, plan: Plan, rec: Recorder) -> None:
    """Many users sending into ONE room at once: contention on a single room's DAG."""
    senders = world.users[:plan.senders]

    async def one(user: User) -> None:
        for k in range(plan.msgs_per_sender):
            await _call(rec, client.send_text(user, world.busy_room, f"busy {k}"))

    await bounded(senders, one, len(senders))


async def send_many_rooms(client: Client, world: World, plan: Plan, rec: Recorder) -> None:
    """One sender per room, rooms in parallel: throughput without single-room contention."""

    async def one(room: str) -> None:
        owner = world.room_owner[room]
        for k in range(plan.msgs_per_room):
            await _call(rec, client.send_text(owner, room, f"many {k}"))

    await bounded(world.rooms, one, plan.concurrency)


async def messages(client: Client, world: World, plan: Plan, rec: Recorder) -> None:
    """Each reader pages the busy room backwards to its start (bounded page count)."""
    max_pages = 2000

    async def one(user: User) -> None:
        token: str | None = None
        for _ in range(max_pages):
            reply = await _call(rec, client.messages(user, world.busy_room, from_token=token,
                                                     limit=plan.page_limit), events=0)
            if reply is None:
                return
            chunk = reply.get("chunk") or []
            rec.events += len(chunk)
            end = reply.get("end")
            if not chunk or not end or end == token:
                return
            token = end

    await bounded(world.users[:plan.readers], one, plan.readers)


async def initial_sync(client: Client, world: World, plan: Plan, rec: Recorder) -> None:
    """Initial /sync of each syncer (member of every room, all with history), one at a time.

    Sequential on purpose: the figure is the latency of one user's first sync. Each syncer
    syncs once per round with a distinct filter so no server-side response cache answers.
    """
    sizes = []
    for i, user in enumerate(world.users[:plan.syncers]):
        flt = json.dumps({"room": {"timeline": {"limit": 10 + rec.extra.get("round", 0) * 100
                                                + i}}})
        reply = await _call(rec, client.sync(user, filter_json=flt))
        if reply is not None:
            joined = reply.get("rooms", {}).get("join", {})
            sizes.append(len(joined))
    rec.extra["rooms_per_sync"] = max(sizes) if sizes else 0


async def _prime(client: Client, pollers: list[User], plan: Plan) -> list[str | None]:
    """Each poller's first sync token (the long-polls start from there)."""
    tokens: list[str | None] = [None] * len(pollers)

    async def prime(i: int) -> None:
        tokens[i] = (await client.sync(pollers[i], filter_json=POLL_FILTER))["next_batch"]

    await bounded(range(len(pollers)), prime, plan.concurrency)
    return tokens


async def _long_poll(client: Client, rec: Recorder, user: User, since: str | None, room: str,
                     run_id: str, polls: int, stop: asyncio.Event,
                     arrived: Callable[[int, float], None]) -> None:
    """Long-poll as ``user`` until ``stop`` (at most ``polls`` requests), calling
    ``arrived(bench_seq, arrival time)`` for each event of this run in ``room``."""
    for _ in range(polls):
        if stop.is_set():
            return
        try:
            reply = await client.sync(user, since=since, timeout_ms=20_000,
                                      filter_json=POLL_FILTER)
        except FAILURES as exc:
            rec.failed(exc)
            await asyncio.sleep(0.1)
            continue
        now = time.perf_counter()
        since = reply["next_batch"]
        timeline = (reply.get("rooms", {}).get("join", {}).get(room, {})
                    .get("timeline", {}).get("events", []))
        for event in timeline:
            content = event.get("content", {})
            seq = content.get("bench_seq")
            if content.get("bench_run") == run_id and isinstance(seq, int):
                arrived(seq, now)


async def _wake(client: Client, sender: User, room: str, run_id: str, seq: int,
                sent_at: dict[int, float], done: asyncio.Event) -> None:
    """Send this run's event ``seq`` into ``room`` (its start time in ``sent_at``) and wait,
    at most 30 s, until the pollers report it (``done``)."""
    sent_at[seq] = time.perf_counter()
    await client.send_text(sender, room, f"wake {seq}", {"bench_run": run_id, "bench_seq": seq})
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), 30)


async def wakeup(client: Client, world: World, plan: Plan, rec: Recorder) -> None:
    """Incremental-sync wake-up latency: many users long-poll, one user sends.

    Latency = time from starting the send request to each poller receiving the event. Next
    event only after every poller got the previous one (or 30 s passed) and had time to
    long-poll again, so each sample is a real wake-up.
    """
    pollers = world.users[:plan.pollers]
    sender = world.room_owner[world.busy_room]
    room = world.busy_room
    run_id = uuid.uuid4().hex[:8]
    sent_at: dict[int, float] = {}
    got: list[set[int]] = [set() for _ in range(plan.wake_events)]
    all_in = [asyncio.Event() for _ in range(plan.wake_events)]
    stop = asyncio.Event()
    tokens = await _prime(client, pollers, plan)

    def arrived(i: int, seq: int, now: float) -> None:
        if 0 <= seq < plan.wake_events and i not in got[seq] and seq in sent_at:
            got[seq].add(i)
            rec.ok(now - sent_at[seq])
            if len(got[seq]) == len(pollers):
                all_in[seq].set()

    async def poll(i: int) -> None:
        await _long_poll(client, rec, pollers[i], tokens[i], room, run_id,
                         plan.wake_events * 20 + 50, stop,
                         lambda seq, now: arrived(i, seq, now))

    async def send_all() -> None:
        try:
            for seq in range(plan.wake_events):
                await asyncio.sleep(0.3)  # let every poller get back into its long-poll
                await _wake(client, sender, room, run_id, seq, sent_at, all_in[seq])
        finally:
            stop.set()

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(poll(i)) for i in range(len(pollers))]
        await send_all()
        # Pollers still waiting on a long-poll: cut them off rather than wait 20 s.
        await asyncio.sleep(0.5)
        for task in tasks:
            task.cancel()
    missed = plan.wake_events * len(pollers) - sum(len(g) for g in got)
    rec.extra.update(pollers=len(pollers), wake_events=plan.wake_events, missed=missed)


async def wakeup_targeted(client: Client, world: World, plan: Plan, rec: Recorder) -> None:
    """Wake-up latency when only one of many long-pollers is concerned (what a busy server
    mostly sees): each poller shares a room of its own with the last user, who sends into
    one of those rooms at a time, round robin; the other pollers keep waiting.

    Latency = time from starting the send request to that poller receiving the event; the
    next send waits for the delivery (or 30 s) and for the poller to long-poll again.
    """
    pollers = [u for u in _targeted(world, plan) if u.user_id in world.pair_rooms]
    if not pollers:
        raise RuntimeError("no pair rooms: run with --targeted-pollers N")
    sender = world.users[-1]
    sends = max(plan.wake_events * 5, len(pollers))
    run_id = uuid.uuid4().hex[:8]
    sent_at: dict[int, float] = {}
    delivered = [asyncio.Event() for _ in range(sends)]
    stop = asyncio.Event()
    tokens = await _prime(client, pollers, plan)

    def arrived(seq: int, now: float) -> None:
        if seq in sent_at and not delivered[seq].is_set():
            rec.ok(now - sent_at[seq])
            delivered[seq].set()

    async def poll(i: int) -> None:
        await _long_poll(client, rec, pollers[i], tokens[i],
                         world.pair_rooms[pollers[i].user_id], run_id, sends * 2 + 50, stop,
                         arrived)

    async def send_all() -> None:
        try:
            for seq in range(sends):
                i = seq % len(pollers)
                await asyncio.sleep(0.05)  # the previous poller long-polls again
                await _wake(client, sender, world.pair_rooms[pollers[i].user_id], run_id, seq,
                            sent_at, delivered[seq])
        finally:
            stop.set()

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(poll(i)) for i in range(len(pollers))]
        await asyncio.sleep(0.5)  # every poller in its long-poll before the first send
        await send_all()
        await asyncio.sleep(0.2)
        for task in tasks:
            task.cancel()
    missed = sends - sum(1 for d in delivered if d.is_set())
    rec.extra.update(pollers=len(pollers), wake_events=sends, missed=missed)


Scenario = Callable[[Client, World, Plan, Recorder], Awaitable[None]]
SCENARIOS: dict[str, tuple[Scenario, str, Callable[[Plan, World], int]]] = {
    "register": (register, "users", lambda p, w: p.users),
    "create_rooms": (create_rooms, "rooms",
                     lambda p, w: p.rooms + 1 + len(_targeted(w, p))),
    "join": (join, "joins", lambda p, w: len(w.users) - 1 + p.syncers * len(w.rooms)
             + len(w.pair_rooms)),
    "send_one_room": (send_one_room, "events",
                      lambda p, w: min(p.senders, len(w.users)) * p.msgs_per_sender),
    "send_many_rooms": (send_many_rooms, "events", lambda p, w: len(w.rooms) * p.msgs_per_room),
    "messages": (messages, "events", lambda p, w: 0),
    "initial_sync": (initial_sync, "syncs", lambda p, w: p.syncers),
    "wakeup": (wakeup, "deliveries",
               lambda p, w: p.wake_events * min(p.pollers, len(w.users))),
    "wakeup_targeted": (wakeup_targeted, "deliveries",
                        lambda p, w: max(p.wake_events * 5, len(w.pair_rooms))),
}
#: What a scenario needs from the ones before it.
NEEDS = {"create_rooms": "register", "join": "create_rooms", "send_one_room": "join",
         "send_many_rooms": "join", "messages": "join", "initial_sync": "join",
         "wakeup": "join", "wakeup_targeted": "join"}


def is_unsupported(exc: BaseException) -> Unsupported | None:
    """The Unsupported inside ``exc`` (TaskGroup wraps exceptions in groups), if any."""
    if isinstance(exc, Unsupported):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = is_unsupported(inner)
            if found is not None:
                return found
    return None
