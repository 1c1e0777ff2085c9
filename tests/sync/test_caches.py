"""The recent-timeline cache answers exactly what the database does, whatever the order of
requests (windows extended, trimmed, restarted after gaps, older snapshots served)."""

from __future__ import annotations

import random

from tests.server.harness import running_server
from tests.sync.helpers import new_user

from hs.handlers.sync.caches import PER_ROOM, RecentTimelines
from hs.handlers.sync.queries import timeline_ids


async def test_recent_timelines_match_the_database(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        room = await alice.create_room()
        events = hs.services.events
        cache = RecentTimelines(events, max_rooms=4)
        rng = random.Random(5)
        positions: list[int] = [events.max_stream_ordering()]
        for batch in range(12):
            for n in range(rng.choice((1, 3, 20, PER_ROOM + 5))):
                await alice.send(room, f"{batch}.{n}")
            positions.append(events.max_stream_ordering())
            for _ in range(15):
                upto = rng.choice(positions)
                since = rng.choice([p for p in [0, *positions] if p <= upto])
                limit = rng.choice((0, 1, 5, 10, 50, PER_ROOM, 200))
                got, limited = await cache.window(room, since, upto, limit)
                want = await timeline_ids(events.db, room, since, upto, limit + 1)
                assert limited == (len(want) > limit), (since, upto, limit)
                expected = [eid for _, eid in reversed(want[:limit])] if limit else []
                assert [p.event_id for _, p in got] == expected, (since, upto, limit)
                assert [so for so, _ in got] == sorted(so for so, _ in got)
        assert cache.hits > 0 and cache.misses > 0
