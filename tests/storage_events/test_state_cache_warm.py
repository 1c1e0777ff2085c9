"""Groups a batch creates are cached at its commit when their maps follow from cached
ones: equal to what a cold read of the database gives, and read without a query."""

from __future__ import annotations

from typing import Any

from tests.rooms.helpers import pair_in_public_room
from tests.server.harness import running_server

from hs.storage.state.store import StateStore


async def test_new_groups_are_cached_as_stored(database_config):
    async with running_server(database_config) as hs:
        alice, _, room_id = await pair_in_public_room(hs)
        assert (await alice.put_state(room_id, "m.room.topic", {"topic": "t"}))[0] == 200
        events = hs.services.events
        state = events.state
        ids = await events.get_current_state_ids(room_id)
        topic = ids[("m.room.topic", "")]
        after, _ = (await state.get_state_groups_for_events([topic]))[topic]
        assert after in state._cache  # built at the commit, not read
        reads: list[Any] = []
        real = events.db.fetchall

        async def counted(sql: str, *args: Any) -> Any:
            reads.append(sql)
            return await real(sql, *args)

        events.db.fetchall = counted  # type: ignore[method-assign]
        cached = await state.get_state_ids_for_group(after)
        assert not [r for r in reads if "state_group" in r]
        events.db.fetchall = real  # type: ignore[method-assign]
        cold = await StateStore(events.db).get_state_ids_for_group(after)
        assert cached == cold == ids
