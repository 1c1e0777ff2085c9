"""Groups a batch creates are cached at its commit when their maps follow from cached
ones: equal to what a cold read of the database gives, and read without a query."""

from __future__ import annotations

from typing import Any

from tests.rooms.helpers import new_user
from tests.server.harness import running_server

from hs.storage.state.store import StateStore


async def test_new_groups_are_cached_as_stored(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room_id = await alice.create_room(preset="public_chat")
        assert (await bob.join(room_id))[0] == 200
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
