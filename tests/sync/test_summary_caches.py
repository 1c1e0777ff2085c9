"""What /sync remembers between responses: rooms' member counts (dropped when a membership
changes) and which state event each served state event replaced (never changes)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.rooms.helpers import q
from tests.server.harness import running_server
from tests.sync.helpers import login_again, new_user

LAZY = {"room": {"timeline": {"limit": 1}, "state": {"lazy_load_members": True}}}


def count_calls(obj: Any, name: str) -> list[object]:
    calls: list[object] = []
    original = getattr(obj, name)

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return await original(*args, **kwargs)

    setattr(obj, name, counted)
    return calls


async def test_summaries_follow_membership_changes(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        users = [await new_user(hs, f"u{i}") for i in range(7)]
        room = await alice.create_room()
        rooms = hs.services.events.rooms
        reads = count_calls(rooms, "get_member_states")

        async def summary() -> dict[str, Any]:
            body = await alice.sync()
            return dict(body["rooms"]["join"][room]["summary"])

        assert await summary() == {"m.heroes": [], "m.joined_member_count": 1,
                                   "m.invited_member_count": 0}
        assert await summary() == {"m.heroes": [], "m.joined_member_count": 1,
                                   "m.invited_member_count": 0}
        assert len(reads) == 1  # the second sync's counts were remembered
        await alice.invite(room, users[0].user_id)
        assert await summary() == {"m.heroes": [users[0].user_id],
                                   "m.joined_member_count": 1, "m.invited_member_count": 1}
        await users[0].join(room)
        for user in users[1:]:
            await user.join(room)
        got = await summary()
        assert got["m.joined_member_count"] == 8 and got["m.invited_member_count"] == 0
        assert got["m.heroes"] == sorted(u.user_id for u in users)[:5]
        for user in users:
            await user.leave(room)
        got = await summary()  # only alice: heroes come from those who left
        assert got["m.joined_member_count"] == 1
        assert got["m.heroes"] == sorted(u.user_id for u in users)[:5]
        # Another member's own view leaves themselves out of the heroes.
        await users[0].join(room)
        body = await users[0].sync()
        assert body["rooms"]["join"][room]["summary"]["m.heroes"] == [alice.user_id]


async def test_counts_read_across_a_membership_change_are_not_kept(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room = await alice.create_room()
        rooms = hs.services.events.rooms
        original = rooms.get_member_states
        gate = asyncio.Event()

        async def slow(*args: Any) -> Any:
            found = await original(*args)  # read before bob's join commits
            await gate.wait()
            return found

        rooms.get_member_states = slow
        stale = asyncio.ensure_future(rooms.get_member_counts([room]))
        await asyncio.sleep(0.05)
        await bob.join(room)
        gate.set()
        assert (await stale)[room].joined == 1  # what it read, not remembered
        rooms.get_member_states = original
        assert (await rooms.get_member_counts([room]))[room].joined == 2


async def test_replaced_state_of_lazy_members_is_remembered(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room = await alice.create_room()
        await alice.invite(room, bob.user_id)
        await bob.join(room)  # replaces his invite
        await bob.send(room, "hello")
        reads = hs.services.timeline.serializer.reads
        calls = count_calls(reads.db, "fetchall")
        for _ in range(2):
            body = await alice.sync(flt=LAZY)
            state = body["rooms"]["join"][room]["state"]["events"]
            member = next(e for e in state if e["state_key"] == bob.user_id)
            assert member["content"]["membership"] == "join"
            assert member["unsigned"]["prev_content"]["membership"] == "invite"
            assert member["unsigned"]["replaces_state"]
        # Known from the commits that brought them in: never read back.
        delta_reads = [c for c in calls if "current_state_delta_stream" in str(c[0])]
        assert delta_reads == []
        # What the commits left there is what the delta stream says (a cold cache reads).
        await alice.ok("PUT", f"/rooms/{q(room)}/state/m.room.topic/", {"topic": "t1"})
        await alice.ok("PUT", f"/rooms/{q(room)}/state/m.room.topic/", {"topic": "t2"})
        ids = [e["event_id"] for e in await alice.ok("GET", f"/rooms/{q(room)}/state")]
        remembered = {eid: reads._replaced.get(eid) for eid in ids}
        assert all(v is not None for v in remembered.values())
        reads._replaced.invalidate(ids)
        read_back = await reads.replaced_state(room, ids)
        assert {e: p for e, p in remembered.items() if p} == read_back
        assert sum(1 for p in remembered.values() if p) >= 2  # bob's join, the topic


async def test_own_echo_carries_its_transaction_id_without_a_read(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        other = await login_again(hs, alice, "alice")
        room = await alice.create_room()
        token = (await alice.sync())["next_batch"]
        other_token = (await other.sync())["next_batch"]
        reads = count_calls(hs.services.timeline.serializer.reads, "txn_ids_for_events")
        event_id = await alice.send(room, "echo")
        body = await alice.sync(token)
        echo = next(e for e in body["rooms"]["join"][room]["timeline"]["events"]
                    if e["event_id"] == event_id)
        assert echo["unsigned"]["transaction_id"].startswith("t")
        body = await other.sync(other_token)
        seen = next(e for e in body["rooms"]["join"][room]["timeline"]["events"]
                    if e["event_id"] == event_id)
        assert "transaction_id" not in seen["unsigned"]
        assert reads == []
