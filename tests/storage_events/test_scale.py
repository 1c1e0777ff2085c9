"""A 2,000-event room round trip within a sane time on both dialects."""

from __future__ import annotations

import time

from tests.storage_events.helpers import RoomBuilder, chain, new_room, open_store

from hs.storage.database import DatabaseConfig
from hs.storage.events import StateAfter

N = 2000
BATCH = 100


async def test_two_thousand_event_room(database_config: DatabaseConfig) -> None:
    async with open_store(database_config, cache_factor=0.05) as store:
        rb = RoomBuilder()
        setup = await new_room(store, rb)
        pdus = []
        for i in range(N):
            if i % 10 == 0:
                pdus.append(rb.member(f"@u{i}:test"))
            else:
                pdus.append(rb.message(f"m{i}", sender="@alice:test"))
        started = time.monotonic()
        prev = setup[-1].event_id
        for start in range(0, N, BATCH):
            part = pdus[start:start + BATCH]
            await store.persist_events(chain(part, StateAfter(prev)))
            prev = part[-1].event_id
        persist_s = time.monotonic() - started

        started = time.monotonic()
        store._cache.clear()
        got = await store.get_events([p.event_id for p in pdus])
        assert len(got) == N and got[pdus[1234].event_id].data == pdus[1234].data
        seen = 0
        token = None
        while True:
            page = await store.paginate_messages(rb.room_id, token, limit=250)
            seen += len(page.events)
            if page.end is None:
                break
            token = page.end
        assert seen == N + len(setup)
        members = await store.get_members(rb.room_id, ["join"])
        assert len(members) == N // 10 + 1
        state = await store.get_state_ids_at(pdus[-1].event_id)
        assert state is not None and len(state) == N // 10 + 2
        assert await store.get_forward_extremities(rb.room_id) == {pdus[-1].event_id}
        read_s = time.monotonic() - started
        # Generous bounds: CI machines are slow, but a per-row query design would blow these.
        assert persist_s < 30, persist_s
        assert read_s < 10, read_s
