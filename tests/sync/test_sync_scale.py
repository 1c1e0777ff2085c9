"""Incremental sync cost does not grow with the user's room count, and an event persisted
while a sync is being computed lands in exactly one response."""

from __future__ import annotations

from typing import Any

import pytest
from tests.server.harness import running_server
from tests.sync.helpers import bodies, new_user

import hs.handlers.sync.handler as sync_handler


def _count_queries(db: Any) -> list[str]:
    log: list[str] = []
    for name in ("fetchall", "fetchone", "fetchval", "execute"):
        original = getattr(db, name)

        def wrapped(sql: str, *args: Any, _original: Any = original) -> Any:
            log.append(sql)
            return _original(sql, *args)

        setattr(db, name, wrapped)
    return log


async def test_incremental_sync_queries_only_changed_rooms(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        rooms = [await alice.create_room() for _ in range(120)]
        token = (await alice.sync(flt={"room": {"timeline": {"limit": 1}}}))["next_batch"]
        await alice.send(rooms[57], "only here")
        log = _count_queries(hs.services.db)
        body = await alice.sync(token)
        assert list(body["rooms"]["join"]) == [rooms[57]]
        assert bodies(body, rooms[57]) == ["only here"]
        # A fixed handful of queries (auth, memberships, changed rooms, the one room,
        # keys...), however many rooms the user is in.
        assert len(log) < 30, log
        per_room = [q for q in log if "room_id = ?" in q]
        assert len(per_room) < 10, per_room


async def test_event_persisted_during_compute_is_delivered_once(database_config, monkeypatch):
    async with running_server(database_config) as hs:
        # The race is injected into the database reads: keep them on that path.
        monkeypatch.setattr(hs.services.sync, "recent", None)
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room = await alice.create_room()
        await bob.join(room)
        token = (await bob.sync())["next_batch"]
        await alice.send(room, "before")
        real = sync_handler.changed_rooms
        sent: list[str] = []

        async def racing(db: Any, since: int, upto: int) -> dict[str, int]:
            # A write commits after the bounds were read, before the rooms are built.
            if not sent:
                sent.append(await alice.send(room, "during"))
            return await real(db, since, upto)

        monkeypatch.setattr(sync_handler, "changed_rooms", racing)
        first = await bob.sync(token)
        assert bodies(first, room) == ["before"]
        second = await bob.sync(first["next_batch"])
        assert bodies(second, room) == ["during"]
        third = await bob.sync(second["next_batch"])
        assert room not in third["rooms"].get("join", {})


@pytest.mark.parametrize("shared", [True, False], ids=["shared-range", "own-range"])
async def test_leave_during_compute_keeps_the_room_until_the_next_sync(database_config,
                                                                        monkeypatch, shared):
    async with running_server(database_config) as hs:
        # The race is injected into the database reads: keep them on that path.
        monkeypatch.setattr(hs.services.sync, "recent", None)
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room = await alice.create_room()
        await bob.join(room)
        token = (await bob.sync())["next_batch"]
        await alice.send(room, "m1")
        left: list[bool] = []

        async def leave_once() -> None:
            if not left:
                left.append(True)
                await bob.leave(room)  # commits after this sync read its bounds

        if shared:  # short ranges: every user's changes in one read
            real_all = sync_handler.all_membership_changes

            async def racing_all(db: Any, since: int, upto: int) -> Any:
                await leave_once()
                return await real_all(db, since, upto)

            monkeypatch.setattr(sync_handler, "all_membership_changes", racing_all)
        else:
            real = sync_handler.membership_changes

            async def racing(db: Any, user_id: str, since: int, upto: int) -> Any:
                if user_id == bob.user_id:
                    await leave_once()
                return await real(db, user_id, since, upto)

            monkeypatch.setattr(sync_handler, "SHARED_RANGE", -1)
            monkeypatch.setattr(sync_handler, "membership_changes", racing)
        hs.services.sync.user_rooms.invalidate(bob.user_id)
        first = await bob.sync(token)
        assert bodies(first, room) == ["m1"]
        second = await bob.sync(first["next_batch"])
        events = second["rooms"]["leave"][room]["timeline"]["events"]
        assert [e["content"].get("membership") for e in events] == ["leave"]
