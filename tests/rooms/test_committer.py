"""Group commit across rooms and the in-transaction check of a remembered room tip."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from tests.rooms.helpers import new_user
from tests.server.harness import running_server

from hs.handlers.rooms.committer import GroupCommitter
from hs.storage.events.types import EventToPersist, PersistedEvent


async def test_rooms_ready_together_share_a_transaction(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        rooms = [await alice.create_room() for _ in range(8)]
        pipeline = hs.services.rooms.pipeline
        commits_before = pipeline.committer.commits
        results = await asyncio.gather(*(
            alice.send(room, f"g{i}", {"msgtype": "m.text", "body": str(i)})
            for i, room in enumerate(rooms)))
        assert all(status == 200 for status, _ in results)
        assert pipeline.committer.commits - commits_before < len(rooms)
        events = hs.services.events
        for room, (_, body) in zip(rooms, results, strict=True):
            # Each room's event is its own room's only extremity, in its own room.
            assert await events.get_forward_extremities(room) == {body["event_id"]}
            pdu = await events.get_event(body["event_id"])
            assert pdu is not None and pdu.room_id == room


async def test_failing_batch_fails_alone() -> None:
    """A group whose transaction fails is retried batch by batch: only the culprit fails."""
    calls: list[int] = []

    async def persist(batch: list[EventToPersist],
                      current_state: Mapping[str, object] | None,
                      expected: Mapping[str, frozenset[str]] | None) -> list[PersistedEvent]:
        calls.append(len(batch))
        await asyncio.sleep(0)
        if any(e == "bad" for e in batch):  # type: ignore[comparison-overlap]
            raise ValueError("bad batch")
        return [PersistedEvent(str(e), i, None) for i, e in enumerate(batch)]  # type: ignore[arg-type]

    committer = GroupCommitter(persist)  # type: ignore[arg-type]
    outcomes = await asyncio.gather(
        committer.submit("!a", ["a1", "a2"]),  # type: ignore[list-item]
        committer.submit("!b", ["bad"]),  # type: ignore[list-item]
        committer.submit("!c", ["c1"]),  # type: ignore[list-item]
        committer.submit("!a", ["a3"]),  # type: ignore[list-item]  # same room: next group
        return_exceptions=True)
    assert [r.event_id for r in outcomes[0]] == ["a1", "a2"]  # type: ignore[union-attr]
    assert isinstance(outcomes[1], ValueError)
    assert [r.event_id for r in outcomes[2]] == ["c1"]  # type: ignore[union-attr]
    assert [r.event_id for r in outcomes[3]] == ["a3"]  # type: ignore[union-attr]
    # One shared attempt (4 events), then one by one, then the second batch of !a alone.
    assert calls == [4, 2, 1, 1, 1]
    assert committer.commits == 3


async def test_stale_remembered_tip_is_caught_and_rebuilt(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        room_id = await alice.create_room()
        _, first = await alice.send(room_id, "s1")
        pipeline = hs.services.rooms.pipeline
        tip = pipeline._tips[room_id]
        # Pretend the writer remembers an older event as the tip (as if the room had
        # changed without it): the transaction must refuse, the batch be rebuilt.
        tip.last_event_id = "$not-the-tip"
        status, second = await alice.send(room_id, "s2")
        assert status == 200
        pdu = await hs.services.events.get_event(second["event_id"])
        assert pdu is not None and list(pdu.prev_event_ids()) == [first["event_id"]]
        assert await hs.services.events.get_forward_extremities(room_id) == {
            second["event_id"]}



async def test_rooms_created_concurrently(database_config):
    async with running_server(database_config) as hs:
        # One room per user: v12 room IDs hash the create event, so one user creating two
        # rooms in the same millisecond would get the same room (independent of batching).
        users = [await new_user(hs, f"u{i}") for i in range(10)]
        rooms = await asyncio.gather(*(u.create_room() for u in users))
        assert len(set(rooms)) == len(users)
        results = await asyncio.gather(*(
            u.send(room, "c") for u, room in zip(users, rooms, strict=True)))
        assert all(status == 200 for status, _ in results)
        for room, (_, body) in zip(rooms, results, strict=True):
            assert await hs.services.events.get_forward_extremities(room) == {
                body["event_id"]}
