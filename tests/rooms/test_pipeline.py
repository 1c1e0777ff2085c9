"""Pipeline internals through the real app: forks resolved by state resolution, the
per-room writer, rate limits."""

from __future__ import annotations

import asyncio

from tests.rooms.helpers import new_user, q, state_event
from tests.server.harness import running_server

from hs.handlers.rooms.linearizer import BatchingLinearizer
from hs.handlers.rooms.pipeline import ChainBuilder, Draft
from hs.storage.events.types import StateAfter


async def test_fork_is_resolved_and_merged(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        room_id = await alice.create_room(room_version="10")
        _, a = await alice.send(room_id, "a")
        a_id = a["event_id"]
        status, b = await alice.put_state(room_id, "m.room.name", {"name": "N1"})
        assert status == 200
        # A sibling of B on A, as a federated server could have sent it.
        events = hs.services.events
        state = await events.get_state_ids_at(a_id)
        assert state is not None
        pdus = await events.get_events([*state.values(), a_id])
        pipeline = hs.services.rooms.pipeline
        builder = ChainBuilder(pdus[a_id].room_version, room_id, "test.local",
                               pipeline.signing_key, hs.services.clock, [a_id],
                               pdus[a_id].depth, dict(state), pdus, StateAfter(a_id))
        draft = Draft("m.room.topic", alice.user_id, {"topic": "fork"}, "")
        pdu = builder.build(draft)
        builder.authorize(pdu)
        builder.accept(pdu)
        await pipeline.persist(builder.accepted, room_id)
        assert await events.get_forward_extremities(room_id) == {b["event_id"], pdu.event_id}
        status, d = await alice.send(room_id, "d")
        assert status == 200
        merged = await events.get_event(d["event_id"])
        assert merged is not None
        assert set(merged.prev_event_ids()) == {b["event_id"], pdu.event_id}
        assert await events.get_forward_extremities(room_id) == {d["event_id"]}
        after = await events.get_state_ids_at(d["event_id"])
        assert after is not None
        assert after[("m.room.name", "")] == b["event_id"]
        assert after[("m.room.topic", "")] == pdu.event_id
        name = await state_event(hs, room_id, "m.room.name")
        assert name is not None and name.event_id == b["event_id"]
        # The next event builds on the merge alone.
        _, e = await alice.send(room_id, "e")
        nxt = await events.get_event(e["event_id"])
        assert nxt is not None and nxt.prev_event_ids() == (d["event_id"],)


async def test_linearizer_batches_and_isolates_failures():
    seen: list[list[int]] = []

    async def process(key: str, items):
        seen.append(list(items))
        await asyncio.sleep(0)
        return [ValueError("odd") if i % 2 else i * 10 for i in items]

    lin: BatchingLinearizer[int, int] = BatchingLinearizer(process, max_batch=8)
    results = await asyncio.gather(*(lin.submit("r", i) for i in range(20)),
                                   return_exceptions=True)
    assert [r if isinstance(r, int) else "err" for r in results] == [
        i * 10 if i % 2 == 0 else "err" for i in range(20)]
    assert sum(len(b) for b in seen) == 20 and all(len(b) <= 8 for b in seen)
    assert lin.batches == len(seen) < 20
    assert lin.pending("r") == 0 and not lin._tasks  # idle rooms hold nothing


async def test_message_rate_limit(database_config):
    async with running_server(database_config, rc_enabled=True,
                              rc_message={"per_second": 0.001, "burst_count": 3},
                              rc_joins={"local": {"per_second": 0.001, "burst_count": 1}}
                              ) as hs:
        alice = await new_user(hs, "alice")
        room_id = await alice.create_room()
        codes = [(await alice.send(room_id, f"t{i}"))[0] for i in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        _, err = await alice.send(room_id, "t9")
        assert err["errcode"] == "M_LIMIT_EXCEEDED" and err["retry_after_ms"] > 0
        # Retrying an already-sent transaction is not a new send.
        assert (await alice.send(room_id, "t0"))[0] == 200
        status, _ = await alice.call("GET", f"/rooms/{q(room_id)}/state/m.room.create/")
        assert status == 200
        bob = await new_user(hs, "bob")
        public = await alice.create_room(preset="public_chat")
        assert (await bob.join(public))[0] == 200
        assert (await bob.member_op("leave", public))[0] == 200
        status, err = await bob.join(public)
        assert (status, err["errcode"]) == (429, "M_LIMIT_EXCEEDED")
