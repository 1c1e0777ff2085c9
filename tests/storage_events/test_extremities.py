"""Forward extremities for in-order and out-of-order arrival; ``is_referenced``."""

from __future__ import annotations

import random

from tests.storage_events.helpers import RoomBuilder, chain, new_room, open_store

from hs.storage.database import DatabaseConfig
from hs.storage.events import EventToPersist, StateAfter


async def test_linear_fork_and_merge(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        pdus = await new_room(store, rb)
        head = pdus[-1].event_id
        a = rb.message("a", prev=[head])
        b = rb.message("b", prev=[head])
        await store.persist_events([EventToPersist(a, state_before=StateAfter(head))])
        await store.persist_events([EventToPersist(b, state_before=StateAfter(head))])
        assert await store.get_forward_extremities(rb.room_id) == {a.event_id, b.event_id}
        merge = rb.message("m", prev=[a.event_id, b.event_id])
        await store.persist_events([EventToPersist(merge, state_before=StateAfter(a.event_id))])
        assert await store.get_forward_extremities(rb.room_id) == {merge.event_id}
        assert await store.is_referenced([a.event_id, b.event_id, merge.event_id]) == {
            a.event_id, b.event_id,
        }
        prev_auth = await store.get_prev_and_auth_ids([merge.event_id, "$x"])
        assert set(prev_auth) == {merge.event_id}
        assert sorted(prev_auth[merge.event_id][0]) == sorted([a.event_id, b.event_id])
        assert prev_auth[merge.event_id][1] == [pdus[0].event_id]


async def test_child_before_parent(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        pdus = await new_room(store, rb)
        group = await store.get_state_group_for_event(pdus[-1].event_id)
        parent = rb.message("parent")
        child = rb.message("child")
        await store.persist_events([EventToPersist(child, state_before=group)])
        assert await store.get_forward_extremities(rb.room_id) == {
            child.event_id, pdus[-1].event_id,
        }
        await store.persist_events([EventToPersist(parent, state_before=group)])
        # The parent is already referenced by the stored child: not an extremity. The
        # create/join head is retired by the parent.
        assert await store.get_forward_extremities(rb.room_id) == {child.event_id}


async def test_random_dags_in_random_order(database_config: DatabaseConfig) -> None:
    """Against the definition: stored, non-excluded events no such event points at."""
    rng = random.Random(7)
    async with open_store(database_config) as store:
        for round_ in range(3):
            rb = RoomBuilder(f"!rand{round_}:test")
            create = rb.create()
            await store.persist_events(chain([create]))
            group = await store.get_state_group_for_event(create.event_id)
            ids = [create.event_id]
            events = []
            for n in range(60):
                prevs = rng.sample(ids[-6:], k=min(len(ids[-6:]), rng.choice((1, 1, 2, 3))))
                pdu = rb.message(f"{round_}-{n}", prev=prevs)
                ids.append(pdu.event_id)
                events.append(pdu)
            soft = {e.event_id for e in rng.sample(events, 6)}
            order = events[:]
            rng.shuffle(order)
            stored: list[str] = [create.event_id]
            while order:
                size = rng.randint(1, 8)
                batch, order = order[:size], order[size:]
                await store.persist_events([
                    EventToPersist(p, state_before=group, soft_failed=p.event_id in soft)
                    for p in batch
                ])
                stored += [p.event_id for p in batch]
                included = [e for e in stored if e not in soft]
                referenced = {
                    prev for e in included for prev in rb.events[e].prev_event_ids()
                }
                expected = {e for e in included if e not in referenced}
                assert await store.get_forward_extremities(rb.room_id) == expected
