"""Auth chains and auth differences from storage against hs.core.dag's pure results."""

from __future__ import annotations

import random

import pytest
from tests.storage_events.helpers import RoomBuilder, chain, open_store

from hs.core.dag import MissingEventsError, auth_chain, auth_difference
from hs.core.pdu import PDU
from hs.core.state_res.store import StateResolutionStore
from hs.storage.database import DatabaseConfig
from hs.storage.events import EventToPersist


def _room(rng: random.Random) -> tuple[RoomBuilder, list[PDU]]:
    """A room whose events cite realistic auth events (create, power levels, join rules,
    the sender's latest membership)."""
    rb = RoomBuilder()
    create = rb.create()
    pdus = [create]
    latest: dict[str, str] = {}
    alice = rb.member("@alice:test", auth=[create.event_id])
    latest["@alice:test"] = alice.event_id
    pl = rb.event("m.room.power_levels", content={"users": {"@alice:test": 100}},
                  state_key="", auth=[create.event_id, alice.event_id])
    jr = rb.event("m.room.join_rules", content={"join_rule": "public"}, state_key="",
                  auth=[create.event_id, alice.event_id, pl.event_id])
    pdus += [alice, pl, jr]
    core = [create.event_id, pl.event_id]
    for n in range(60):
        user = f"@u{rng.randrange(6)}:test"
        if user not in latest or rng.random() < 0.2:
            auth = [*core, jr.event_id] + ([latest[user]] if user in latest else [])
            ev = rb.member(user, rng.choice(("join", "leave")), auth=auth)
            latest[user] = ev.event_id
        else:
            ev = rb.message(str(n), sender=user, auth=[*core, latest[user]])
        pdus.append(ev)
    return rb, pdus


async def test_auth_chain_matches_pure(database_config: DatabaseConfig) -> None:
    rng = random.Random(11)
    async with open_store(database_config) as store:
        rb, pdus = _room(rng)
        await store.persist_events(chain(pdus))
        graph = {p.event_id: list(p.auth_event_ids()) for p in pdus}
        for _ in range(10):
            ids = [p.event_id for p in rng.sample(pdus, 4)]
            assert await store.auth_chain_ids(ids) == auth_chain(ids, graph)
        assert await store.auth_chain_ids([pdus[0].event_id]) == set()
        for _ in range(10):
            sets = [{p.event_id for p in rng.sample(pdus, 5)} for _ in range(3)]
            assert await store.get_auth_chain_difference(rb.room_id, sets) == auth_difference(
                sets, graph
            )


async def test_state_resolution_store_adapter(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        create = rb.create()
        bad = rb.member("@x:test", auth=[create.event_id], rejected="not allowed")
        await store.persist_events([EventToPersist(create, state_before={}),
                                    EventToPersist(bad, outlier=True)])
        adapter: StateResolutionStore = store
        got = await adapter.get_events([create.event_id, bad.event_id, "$missing"])
        assert set(got) == {create.event_id, bad.event_id}
        assert got[bad.event_id].rejected_reason == "not allowed"


async def test_missing_auth_events(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        create = rb.create()
        orphan = rb.message("x", auth=[create.event_id, "$gone"])
        await store.persist_events([EventToPersist(orphan, outlier=True)])
        with pytest.raises(MissingEventsError):
            await store.auth_chain_ids([orphan.event_id])
        # As the pure walk: unknown IDs are named (reachable) but not expanded.
        pure = auth_chain([orphan.event_id], {orphan.event_id: list(orphan.auth_event_ids())},
                          allow_missing=True)
        assert await store.auth_chain_ids([orphan.event_id], allow_missing=True) == pure
        assert pure == {create.event_id, "$gone"}
