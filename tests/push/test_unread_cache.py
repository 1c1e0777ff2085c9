"""Unread counts kept in memory (``hs.storage.push.unread_cache``): the entries move with
the writes exactly as the database's counts do, and a read that raced a write is not
kept."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.push.test_actions_counts import _receipt, _send
from tests.rooms.helpers import User, new_user, q
from tests.server.harness import Client, running_server

from hs.storage.database import DatabaseConfig
from hs.storage.push import ActionRow, DefaultRow
from hs.storage.push.member_spans import member_set
from hs.storage.push.unread_cache import UnreadCache

R = "!r:hs"


def _default(pos: int, sender: str = "@s:hs", thread: str = "main", notify: int = 1,
             highlight: int = 0, room: str = R) -> DefaultRow:
    return DefaultRow(pos, room, f"$e{pos}", thread, sender, notify, highlight, "[]", 0)


def _row(user: str, pos: int, notify: int, highlight: int, thread: str = "main"
         ) -> ActionRow:
    return ActionRow(user, R, pos, f"$e{pos}", thread, notify, highlight, "[]", 0)


def _filled(cache: UnreadCache, user: str, counts: dict[str, tuple[int, int]],
            room: str = R) -> None:
    cache.fill(user, {room: counts}, cache.token([room]))


def test_writes_move_the_entries_of_the_users_they_cover() -> None:
    cache = UnreadCache()
    _filled(cache, "@a:hs", {})
    _filled(cache, "@b:hs", {"main": (2, 0)})
    _filled(cache, "@s:hs", {"main": (1, 0)})
    _filled(cache, "@gone:hs", {})
    members = member_set(R, 10, ["@a:hs", "@b:hs", "@s:hs"])
    change = cache.begin([R])
    change.applied(
        defaults=[_default(10), _default(11, thread="$root"), _default(12, highlight=1)],
        rows=[_row("@a:hs", 12, 0, 0), _row("@b:hs", 11, 1, 1, "$root")],
        reads=[("@s:hs", R, "main", 12)], sets=[members])
    found, missing = cache.get("@a:hs", [R])
    # a: 10 and the thread's 11 by default; 12 hidden by its own row.
    assert found[R] == {"main": (1, 0), "$root": (1, 0)} and missing == []
    # b: 10 and 12 by default, its own row for 11.
    assert cache.get("@b:hs", [R])[0][R] == {"main": (4, 1), "$root": (1, 1)}
    # The sender spoke in the main timeline at 12: read up to there. Not a member: unchanged.
    assert cache.get("@s:hs", [R]) == ({R: {}}, [])
    assert cache.get("@gone:hs", [R])[0][R] == {}


def test_an_own_event_marks_its_thread_read_up_to_itself() -> None:
    """Counts of the sender's thread restart after its event (later events of the same
    write still count); its other threads keep theirs; a receipt still drops the entry."""
    cache = UnreadCache()
    _filled(cache, "@s:hs", {"main": (3, 1), "$t": (2, 0), "$u": (1, 1)})
    members = member_set(R, 10, ["@a:hs", "@s:hs"])
    cache.begin([R]).applied(
        defaults=[_default(20, sender="@a:hs", thread="$t"),
                  _default(22, sender="@a:hs", thread="$t", highlight=1),
                  _default(23, sender="@a:hs")],
        rows=[_row("@s:hs", 19, 1, 1, "$t")],
        reads=[("@s:hs", R, "$t", 21)], sets=[members])
    assert cache.get("@s:hs", [R])[0][R] == {"main": (4, 1), "$t": (1, 1), "$u": (1, 1)}
    cache.begin([R]).applied(reads=[("@s:hs", R, "main", 24), ("@s:hs", R, "$u", 25)],
                             sets=[members])
    assert cache.get("@s:hs", [R])[0][R] == {"$t": (1, 1)}
    cache.begin([R]).applied(dropped=[("@s:hs", R)])  # a read receipt
    assert cache.get("@s:hs", [R]) == ({}, [R])


def test_a_read_that_raced_a_write_is_not_kept() -> None:
    cache = UnreadCache()
    busy = cache.begin([R])
    _filled(cache, "@a:hs", {})  # token taken while a write was busy
    assert cache.get("@a:hs", [R])[1] == [R]
    busy.nothing()
    tokens = cache.token([R])
    cache.begin([R]).nothing()  # a write began and ended during the read
    cache.fill("@a:hs", {R: {}}, tokens)
    assert cache.get("@a:hs", [R])[1] == [R]
    _filled(cache, "@a:hs", {"main": (3, 1)})
    assert cache.get("@a:hs", [R])[0] == {R: {"main": (3, 1)}}


def test_an_uncertain_write_forgets_its_rooms_and_the_size_is_bounded() -> None:
    cache = UnreadCache(max_entries=3)
    _filled(cache, "@a:hs", {"main": (1, 0)})
    _filled(cache, "@b:hs", {})
    cache.begin([R]).unsure()
    assert cache.get("@a:hs", [R])[1] == [R] and len(cache) == 0
    for n in range(5):
        _filled(cache, "@a:hs", {}, room=f"!{n}:hs")
    assert len(cache) <= 3
    assert cache.get("@a:hs", ["!4:hs"])[1] == [] and cache.get("@a:hs", ["!0:hs"])[1]


async def _check(hs: Client, users: list[User], rooms: list[str]) -> None:
    """Every (user, room): the cached counts are the database's."""
    store = hs.services.push.actions.store
    for u in users:
        cached = await store.unread_counts(u.user_id, rooms)
        read = await store.read_unread_counts(u.user_id, rooms)
        assert {r: dict(c) for r, c in cached.items() if c} == read, u.user_id


