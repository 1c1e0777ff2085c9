"""PostgreSQL: a message batch's push actions commit in the persister's own statement
(``PushActionsHandler.plan``/``precommit``), so the unread counts are there as soon as the
event is; whenever that cannot be (a member set changed, the combined statement failed)
the post-persist hook writes them as before."""

from __future__ import annotations

from typing import Any

import pytest
from tests.push.test_actions_counts import _counts, _send, alice_and_bob_talking
from tests.server.harness import Client, running_server

from hs.storage.database import DatabaseConfig
from hs.storage.events.persist import Precommit


def _count_writes(hs: Client) -> list[object]:
    """Record the push store's own writes (the post-persist path)."""
    store = hs.services.push.actions.store
    calls: list[object] = []
    real = store.add

    async def add(*args: Any, **kwargs: Any) -> None:
        calls.append(args)
        await real(*args, **kwargs)

    store.add = add
    return calls


@pytest.fixture
def pg_only(database_config: DatabaseConfig) -> DatabaseConfig:
    if database_config.dialect != "postgres":
        pytest.skip("the persister's one-statement path is PostgreSQL's")
    return database_config


async def test_message_actions_commit_with_the_event(pg_only: DatabaseConfig) -> None:
    async with running_server(pg_only) as hs:
        alice, bob, carol, room = await alice_and_bob_talking(hs)
        writes = _count_writes(hs)
        before = (await _counts(hs, bob.user_id, room))["notification_count"]
        for n in range(3):
            await _send(alice, room, f"m{n}")
            # Right after the send returned: no write of the hook's own was needed.
            assert (await _counts(hs, bob.user_id, room))["notification_count"] == before + n + 1
        mention = await _send(alice, room, "hey bob", **{"m.mentions": {
            "user_ids": [bob.user_id]}})
        counts = await _counts(hs, bob.user_id, room)
        assert counts["highlight_count"] == 1
        assert writes == []
        assert mention in {r.event_id for r in await hs.services.push.actions.store
                           .notifications(bob.user_id, None, 10, True)}
        # Carol joins: the next message's member set differs from the stored one, so
        # its rows go through the hook's transaction (which records the new set).
        assert (await carol.join(room))[0] == 200
        await _send(alice, room, "welcome")
        assert (await _counts(hs, carol.user_id, room))["notification_count"] == 1
        assert len(writes) >= 1
        writes.clear()
        await _send(alice, room, "again")
        assert writes == []
        assert (await _counts(hs, carol.user_id, room))["notification_count"] == 2


async def test_a_failing_combined_statement_falls_back(pg_only: DatabaseConfig) -> None:
    async with running_server(pg_only) as hs:
        alice, bob, _, room = await alice_and_bob_talking(hs)
        actions = hs.services.push.actions
        outcomes: list[bool] = []

        def broken(batch: Any, positions: Any) -> Precommit | None:
            real = actions.precommit(batch, positions)
            if real is None:
                return None

            def done(written: bool) -> None:
                outcomes.append(written)
                real.done(written)

            return Precommit(real.ctes + ", bad AS (SELECT 1 / 0 AS x)", real.args,
                             "bad", done)

        hs.services.events.set_precommit(broken)
        writes = _count_writes(hs)
        before = (await _counts(hs, bob.user_id, room))["notification_count"]
        event_id = await _send(alice, room, "still here")
        assert outcomes == [False]
        assert await hs.services.events.get_event(event_id) is not None
        assert writes  # the hook wrote the rows instead
        assert (await _counts(hs, bob.user_id, room))["notification_count"] == before + 1