async def test_cached_counts_follow_every_kind_of_write(database_config: DatabaseConfig
                                                       ) -> None:
    async with running_server(database_config) as hs:
        alice, bob, carol, dave = [await new_user(hs, n)
                                   for n in ("alice", "bob", "carol", "dave")]
        users = [alice, bob, carol, dave]
        room = await alice.create_room(preset="public_chat")
        other = await bob.create_room(preset="public_chat")
        rooms = [room, other]
        for u in (bob, carol):
            assert (await u.join(room))[0] == 200
        assert (await alice.join(other))[0] == 200
        store = hs.services.push.actions.store
        await _check(hs, users, rooms)  # fills every entry
        hits = store.unread.hits

        steps: list[Any] = []
        root = await _send(alice, room, "a thread root")
        steps.append(await _send(bob, room, "in thread", **{"m.relates_to": {
            "rel_type": "m.thread", "event_id": root}}))
        await _check(hs, users, rooms)
        assert store.unread.hits > hits  # the entries moved instead of being read again
        misses = store.unread.misses
        await _send(alice, room, "hey carol", **{"m.mentions": {"user_ids": [carol.user_id]}})
        await _send(alice, room, "everyone", **{"m.mentions": {"room": True}})
        await _send(bob, other, "over here")
        await _check(hs, users, rooms)
        assert store.unread.misses == misses  # own messages moved the senders' entries too
        # Carol mutes the room: her outcome differs from the default (an exception row).
        status, _ = await carol.call(
            "PUT", f"/pushrules/global/room/{q(room)}", {"actions": []})
        assert status == 200
        last = await _send(alice, room, "muted for carol")
        await _check(hs, users, rooms)
        # Receipts: threaded, unthreaded, private; then bob speaks in the thread.
        await _receipt(carol, room, last)
        await _receipt(bob, room, root, thread="main")
        await _check(hs, users, rooms)
        await _receipt(alice, room, steps[0], "m.read.private", thread=root)
        await _send(bob, room, "more", **{"m.relates_to": {"rel_type": "m.thread",
                                                            "event_id": root}})
        await _check(hs, users, rooms)
        # Membership: dave joins, carol leaves; an invite notifies the invitee.
        assert (await dave.join(room))[0] == 200
        assert (await carol.call("POST", f"/rooms/{q(room)}/leave", {}))[0] == 200
        await _send(alice, room, "after the changes")
        status, _ = await bob.call("POST", f"/rooms/{q(other)}/invite",
                                   {"user_id": carol.user_id})
        assert status == 200
        await _check(hs, users, rooms)


async def test_concurrent_sends_receipts_and_reads_agree(database_config: DatabaseConfig
                                                        ) -> None:
    async with running_server(database_config) as hs:
        alice, bob, carol = [await new_user(hs, n) for n in ("alice", "bob", "carol")]
        room = await alice.create_room(preset="public_chat")
        for u in (bob, carol):
            assert (await u.join(room))[0] == 200
        store = hs.services.push.actions.store
        users = [alice, bob, carol]

        async def talk(u: User) -> None:
            for n in range(12):
                event_id = await _send(u, room, f"{u.user_id} {n}")
                if n % 4 == 3:
                    await _receipt(u, room, event_id)

        async def read(u: User) -> None:
            for _ in range(30):
                await store.unread_counts(u.user_id, [room])
                await asyncio.sleep(0)

        await asyncio.gather(*(talk(u) for u in users), *(read(u) for u in users))
        await _check(hs, users, [room])


def test_a_write_that_cannot_be_applied_forgets_its_rooms_without_failing() -> None:
    cache = UnreadCache()
    _filled(cache, "@a:hs", {"main": (1, 0)})
    change = cache.begin([R])
    bad = _default(10)._replace(notify="x")  # type: ignore[arg-type]
    change.applied(defaults=[bad], sets=[member_set(R, 10, ["@a:hs"])])
    assert cache.get("@a:hs", [R])[1] == [R]
    _filled(cache, "@a:hs", {})  # the write has ended: fills are kept again
    assert cache.get("@a:hs", [R])[0] == {R: {}}
